"""SL2 caching: cache entries that never expire, and commands that scan the keyspace."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from scalelint.checks import at_operation, check, finding, reached_from, request_chain, value_text
from scalelint.config import Config
from scalelint.facts.model import Attr, CallResult, Const, DictLiteral, Global, Instance, Value
from scalelint.findings import Finding, Related, Span
from scalelint.project import ExtName, Link, Operation, ProjectModel, method_chain
from scalelint.request_path_types import FuncRef

UNBOUNDED_MEMOIZERS = {"functools.cache"}  # `lru_cache` only with maxsize=None


def _expires_later(project: ProjectModel, op: Operation) -> bool:
    """`r.hset(key, ...)` then `r.expire(key, 60)` in the same function."""
    key = op.site.args[0] if op.site.args else None
    return key is not None and any(
        other.op == "cache.expire" and other.site.args and other.site.args[0] == key
        for other in project.operations.get(op.function, ())
    )


def _used_as_cache(project: ProjectModel, op: Operation, why: str) -> bool:
    """Evidence that a Redis write is a cache entry (or a lock), not data Redis stores:
    an explicit `ex=None`, `nx=True` (a lock), "cache" in the function or key name, or
    the same key read first (cache-aside)."""
    if "=None" in why or op.site.kwarg("nx") == Const(True) or op.api.endswith(".setnx"):
        return True  # explicitly forever, or a lock that never expires
    key = value_text(op.site.args[0]) if op.site.args else ""
    if "cache" in op.function.qualname.lower() or "cache" in key.lower():
        return True
    return _read_through(project, op)


def _read_through(project: ProjectModel, op: Operation) -> bool:
    """Cache-aside: the function also reads the same key (`get` then `set` on a miss)."""
    key = op.site.args[0] if op.site.args else None
    if key is None:
        return False
    if any(
        other.op == "cache.get" and other.site.args and other.site.args[0] == key
        for other in project.operations.get(op.function, ())
    ):
        return True
    # ...or through a helper given the same key (`get_json(key)`).
    readers = project.reaches(frozenset({"cache.get"}))
    return any(
        site.args and site.args[0] == key and target in readers
        for site, target in project.call_edges.get(op.function, ())
    )


def _without_ttl(op: Operation) -> str | None:
    """Why a cache write keeps its entry forever, or None."""
    spec = op.spec
    if spec is None or spec.ttl_default is None:
        return None
    given = {name: spec.argument(op.site, name) for name in spec.ttl_params}
    given = {name: value for name, value in given.items() if value is not None or op.site.has_kwarg(name)}
    if any(value == Const(None) for value in given.values()):
        return f"`{next(n for n, v in given.items() if v == Const(None))}=None` keeps it forever"
    if spec.ttl_default == "forever" and not given and not op.site.has_kwarg("**"):
        return "no expiry is set, so the entry stays until something deletes it"
    return None


@check("SL203")
def cache_without_ttl(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "cache.set" or project.routing.one_off(op.function):
            continue
        why = _without_ttl(op)
        if why is None or _expires_later(project, op):
            continue
        if op.spec is not None and op.spec.ttl_default == "forever" and not _used_as_cache(project, op, why):
            continue  # Redis as a store or a queue (`rpush`), not as a cache of something else
        message = (
            f"`{op.site.text}` writes a cache entry with no TTL: {why}; a missed invalidation then "
            "serves stale data indefinitely and the cache only grows; set a short TTL "
            "(10-30 s for lists, 60 s for lookups and settings: `ex=15`, `timeout=30`)"
        )
        yield finding("SL203", project.path_of(op.function), op.site.span, message)
    yield from _unbounded_memoized_reads(project)


def _unbounded_memoized_reads(project: ProjectModel) -> Iterator[Finding]:
    """`@functools.cache` / `@lru_cache(maxsize=None)` on a function that reads the database."""
    reads = project.reaches(frozenset({"db.query"}))
    for function, fn in project.functions.items():
        if function not in reads or project.routing.one_off(function):
            continue
        if ".<locals>." in function.qualname:
            continue  # a nested function's cache lives as long as the call that defines it
        for decorator in fn.decorators:
            ref = project.resolve(decorator.callee, function.module)
            if not isinstance(ref, ExtName):
                continue
            call = decorator.call
            maxsize = (
                None
                if call is None
                else call.kwarg("maxsize")
                if call.has_kwarg("maxsize")
                else (call.args[0] if call.args else Const(128))
            )
            unbounded = ref.qualname in UNBOUNDED_MEMOIZERS or (
                ref.qualname == "functools.lru_cache" and call is not None and maxsize == Const(None)
            )
            if not unbounded:
                continue
            _, query = reads[function]
            message = (
                f"`@{decorator.text.removesuffix('()')}` caches the database read in "
                f"`{function.qualname}` forever, per worker process: rows changed later are never "
                f"seen again (query at {project.path_of(query.function)}:{query.site.span.line}); "
                "cache it in Redis with a TTL, or use `cachetools.TTLCache`"
            )
            span = Span(decorator.line, 1, decorator.line, 1)
            yield finding("SL203", project.path_of(function), span, message)


@check("SL204")
def redis_keys_command(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op not in ("cache.scan", "cache.flush") or op.function not in project.request_path:
            continue
        handler, _ = project.request_path[op.function]
        if op.op == "cache.scan":
            what = (
                "runs KEYS, which walks the whole keyspace in one blocking command: with a million "
                "keys Redis stalls every client for hundreds of milliseconds; use `scan_iter(match=...)`, "
                "or better, versioned keys or a set of the keys to delete"
            )
        else:
            what = (
                "empties the whole cache: every entry of every user is gone and the database takes "
                "the full load at once; delete the keys this write affects"
            )
        where = f"{handler.label}{reached_from(project, op.function)}"
        message = f"`{op.site.text}` {what} (on the request path: {where})"
        yield at_operation("SL204", project, op, message)


# ---- SL201: a write that leaves a cached read stale ---------------------------------

HOLE = "__scalelint_hole__"
VERSIONED = re.compile(rf"version|(^|[:_-])v{HOLE}|updated_at", re.I)
WRITE_RPC = re.compile(r"^(create|update|delete|insert|upsert|add|remove|set|archive)_", re.I)
RPC_WORDS = re.compile(
    r"^(get|list|fetch|read|search|create|update|delete|insert|upsert|add|remove|set|archive)_|_(list|by_\w+|page|count)$",
    re.I,
)


def _norm(name: str) -> str:
    """One spelling per data set: `contacts`, `Contact`, `get_contacts_list` -> `contact`."""
    name = RPC_WORDS.sub("", name.rsplit(".", 1)[-1])
    name = RPC_WORDS.sub("", name).lower().replace("_", "")
    return name[:-1] if name.endswith("s") else name


def key_family(value: Value | None) -> str | None:
    """The static head of a cache key: `contacts:` of f"contacts:{tenant}:{page}"."""
    if isinstance(value, Const) and isinstance(value.value, str):
        head = value.value.split(HOLE)[0]
        return head if len(head) >= 3 else None
    return None


def data_touched(op: Operation) -> set[str]:
    """The tables, models and RPCs an operation reads or writes, normalised."""
    names = {_norm(table) for statement in op.sql for table in statement.tables}
    chain = method_chain(op.site.callee)
    names |= {
        _norm(link.first_text) for link in chain if link.name in ("table", "from_", "rpc") and link.first_text
    }
    return names | _models_named(chain)


def _models_named(chain: list[Link]) -> set[str]:
    """`Article` in `Article.objects.filter(...)`."""
    return {_norm(chain[i - 1].name) for i, link in enumerate(chain) if link.name == "objects" and i > 0}


def _writes(op: Operation) -> bool:
    if op.op == "db.write":
        return True
    receiver = op.site.callee.base if isinstance(op.site.callee, Attr) else None
    return any(
        link.name == "rpc" and WRITE_RPC.match(link.first_text or "") for link in method_chain(receiver)
    )


def _around(project: ProjectModel, function: FuncRef) -> set[FuncRef]:
    """A function, what it calls (transitively), and what its direct callers call."""
    starts = [function, *project.callers.get(function, ())]
    return {reached for start in starts for reached in project.reachable_from(start)}


@dataclass(frozen=True, slots=True)
class CachedRead:
    family: str
    data: frozenset[str]
    store: Operation


def cached_reads(project: ProjectModel) -> list[CachedRead]:
    """Cache writes whose function (or what it calls) reads the data being cached."""
    found: list[CachedRead] = []
    for op in project.all_operations():
        if op.op != "cache.set" or not op.site.args or project.routing.one_off(op.function):
            continue
        family = key_family(op.site.args[0])
        key = op.site.args[0]
        if family is None or (isinstance(key, Const) and VERSIONED.search(str(key.value))):
            continue  # versioned keys change when the data does
        data: set[str] = set()
        for function in _around(project, op.function):
            for read in project.operations.get(function, ()):
                if read.op == "db.query":
                    data |= data_touched(read)
            # A queryset evaluated by `list(...)` runs no operation of its own: its model counts.
            for site in project.functions[function].calls:
                data |= _models_named(method_chain(site.callee))
        if data:
            found.append(CachedRead(family, frozenset(data), op))
    return found


def _invalidated(project: ProjectModel, around: set[FuncRef], family: str) -> bool:
    for other in around:
        for op in project.operations.get(other, ()):
            if op.op not in ("cache.delete", "cache.flush", "cache.scan"):
                continue
            deleted = key_family(op.site.args[0]) if op.site.args else None
            if deleted is None or deleted.startswith(family) or family.startswith(deleted.rstrip("*")):
                return True  # a computed key may be this one: give it the benefit of the doubt
    return False


@check("SL201")
def missing_cache_invalidation(project: ProjectModel, config: Config) -> Iterator[Finding]:
    reads = cached_reads(project)
    if not reads:
        return
    for op in project.all_operations():
        if not _writes(op) or project.routing.one_off(op.function):
            continue
        written = data_touched(op)
        around: set[FuncRef] | None = None
        for read in reads:
            if not written & read.data:
                continue
            around = around if around is not None else _around(project, op.function)
            if _invalidated(project, around, read.family):
                continue
            store = read.store
            message = (
                f"`{op.site.text}` changes {', '.join(sorted(written & read.data))} but nothing "
                f"invalidates the cache entries `{read.family}...` that "
                f"{project.path_of(store.function)}:{store.site.span.line} fills from it: readers "
                "get stale data until the entry expires (forever without a TTL); delete those keys "
                "after the write (or put a version in the key)"
            )
            related = (Related(project.path_of(store.function), store.site.span.line, "the cached read"),)
            yield finding("SL201", project.path_of(op.function), op.site.span, message, related)
            break


# ---- SL205: a module-level dict that only grows --------------------------------------

CACHE_NAME = re.compile(r"cache|memo", re.I)
EVICTIONS = {"pop", "popitem", "clear", "__delitem__"}


def _evicted_or_bounded(project: ProjectModel, module: str, name: str) -> bool:
    """Something removes entries (`pop`, `clear`, `del`) or checks the size (`len`)."""
    for function, fn in project.functions.items():
        if function.module != module:
            continue
        if name in fn.item_deletes:
            return True
        for site in fn.calls:
            callee = site.callee
            if isinstance(callee, Attr) and callee.attr in EVICTIONS and callee.base == Global(name):
                return True
            if callee == Global("len") and site.args and site.args[0] == Global(name):
                return True
    return False


PLAIN_DICTS = {"builtins.dict", "collections.defaultdict", "collections.OrderedDict"}


def _plain_dict(project: ProjectModel, module: str, name: str) -> bool:
    """The module-level name holds a dict with no bound of its own (not a TTLCache)."""
    value = dict(project.modules[module].module_vars).get(name)
    if isinstance(value, DictLiteral):
        return True
    if isinstance(value, (CallResult, Instance)):  # `dict()`, `defaultdict(list)`, `x: dict[...]`
        ref = project.resolve(value.callee if isinstance(value, CallResult) else value.of, module)
        return isinstance(ref, ExtName) and ref.qualname in PLAIN_DICTS
    return False


@check("SL205")
def unbounded_local_cache(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for function, fn in project.functions.items():
        if function not in project.request_path:
            continue
        handler, _ = project.request_path[function]
        for name, span in fn.item_stores:
            if not CACHE_NAME.search(name) or not _plain_dict(project, function.module, name):
                continue
            if _evicted_or_bounded(project, function.module, name):
                continue
            message = (
                f"`{name}[...] = ...` adds an entry to a module-level cache on every request "
                f"({handler.label}) and nothing ever removes one: memory grows with every distinct "
                "key until the worker is killed, and each worker holds its own copy; use "
                "`cachetools.TTLCache(maxsize=..., ttl=...)` or Redis with a TTL"
            )
            yield finding("SL205", project.path_of(function), span, message, request_chain(project, function))
