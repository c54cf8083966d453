"""SL2 caching: writes that leave cached reads stale, cache entries that never expire,
commands that scan the keyspace, caches that only grow, keys that leave out what the
query depends on. (Hot reads with no cache in front, SL202, are `checks/hot_reads.py`.)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import cache, partial

from scalelint.checks import at_operation, check, finding, reached_from, request_chain, value_text
from scalelint.config import Config
from scalelint.facts.formatted import FormattedText
from scalelint.facts.model import (
    Attr,
    CallResult,
    CallSite,
    Const,
    Decorator,
    DictLiteral,
    FunctionFacts,
    Global,
    Imported,
    Instance,
    Item,
    Opaque,
    Sequence,
    Value,
)
from scalelint.findings import Finding, Related, Span
from scalelint.knowledge import ApiSpec
from scalelint.project import ExtName, Link, Operation, ProjectModel, method_chain, name_of
from scalelint.query_shapes import slices_of
from scalelint.record import record
from scalelint.request_path_types import FuncRef

UNBOUNDED_MEMOIZERS = {"functools.cache"}  # `lru_cache` only with maxsize=None


def _expires_later(project: ProjectModel, op: Operation) -> bool:
    """`r.hset(key, ...)` then `r.expire(key, 60)` in the same function (for `mset(mapping)`
    or a key phase 1 cannot describe, an `expire` on any key: `for key in data:
    pipe.expire(key, t)`), or the function deletes the key again itself (not in a
    `finally`: a lock released there is still held forever by a worker that dies)."""
    key = op.site.args[0] if op.site.args else None
    for other in project.operations.get(op.function, ()):
        if other.op == "cache.expire" and (key is None or (other.site.args and other.site.args[0] == key)):
            return True
        if (
            other.op == "cache.delete"
            and key is not None
            and other.site.args[:1] == (key,)
            and other.site.span.line > op.site.span.line
            and not other.site.in_finally
        ):
            return True
    return False


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


def _without_ttl(spec: ApiSpec | None, site: CallSite) -> str | None:
    """Why a cache write (or a caching decorator) keeps its entry forever, or None."""
    if spec is None or spec.ttl_default is None:
        return None
    given = {name: spec.argument(site, name) for name in spec.ttl_params}
    given = {name: value for name, value in given.items() if value is not None or site.has_kwarg(name)}
    forever = {Const(None), Const(0)} if spec.zero_ttl_forever else {Const(None)}
    for name, value in given.items():
        if value in forever:
            return f"`{name}={value.value if isinstance(value, Const) else None}` keeps it forever"
    if spec.ttl_default == "forever" and not given and not site.has_kwarg("**"):
        return "no expiry is set, so the entry stays until something deletes it"
    return None


@check("SL203")
def cache_without_ttl(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "cache.set" or project.routing.one_off(op.function):
            continue
        why = _without_ttl(op.spec, op.site)
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
            kept = _kept_forever(project, function, decorator)
            if kept is not None:
                _, query = reads[function]
                message = (
                    f"`@{decorator.text}` keeps the results of `{function.qualname}`, which reads the "
                    f"database (query at {project.path_of(query.function)}:{query.site.span.line}), "
                    f"with no expiry: {kept}; a missed invalidation then serves stale rows "
                    "indefinitely; give it a short TTL"
                )
                yield _at_decorator(project, function, decorator, message)
                continue
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
            if ref.qualname == "cachetools.cached" and call is not None:
                store = project.spec_of(decorator.callee, function.module)
                held = store.argument(call, "cache") if store is not None else None
                unbounded = _unbounded_store(project, function.module, held)
            if not unbounded:
                continue
            _, query = reads[function]
            message = (
                f"`@{decorator.text.removesuffix('()')}` caches the database read in "
                f"`{function.qualname}` forever, per worker process: rows changed later are never "
                f"seen again (query at {project.path_of(query.function)}:{query.site.span.line}); "
                "cache it in Redis with a TTL, or use `cachetools.TTLCache`"
            )
            yield _at_decorator(project, function, decorator, message)


def _at_decorator(project: ProjectModel, function: FuncRef, decorator: Decorator, message: str) -> Finding:
    return finding("SL203", project.path_of(function), Span(decorator.line, 1, decorator.line, 1), message)


def _kept_forever(project: ProjectModel, function: FuncRef, decorator: Decorator) -> str | None:
    """Why a shared-cache decorator (`@cached()` of aiocache) keeps results forever, or None."""
    spec = project.spec_of(decorator.callee, function.module)
    if spec is None or spec.op != "cache.memoize":
        return None
    call = decorator.call or CallSite(
        decorator.callee, decorator.text, Span(decorator.line, 1, decorator.line, 1)
    )
    return _without_ttl(spec, call)


def _unbounded_store(project: ProjectModel, module: str, value: Value | None) -> bool:
    """A plain dict given to `cachetools.cached` (not a `TTLCache`), that nothing empties."""
    if isinstance(value, Global):
        held = dict(project.modules[module].module_vars).get(value.name)
        return _plain_dict_value(project, module, held) and not _evicted_or_bounded(
            project, module, value.name
        )
    return _plain_dict_value(project, module, value)


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
VERSIONED_HOLE = re.compile(r"version|updated_at|modified_at|\bmtime|etag", re.I)
WRITE_RPC = re.compile(r"^(create|update|delete|insert|upsert|add|remove|set|archive)_", re.I)
RPC_WORDS = re.compile(
    r"^(get|list|fetch|read|search|create|update|delete|insert|upsert|add|remove|set|archive)_|_(list|by_\w+|page|count)$",
    re.I,
)


def data_name(name: str) -> str:
    """One spelling per data set: `contacts`, `Contact`, `get_contacts_list` -> `contact`."""
    name = RPC_WORDS.sub("", name.rsplit(".", 1)[-1])
    name = RPC_WORDS.sub("", name).lower().replace("_", "")
    return name[:-1] if name.endswith("s") else name


MAX_BUILDER_DEPTH = 4  # a key built by a function that calls another builder, and so on


@record
class KeyFamily:
    """The keys a cache call addresses: their static head (`user:` of f"user:{uid}"), the
    project function that builds them when its template cannot be read, or the function
    whose results a caching decorator keeps (`@cache.memoize()`; `head` is then the
    decorator's namespace or key prefix, if it names one)."""

    head: str = ""
    builder: FuncRef | None = None
    memoized: FuncRef | None = None

    def __str__(self) -> str:
        if self.memoized is not None:
            where = f" in namespace `{self.head}`" if self.head else ""
            return f"of `{self.memoized.qualname}(...)`{where}"
        return f"`{self.head}...`" if self.builder is None else f"`{self.builder.qualname}(...)`"

    def may_be(self, other: KeyFamily | None) -> bool:
        """Whether deleting `other` may delete keys of this family; an unknown key may."""
        if other is None:
            return True
        if self.memoized is not None or other.memoized is not None:
            if other.memoized is not None:  # `delete_memoized(fn)` deletes fn's results only
                return other.memoized == self.memoized
            # A namespace clear, or a literal key a decorator may have built (`view/...`).
            return not self.head or not other.head or other.head.startswith(self.head)
        if self.builder is None and other.builder is None:
            return other.head.startswith(self.head) or self.head.startswith(other.head.rstrip("*"))
        return self.builder is None or other.builder is None or self.builder == other.builder


def key_family(
    project: ProjectModel, function: FuncRef, value: Value | None, depth: int = 0
) -> KeyFamily | None:
    """The family of a key as `function` passes it: a literal or formatted string's head,
    `":".join(["user", ...])`, or what a key-builder function returns (`user_key(uid)`
    with `return f"user:{uid}"`, the call's literal arguments filled in)."""
    if isinstance(value, Const) and isinstance(value.value, str):
        head = value.value.split(HOLE)[0]
        return KeyFamily(head) if len(head) >= 3 else None
    if depth >= MAX_BUILDER_DEPTH:
        return None
    if isinstance(value, Attr):  # `workspace.cache_key`, a property that builds the key
        builder = project.resolve(value, function.module)
        if not isinstance(builder, FuncRef) or not _is_property(project.functions.get(builder)):
            return None
        arguments: dict[str, Value | None] = {}
    elif isinstance(value, CallResult):
        builder = project.resolve(value.callee, function.module)
        if not isinstance(builder, FuncRef) or builder not in project.functions:
            return None
        site = _site_of(KeyScope(project.functions[function].calls, {}), value)
        arguments = _arguments(project.functions[builder], site, isinstance(value.callee, Attr))
    else:
        return None
    fn = project.functions[builder]
    families = {_filled_family(project, builder, returned, arguments, depth) for returned in fn.returns} or {
        None
    }
    found = families.pop() if len(families) == 1 else None
    return found if found is not None else KeyFamily(builder=builder)


PROPERTIES = {"property", "cached_property"}


def _is_property(fn: FunctionFacts | None) -> bool:
    return fn is not None and any(name_of(d.callee) in PROPERTIES for d in fn.decorators)


def _arguments(fn: FunctionFacts, site: CallSite | None, method: bool) -> dict[str, Value | None]:
    """What a call passes for each of a function's parameters, by name."""
    if site is None:
        return {}
    names = [param.name for param in fn.params]
    if method and names[:1] in (["self"], ["cls"]):
        names = names[1:]
    return {**dict(zip(names, site.args, strict=False)), **dict(site.kwargs)}


def _filled_family(
    project: ProjectModel,
    builder: FuncRef,
    returned: Value,
    arguments: dict[str, Value | None],
    depth: int,
) -> KeyFamily | None:
    """The head of a returned key, with parameters the caller passes as literals filled in:
    `cache_key("user", uid)` of `return f"{kind}:{id}"` is `user:`."""
    if isinstance(returned, FormattedText) and isinstance(returned.value, str):
        parts = returned.value.split(HOLE)
        head = parts[0]
        for hole, part in zip(returned.holes, parts[1:], strict=False):
            filled = arguments.get(hole.text) if isinstance(hole, Opaque) else hole
            if not (isinstance(filled, Const) and isinstance(filled.value, str)):
                break
            head += filled.value.split(HOLE)[0]
            if HOLE in filled.value:
                break
            head += part
        return KeyFamily(head) if len(head) >= 3 else None
    return key_family(project, builder, returned, depth + 1)


def versioned(value: Value | None) -> bool:
    """A key that changes when the data does: a version counter or `updated_at` in it."""
    if not isinstance(value, Const):
        return False
    holes = value.holes if isinstance(value, FormattedText) else ()
    return bool(VERSIONED.search(str(value.value))) or any(
        VERSIONED_HOLE.search(value_text(hole)) for hole in holes if hole is not None
    )


def data_touched(op: Operation, project: ProjectModel | None = None) -> set[str]:
    """The tables, models and RPCs an operation reads or writes, normalised (a session's
    `commit()` writes the models the function `add`ed to that session)."""
    names = {data_name(table) for statement in op.sql for table in statement.tables}
    chain = method_chain(op.site.callee)
    names |= {
        data_name(link.first_text)
        for link in chain
        if link.name in ("table", "from_", "rpc") and link.first_text
    }
    if op.api.startswith("sqlalchemy."):
        names |= _sqlalchemy_models(op.site, op.api)
        if project is not None and op.api.rsplit(".", 1)[-1] in ("commit", "flush"):
            session = op.site.callee.base if isinstance(op.site.callee, Attr) else None
            for site in project.functions[op.function].calls:
                callee = site.callee
                if (
                    isinstance(callee, Attr)
                    and callee.base == session
                    and callee.attr in SQLALCHEMY_OBJECT_WRITES
                ):
                    names |= _sqlalchemy_models(site, callee.attr)
    return names | _models_named(chain)


SQLALCHEMY_STATEMENTS = {"select", "update", "delete", "insert", "query"}
SQLALCHEMY_OBJECT_WRITES = {"add", "add_all", "merge", "delete"}


def _sqlalchemy_models(site: CallSite, api: str) -> set[str]:
    """`Product` in `session.execute(update(Product)...)`, `session.query(Product)`,
    `session.add(Product(...))`."""
    found: set[str] = set()
    values: list[Value | None] = [site.callee, *site.args[:1]]
    while values:
        value = values.pop()
        while isinstance(value, CallResult):
            callee = value.callee
            name = callee.attr if isinstance(callee, Attr) else name_of(callee)
            if name in SQLALCHEMY_STATEMENTS and value.first_value is not None:
                found.add(data_name(name_of(value.first_value)))
            elif name[:1].isupper() and api.rsplit(".", 1)[-1] in SQLALCHEMY_OBJECT_WRITES:
                found.add(data_name(name))  # a model instance built in the call: `Product(...)`
            value = callee.base if isinstance(callee, Attr) else None
    return {name for name in found if name}


def _models_named(chain: list[Link]) -> set[str]:
    """`Article` in `Article.objects.filter(...)`."""
    return {data_name(chain[i - 1].name) for i, link in enumerate(chain) if link.name == "objects" and i > 0}


def writes(op: Operation) -> bool:
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


@record
class CachedRead:
    """A cache entry filled from the database: its key family, the data it holds, and
    where it is filled (the cache write, or the caching decorator)."""

    family: KeyFamily
    data: frozenset[str]
    path: str
    line: int
    ttl: int | None = None  # seconds, when the write gives a literal expiry


def _data_read(project: ProjectModel, functions: Iterable[FuncRef]) -> set[str]:
    """The tables, models and RPCs these functions query."""
    data: set[str] = set()
    for function in functions:
        for read in project.operations.get(function, ()):
            if read.op == "db.query":
                data |= data_touched(read)
        # A queryset evaluated by `list(...)` runs no operation of its own: its model counts.
        for site in project.functions[function].calls:
            data |= _models_named(method_chain(site.callee))
    return data


def cached_reads(project: ProjectModel) -> list[CachedRead]:
    """Cache writes whose function (or what it calls) reads the data being cached, and
    functions whose results a caching decorator keeps (Flask-Caching, aiocache,
    fastapi-cache) that read the database."""
    found: list[CachedRead] = []
    for op in project.all_operations():
        if op.op != "cache.set" or not op.site.args or project.routing.one_off(op.function):
            continue
        family = key_family(project, op.function, op.site.args[0])
        if family is None or versioned(op.site.args[0]):
            continue  # versioned keys change when the data does
        data = _data_read(project, _around(project, op.function))
        if data:
            path, line = project.path_of(op.function), op.site.span.line
            found.append(CachedRead(family, frozenset(data), path, line, _ttl_seconds(op.spec, op.site)))
    for function, decorator, spec in _caching_decorators(project):
        data = _data_read(project, project.reachable_from(function))
        if data and not project.routing.one_off(function):
            namespace = (
                spec.argument(decorator.call, spec.namespace_kwarg)
                if decorator.call and spec.namespace_kwarg
                else None
            )
            # Only the static head: `key_prefix="view/%s"` is a template of its own.
            text = (
                namespace.value if isinstance(namespace, Const) and isinstance(namespace.value, str) else ""
            )
            head = text.split(HOLE)[0].split("%")[0]
            family = KeyFamily(head, memoized=function)
            ttl = _ttl_seconds(spec, decorator.call) if decorator.call else None
            found.append(CachedRead(family, frozenset(data), project.path_of(function), decorator.line, ttl))
    return found


def _ttl_seconds(spec: ApiSpec | None, site: CallSite) -> int | None:
    """The expiry a cache write or caching decorator gives as a literal, in seconds
    (`ex=60`, `px=500`, `timeout=300`); None when it gives none or an expression."""
    for name in spec.ttl_params if spec is not None else ():
        value = spec.argument(site, name) if spec is not None else None
        if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
            if name.endswith("at"):  # `exat` / `pxat`: a moment, not a duration
                return None
            return value.value // 1000 if name.startswith("p") else value.value
    return None


def _caching_decorators(project: ProjectModel) -> Iterator[tuple[FuncRef, Decorator, ApiSpec]]:
    """Functions whose results a shared cache keeps (`op = "cache.memoize"` decorators)."""
    for function, fn in project.functions.items():
        for decorator in fn.decorators:
            spec = project.spec_of(decorator.callee, function.module)
            if spec is not None and spec.op == "cache.memoize":
                yield function, decorator, spec


def _deleted_family(project: ProjectModel, function: FuncRef, op: Operation) -> KeyFamily | None:
    """What a delete removes: a namespace (`FastAPICache.clear(namespace="users")`), a
    memoized function's results (`cache.delete_memoized(get_user)`), or a key family."""
    spec = op.spec
    if spec is not None and spec.namespace_kwarg and op.site.has_kwarg(spec.namespace_kwarg):
        namespace = op.site.kwarg(spec.namespace_kwarg)
        if isinstance(namespace, Const) and isinstance(namespace.value, str):
            return KeyFamily(namespace.value.split(HOLE)[0])
        return None
    if not op.site.args:
        return None
    target = op.site.args[0]
    if not isinstance(target, CallResult):
        # A memoized function passed itself, not a property or method that builds a key.
        ref = project.resolve(target, function.module)
        if isinstance(ref, FuncRef) and ref in project.routing.memoized:
            return KeyFamily(memoized=ref)
    return key_family(project, function, target)


def _invalidated(project: ProjectModel, around: set[FuncRef], family: KeyFamily) -> bool:
    for other in around:
        for op in project.operations.get(other, ()):
            if op.op not in ("cache.delete", "cache.flush", "cache.scan"):
                continue
            if family.may_be(_deleted_family(project, other, op)):
                return True  # a computed key may be this one: give it the benefit of the doubt
    return False


MODEL_SIGNALS = {"pre_save", "post_save", "pre_delete", "post_delete", "m2m_changed"}
SIGNALS_MODULE = "django.db.models.signals."
ON_COMMIT = "transaction.on_commit"


def _signal_receivers(project: ProjectModel) -> set[FuncRef]:
    """Functions Django runs when a model is saved or deleted: `@receiver(post_save, ...)`
    or `post_save.connect(handler, ...)`. Their invalidations count for every ORM write."""
    found: set[FuncRef] = set()
    for ref, fn in project.functions.items():
        for decorator in fn.decorators:
            call = decorator.call
            target = project.resolve(decorator.callee, ref.module)
            if call is None or not isinstance(target, ExtName) or not target.qualname.endswith(".receiver"):
                continue
            signal = project.resolve(call.args[0], ref.module) if call.args else None
            if isinstance(signal, ExtName) and signal.qualname.removeprefix(SIGNALS_MODULE) in MODEL_SIGNALS:
                found.add(ref)
        for site in fn.calls:
            target = project.resolve(site.callee, ref.module)
            if not isinstance(target, ExtName) or not target.qualname.startswith(SIGNALS_MODULE):
                continue
            if target.qualname.endswith(".connect") and site.args:
                handler = project.resolve(site.args[0], ref.module)
                if isinstance(handler, FuncRef):
                    found.add(handler)
    return found


def _on_commit(project: ProjectModel, functions: set[FuncRef]) -> set[FuncRef]:
    """What `transaction.on_commit(callback)` in these functions runs after the commit."""
    found: set[FuncRef] = set()
    for function in functions:
        for site in project.functions[function].calls:
            target = project.resolve(site.callee, function.module)
            if (
                isinstance(target, ExtName)
                and target.qualname.endswith("transaction.on_commit")
                and site.args
            ):
                callback = project.resolve(site.args[0], function.module)
                if isinstance(callback, FuncRef):
                    found.update(project.reachable_from(callback))
    return found


@check("SL201")
def missing_cache_invalidation(project: ProjectModel, config: Config) -> Iterator[Finding]:
    reads = cached_reads(project)
    if not reads:
        return
    receivers: set[FuncRef] | None = None
    for op in project.all_operations():
        if not writes(op) or project.routing.one_off(op.function):
            continue
        written = data_touched(op, project)
        around: set[FuncRef] | None = None
        for read in reads:
            if not written & read.data:
                continue
            if read.ttl is not None and 0 < read.ttl <= config.accepted_staleness:
                continue  # the team accepts entries this much behind the data
            if around is None:
                around = _around(project, op.function)
                around |= _on_commit(project, around)
                if op.api.startswith("django."):
                    if receivers is None:
                        receivers = _signal_receivers(project)
                    around |= {f for r in receivers for f in project.reachable_from(r)}
            if _invalidated(project, around, read.family):
                continue
            message = (
                f"`{op.site.text}` changes {', '.join(sorted(written & read.data))} but nothing "
                f"invalidates the cache entries {read.family} that {read.path}:{read.line} fills "
                "from it: readers get stale data until the entry expires (forever without a TTL); "
                "delete those keys after the write (or put a version in the key)"
            )
            related = (Related(read.path, read.line, "the cached read"),)
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
    return _plain_dict_value(project, module, dict(project.modules[module].module_vars).get(name))


def _plain_dict_value(project: ProjectModel, module: str, value: Value | None) -> bool:
    if isinstance(value, DictLiteral):
        return True
    if isinstance(value, (CallResult, Instance)):  # `dict()`, `defaultdict(list)`, `x: dict[...]`
        ref = project.resolve(value.callee if isinstance(value, CallResult) else value.of, module)
        return isinstance(ref, ExtName) and ref.qualname in PLAIN_DICTS
    return False


def _fills(fn: FunctionFacts) -> Iterator[tuple[str, str, Span]]:
    """Where a function adds keys it computes to a module-level name: `CACHE[key] = ...`,
    `CACHE.setdefault(key, ...)`, `CACHE.update({key: ...})`; literal keys are a fixed set."""
    for name, span in fn.item_stores:
        yield name, f"`{name}[...] = ...`", span
    for site in fn.calls:
        callee = site.callee
        if not (isinstance(callee, Attr) and isinstance(callee.base, Global)):
            continue
        first = site.args[0] if site.args else None
        literal = isinstance(first, Const) and HOLE not in str(first.value)
        if callee.attr == "setdefault" and site.args and not literal:
            yield callee.base.name, f"`{callee.base.name}.setdefault(...)`", site.span
        elif callee.attr == "update" and site.args and first is None:
            # A display with computed keys or a comprehension (a literal-keyed one is a
            # DictLiteral); a dict built elsewhere may hold a fixed set of keys.
            yield callee.base.name, f"`{callee.base.name}.update(...)`", site.span


@check("SL205")
def unbounded_local_cache(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for function, fn in project.functions.items():
        if function not in project.request_path:
            continue
        handler, _ = project.request_path[function]
        for name, store, span in _fills(fn):
            if not CACHE_NAME.search(name) or not _plain_dict(project, function.module, name):
                continue
            if _evicted_or_bounded(project, function.module, name):
                continue
            message = (
                f"{store} adds an entry to a module-level cache on every request "
                f"({handler.label}) and nothing ever removes one: memory grows with every distinct "
                "key until the worker is killed, and each worker holds its own copy; use "
                "`cachetools.TTLCache(maxsize=..., ttl=...)` or Redis with a TTL"
            )
            yield finding("SL205", project.path_of(function), span, message, request_chain(project, function))


# ---- SL206: a cache key that leaves out what the cached query depends on ----------------

# A key built from these covers every value of the request they are read from.
WHOLE_REQUEST = {"get_full_path", "full_path", "build_absolute_uri", "url", "query_string", "urlencode"}
# Chain links that make a call part of a query: Django managers, Supabase, SQLAlchemy.
QUERY_ROOTS = {"objects", "table", "from_", "rpc", "query", "select"}
CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
MAX_KEY_DEPTH = 12  # a value nested deeper is not a cache key or a query argument we can read

Path = tuple[str, ...]


@record
class KeyScope:
    """What the values of one function mean: its calls (to see a call's arguments) and
    its parameters (the roots a key or a query can vary with)."""

    calls: tuple[CallSite, ...]
    params: dict[Value, str]  # Opaque(name) / Instance(annotation) -> parameter name
    # Phase 1 drops the items of a list display it cannot describe: fine for what a query
    # takes (we see less), not for a key (`":".join([tenant, page or 1])` would lose `page`).
    lists: bool = True


def _key_scope(project: ProjectModel, function: FuncRef) -> KeyScope:
    fn = project.functions[function]
    params: dict[Value, str] = {}
    by_type: dict[Value, list[str]] = {}
    for index, param in enumerate(fn.params):
        params[Opaque(param.name)] = param.name
        if index == 0 and fn.class_name and param.name in ("self", "cls"):
            by_type.setdefault(Instance(Global(fn.class_name)), []).append(param.name)
        elif param.annotation is not None:
            by_type.setdefault(Instance(param.annotation), []).append(param.name)
    params.update({value: names[0] for value, names in by_type.items() if len(names) == 1})
    return KeyScope(fn.calls, params)


def _site_of(scope: KeyScope, value: CallResult) -> CallSite | None:
    """The call that produced `value`, when the function makes exactly one such call."""
    sites = {
        (site.args, site.kwargs)
        for site in scope.calls
        if site.callee == value.callee
        and len(site.args) == value.args
        and site.kwargs_names == value.keywords
    }
    if len(sites) != 1:
        return None
    args, kwargs = next(iter(sites))
    return CallSite(value.callee, "", Span(0, 0, 0, 0), args=args, kwargs=kwargs)


def _atoms(scope: KeyScope, value: Value | None, depth: int = 0) -> set[Path] | None:
    """The inputs a value is built from, each as a path from its root (`("user", "id")`);
    None when some part cannot be seen (an expression phase 1 could not describe, a call
    whose arguments are unknown, ambient state such as a context variable)."""
    if value is None or depth > MAX_KEY_DEPTH:
        return None
    depth += 1
    if isinstance(value, FormattedText):
        return _union(scope, value.holes, depth)
    if isinstance(value, Const):
        return set() if HOLE not in str(value.value) else None
    if isinstance(value, (Opaque, Instance)):
        # A parameter; anything else (`x (computed)`, a closure's variable) may hold anything.
        return {(scope.params[value],)} if value in scope.params else None
    if isinstance(value, (Global, Imported)):
        # `PAGE_SIZE`, `settings.CACHE_PREFIX`; not `current_user`, `g.tenant` (ambient state).
        name = value.name if isinstance(value, Global) else value.dotted.rsplit(".", 1)[-1]
        return set() if CONSTANT_NAME.match(name) else None
    if isinstance(value, Attr):
        base = _atoms(scope, value.base, depth)
        return None if base is None else {(*path, value.attr) for path in base}
    if isinstance(value, Item):
        base = _atoms(scope, value.of, depth)
        return None if base is None else {(*path, "[]") for path in base}
    if isinstance(value, Sequence):
        return _union(scope, value.items, depth) if scope.lists else None
    if isinstance(value, CallResult):
        return _call_atoms(scope, value, depth)
    return None


def _call_atoms(scope: KeyScope, value: CallResult, depth: int) -> set[Path] | None:
    site = _site_of(scope, value)
    arguments: list[Value | None] = []
    if site is not None:
        arguments = [*site.args, *(v for _, v in site.kwargs)]
        # `limit = min(limit, 100)` is recorded after the rebinding: its argument is itself.
        arguments = [value.first_value if arg == value else arg for arg in arguments]
    elif value.args == 0 and not value.keywords:
        arguments = []
    elif value.args == 1 and not value.keywords and value.first_value is not None:
        arguments = [value.first_value]
    else:
        return None
    inputs = _union(scope, arguments, depth)
    if inputs is None:
        return None
    if isinstance(value.callee, Attr):  # a method: `request.GET.get("page")`, `name.lower()`
        base = _atoms(scope, value.callee.base, depth)
        if base is None:
            return None
        step = f"{value.callee.attr}({value.first_text!r})" if value.first_text else f"{value.callee.attr}()"
        return inputs | {(*path, step) for path in base}
    if not arguments:
        return None  # `get_current_tenant()`: ambient state
    return inputs


def _union(
    scope: KeyScope, values: tuple[Value | None, ...] | list[Value | None], depth: int
) -> set[Path] | None:
    found: set[Path] = set()
    for value in values:
        atoms = _atoms(scope, value, depth)
        if atoms is None:
            return None
        found |= atoms
    return found


def _covers(key: set[Path], needed: Path) -> bool:
    """A key input covers a query input derived from it, or one it is derived from;
    a whole-request value (`request.get_full_path()`) covers all of that request."""
    for path in key:
        if path[: len(needed)] == needed or needed[: len(path)] == path:
            return True
        whole = next((i for i, step in enumerate(path) if step.split("(")[0] in WHOLE_REQUEST), None)
        if whole is not None and needed[:whole] == path[:whole]:
            return True
    return False


def _is_query_site(site: CallSite) -> bool:
    return any(link.name in QUERY_ROOTS for link in method_chain(site.callee))


def _query_slices(value: Value | None) -> Iterator[Value | None]:
    """The bounds of a queryset slice in a value (`Contact.objects.filter(...)[a:b]`)."""
    for piece in slices_of(value):
        if any(link.name in QUERY_ROOTS for link in method_chain(piece.of)):
            yield piece.lower
            yield piece.upper


@record
class QueryInput:
    """A value a query in the function takes, and the call that passes it."""

    value: Value | None
    site: CallSite
    helper: bool = False  # the site calls a project function that runs the query


def _query_inputs(
    project: ProjectModel, function: FuncRef, lines: tuple[int, int], taken: Callable[[FuncRef], set[str]]
) -> list[QueryInput]:
    """What the queries between two lines take: SQL parameters, ORM / Supabase filter and
    page arguments, queryset slices, and what is passed to a helper's parameters that
    reach its own queries."""
    queries = {op.site.span for op in project.operations.get(function, ()) if op.op == "db.query" and op.sql}
    edges = {site.span: target for site, target in project.call_edges.get(function, ())}
    first, last = lines
    found: list[QueryInput] = []
    for site in project.functions[function].calls:
        if not first <= site.span.line <= last:
            continue
        values = [*site.args, *(value for _, value in site.kwargs)]
        helper = edges.get(site.span)
        if site.span in queries or _is_query_site(site):
            found.extend(QueryInput(value, site) for value in values)
        elif helper is not None and (names := taken(helper)):
            params = [p.name for p in project.functions[helper].params]
            if params[:1] in (["self"], ["cls"]) and isinstance(site.callee, Attr):
                params = params[1:]
            passed = [*zip(params, site.args, strict=False), *site.kwargs]
            found.extend(QueryInput(value, site, True) for name, value in passed if name in names)
        for value in [site.callee, *values]:
            found.extend(QueryInput(bound, site) for bound in _query_slices(value) if bound is not None)
    return found


def _params_its_queries_take(project: ProjectModel, function: FuncRef) -> set[str]:
    """Which parameters of a project function its own queries take (none when it runs no
    query)."""
    if not any(op.op == "db.query" for op in project.operations.get(function, ())):
        return set()
    fn = project.functions[function]
    scope = _key_scope(project, function)
    names = {p.name for p in fn.params}
    taken: set[str] = set()
    for query in _query_inputs(project, function, (0, fn.span.end_line), lambda _: set()):
        taken |= {path[0] for path in _atoms(scope, query.value) or set() if path[0] in names}
    return taken


def _cached_under(
    project: ProjectModel, read: Operation
) -> tuple[tuple[Value | None, ...], tuple[int, int]] | None:
    """The key a cache read uses and the lines that compute what is stored under it: from
    the `get` to the `set` of the same key in the function (cache-aside), or the whole
    `get_or_set` call. None when the function does not store under that key itself."""
    # `hget(name, field)` is addressed by both; `cache.get(key, default)` by the first.
    parts = read.site.args[:2] if read.api.endswith(".hget") else read.site.args[:1]
    if not parts or None in parts:
        return None
    key = tuple(parts)
    if read.api.endswith(".get_or_set"):
        return key, (read.site.span.line, read.site.span.end_line)
    stores = [
        op.site.span.end_line
        for op in project.operations.get(read.function, ())
        if op.op == "cache.set"
        and op.site.args[: len(parts)] == parts
        and op.site.span.line > read.site.span.line
    ]
    return (key, (read.site.span.line, min(stores))) if stores else None


def _varies_per_request(path: Path, params: set[str]) -> bool:
    """A query input taken from the function's arguments: `limit`, `user.id`,
    `self.request.user`; not a view's own settings such as `self.page_size`."""
    if path[0] not in params:
        return False
    return path[0] not in ("self", "cls") or (len(path) > 1 and path[1] in ("request", "kwargs", "args"))


def _display(path: Path) -> str:
    return ".".join(path).replace(".[]", "[...]")


@check("SL206")
def incomplete_cache_key(project: ProjectModel, config: Config) -> Iterator[Finding]:
    # Worked out only for the helpers a cached region calls, once each.
    taken_by_helper = cache(partial(_params_its_queries_take, project))
    for read in project.all_operations():
        is_read = read.op == "cache.get" or read.api.endswith(".get_or_set")
        if not is_read or project.routing.one_off(read.function):
            continue
        cached = _cached_under(project, read)
        if cached is None:
            continue
        key, lines = cached
        scope = _key_scope(project, read.function)
        key_inputs = _union(replace(scope, lists=False), key, 0)
        if key_inputs is None:
            continue  # built where we cannot see, or from ambient state: it may hold anything
        params = set(scope.params.values())
        missing: dict[Path, QueryInput] = {}
        for query in _query_inputs(project, read.function, lines, taken_by_helper):
            for path in _atoms(scope, query.value) or set():
                if _varies_per_request(path, params) and not _covers(key_inputs, path):
                    missing.setdefault(path, query)
        if not missing:
            continue
        names = ", ".join(f"`{_display(path)}`" for path in sorted(missing))
        first = min(missing.values(), key=lambda query: query.site.span.line)
        path_of = project.path_of(read.function)
        them = "it" if len(missing) == 1 else "them"
        if first.helper:
            what = f"the query behind `{first.site.text}` (line {first.site.span.line})"
        else:
            what = f"the query at line {first.site.span.line} (`{first.site.text}`)"
        message = (
            f"`{read.site.text}` reads a cache entry whose key leaves out {names}, though {what} "
            f"depends on {them}: every value of {names} shares one entry, so a request is served the rows "
            f"another request stored (another page, filter or user) until the entry expires; add {them} "
            "to the key"
        )
        related = tuple(
            Related(path_of, query.site.span.line, f"the query takes `{_display(path)}` here")
            for path, query in sorted(missing.items())
        )
        yield finding("SL206", path_of, read.site.span, message, related)
