"""API knowledge: which call opens a connection, runs a query, declares a route.

Loaded from `rules/apis/*.toml` and from the files named by the `apis` config key.
A file has up to four tables:

    [calls]                 # a qualified callable -> what calling it does
    "psycopg2.connect" = { op = "db.connect", returns = "psycopg2.connection" }
    "myapp.db.fetch_all" = "db.query"          # shorthand: only the operation

    [methods."psycopg2.connection"]            # methods of a kind of object
    cursor = { returns = "psycopg2.cursor" }
    "*" = { returns = "self" }                 # any other method (query builders)

    [attributes]            # an attribute that gives a kind whatever the receiver
    objects = "django.manager"

    [sql-methods]           # a method of an unknown receiver that runs the SQL literal
    names = ["execute"]     # passed to it (strong evidence: the literal parses as SQL)

    [request-scoped]        # objects that live for one request: storing a client there
    names = ["flask.g"]     # does not make it a singleton

    [evaluators]            # callables that run a lazy query they are given: it is
    names = ["builtins.list"]   # iterated there (`list(qs)`, `len(qs)`)

    [row-bounds]            # methods in a query's chain (or consuming its result) that
    names = ["limit"]       # cap the rows it returns

A spec's keys: op, returns, instance (kind of an annotated instance when it differs
from what a call returns), sql-arg, role, framework, view-arg, http-method,
handler-methods (fnmatch patterns), prefix-kwarg (the keyword holding a route prefix),
pool-size (the keywords whose values add up to a pool's maximum size, with defaults),
params (positional parameter names, so a value is found by keyword or position),
pooler-requires (the keyword a client needs behind a transaction-mode pooler),
ttl-params / ttl-default (where a cache write takes its expiry, and whether leaving it
out means "forever" or a finite default), zero-ttl-forever (true: an expiry of 0 means
none, as in Flask-Caching), namespace-kwarg (the keyword naming the cache
namespace or key prefix a caching decorator fills or a delete clears), queued (true: the
call only queues the command, a later `execute()` sends the batch in one round trip: a
Redis pipeline), timeout ("none"
or "default": whether an HTTP call without `timeout=` waits forever),
property (reading the attribute, without a call, gives an object of that kind:
`client.chat.completions.create`), url-arg (where an HTTP call takes its URL),
limit-arg (the argument that caps the rows a query call returns: pymongo
`find(limit=20)`, motor `to_list(length=50)`; missing, None or 0 caps nothing).
pages-by (on a view-class that lists a queryset: the class attribute that pages it, DRF
`pagination_class`, Django `ListView.paginate_by`; a list view without it lists every row).
A `__getitem__` method entry says what subscripting an object gives (`db["users"]`);
without one, a subscript is an element, as if iterated (`__iter__`).

Roles: route (a handler decorator), route-register (`path("x/", view)`), mount
(`include_router(router, prefix=...)`), view-class / task-class / called-class (a
base class whose `handler-methods` serve requests / run in the background / run when
the class is used), dependency (FastAPI's `Depends(provider)`), task, memoize (with
`op = "cache.memoize"` when the decorator keeps results in a cache that code deletes
from: Flask-Caching, aiocache, fastapi-cache), model (an ORM base class: its subclasses
are tables), list-mixin (a mixin that gives a generic view its list action, with
`pages-by`: DRF's `ListModelMixin`), paginator (a DRF pagination base; its `params` name
the attribute that lets the client pick the page size, the attribute that caps it, and
the method that reads the size from the request, which a subclass may override to clamp
it), enumeration (a base class whose subclasses have a fixed set of members:
`enum.Enum`), peer-loading (a Django relation field that loads the relation for every
row of a queryset at once, as django-auto-prefetch's keys do).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelint.facts.model import CallSite, Value
from scalelint.record import record

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEC_KEYS = {
    "op",
    "returns",
    "instance",
    "sql-arg",
    "role",
    "framework",
    "view-arg",
    "http-method",
    "handler-methods",
    "prefix-kwarg",
    "pool-size",
    "params",
    "pooler-requires",
    "replaces-prefix",
    "shares-pool",
    "view-kwarg",
    "property",
    "url-arg",
    "ttl-params",
    "ttl-default",
    "zero-ttl-forever",
    "namespace-kwarg",
    "queued",
    "timeout",
    "limit-arg",
    "pages-by",
}
FILE_KEYS = {
    "library",
    "calls",
    "methods",
    "attributes",
    "sql-methods",
    "request-scoped",
    "row-bounds",
    "evaluators",
}
# The type each spec key must have (checked on load, so a typo is one clear line).
SPEC_TYPES: dict[str, type | tuple[type, ...]] = {
    "op": str,
    "returns": str,
    "instance": str,
    "sql-arg": (int, str),
    "role": str,
    "framework": str,
    "view-arg": int,
    "http-method": str,
    "handler-methods": list,
    "prefix-kwarg": str,
    "replaces-prefix": bool,
    "pool-size": dict,
    "params": list,
    "pooler-requires": str,
    "shares-pool": str,
    "view-kwarg": str,
    "property": str,
    "url-arg": (int, str),
    "ttl-params": list,
    "ttl-default": str,
    "zero-ttl-forever": bool,
    "namespace-kwarg": str,
    "queued": bool,
    "timeout": str,
    "limit-arg": str,
    "pages-by": str,
}


class KnowledgeError(Exception):
    """A knowledge file that cannot be used; the message names the file and key."""


@record
class ApiSpec:
    """What one call or method does. `returns = "self"` keeps the receiver's kind."""

    op: str | None = None
    returns: str | None = None
    instance: str | None = None
    sql_arg: int | str | None = None
    role: str | None = None
    framework: str | None = None
    view_arg: int | None = None
    http_method: str | None = None
    handler_methods: tuple[str, ...] = ()
    prefix_kwarg: str | None = None
    pool_size: tuple[tuple[str, int | None], ...] = ()
    params: tuple[str, ...] = ()
    pooler_requires: str | None = None
    replaces_prefix: bool = False
    shares_pool: str | None = None
    view_kwarg: str | None = None
    property: str | None = None
    url_arg: int | str | None = None
    ttl_params: tuple[str, ...] = ()
    ttl_default: str | None = None  # "forever": no TTL unless given; "finite": a default applies
    zero_ttl_forever: bool = False  # an expiry of 0 keeps the entry forever
    namespace_kwarg: str | None = None
    queued: bool = False  # no round trip of its own: sent later with the whole batch
    timeout: str | None = None  # "none": waits forever unless given one; "default": has one
    limit_arg: str | None = None  # found by keyword or by its position in `params`
    pages_by: str | None = None  # a list view's class attribute that pages it

    def argument(self, site: CallSite, name: str) -> Value | None:
        """The value passed for parameter `name`, by keyword or by position."""
        if site.has_kwarg(name):
            return site.kwarg(name)
        if name in self.params and self.params.index(name) < len(site.args):
            return site.args[self.params.index(name)]
        return None


@dataclass
class Knowledge:
    """All API knowledge merged; later files override earlier ones entry by entry."""

    calls: dict[str, ApiSpec] = field(default_factory=dict)
    methods: dict[str, dict[str, ApiSpec]] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    sql_methods: set[str] = field(default_factory=set)
    request_scoped: set[str] = field(default_factory=set)
    row_bounds: set[str] = field(default_factory=set)
    evaluators: set[str] = field(default_factory=set)
    digest: str = ""

    def method(self, kind: str, name: str) -> ApiSpec | None:
        table = self.methods.get(kind)
        if table is None:
            return None
        return table.get(name) or table.get("*")

    def add_file(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise KnowledgeError(f"{path}: cannot read knowledge file: {error}") from None
        self.digest = hashlib.blake2b(self.digest.encode() + raw, digest_size=16).hexdigest()
        unknown = set(data) - FILE_KEYS
        if unknown:
            raise KnowledgeError(f"{path}: unknown table '{sorted(unknown)[0]}'")
        for name, spec in _table(data, "calls", path).items():
            self.calls[name] = _spec(spec, path, f"calls.{name}")
        for kind, table in _table(data, "methods", path).items():
            if not isinstance(table, dict):
                raise KnowledgeError(f"{path}: methods.{kind} must be a table")
            methods = self.methods.setdefault(kind, {})
            for name, spec in table.items():
                methods[name] = _spec(spec, path, f"methods.{kind}.{name}")
        for name, kind in _table(data, "attributes", path).items():
            if not isinstance(kind, str):
                raise KnowledgeError(f"{path}: attributes.{name} must be a kind name")
            self.attributes[name] = kind
        self.sql_methods.update(_names(data, "sql-methods", path))
        self.request_scoped.update(_names(data, "request-scoped", path))
        self.row_bounds.update(_names(data, "row-bounds", path))
        self.evaluators.update(_names(data, "evaluators", path))


def _names(data: dict[str, Any], key: str, path: Path) -> list[str]:
    names = _table(data, key, path).get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise KnowledgeError(f"{path}: {key}.names must be a list of strings")
    return names


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise KnowledgeError(f"{path}: '{key}' must be a table")
    return table


def _spec(raw: object, path: Path, where: str) -> ApiSpec:
    if isinstance(raw, str):
        return ApiSpec(op=raw)
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path}: {where} must be an operation name or a table")
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        raise KnowledgeError(f"{path}: {where}: unknown key '{sorted(unknown)[0]}'")
    for key, value in raw.items():
        expected = SPEC_TYPES[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            names = (
                expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
            )
            raise KnowledgeError(f"{path}: {where}: '{key}' must be a {names}")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise KnowledgeError(f"{path}: {where}: '{key}' must be a list of strings")
    handler_methods = raw.get("handler-methods", ())
    return ApiSpec(
        op=raw.get("op"),
        returns=raw.get("returns"),
        instance=raw.get("instance"),
        sql_arg=raw.get("sql-arg"),
        role=raw.get("role"),
        framework=raw.get("framework"),
        view_arg=raw.get("view-arg"),
        http_method=raw.get("http-method"),
        handler_methods=tuple(handler_methods),
        prefix_kwarg=raw.get("prefix-kwarg"),
        pool_size=tuple(_pool_size(raw.get("pool-size", {}), path, where)),
        params=tuple(raw.get("params", ())),
        pooler_requires=raw.get("pooler-requires"),
        replaces_prefix=raw.get("replaces-prefix", False),
        shares_pool=raw.get("shares-pool"),
        view_kwarg=raw.get("view-kwarg"),
        property=raw.get("property"),
        url_arg=raw.get("url-arg"),
        ttl_params=tuple(raw.get("ttl-params", ())),
        ttl_default=raw.get("ttl-default"),
        zero_ttl_forever=raw.get("zero-ttl-forever", False),
        namespace_kwarg=raw.get("namespace-kwarg"),
        queued=raw.get("queued", False),
        timeout=raw.get("timeout"),
        limit_arg=raw.get("limit-arg"),
        pages_by=raw.get("pages-by"),
    )


def _pool_size(raw: object, path: Path, where: str) -> list[tuple[str, int | None]]:
    """`pool-size = { pool_size = 5, max_overflow = 10 }`: the keywords that add up to
    the pool's maximum, with their defaults (-1: no default, unknown unless given)."""
    if not isinstance(raw, dict) or not all(isinstance(v, int) for v in raw.values()):
        raise KnowledgeError(f"{path}: {where}: pool-size must map keywords to default sizes")
    return [(name, None if default < 0 else default) for name, default in raw.items()]


def knowledge_files(builtin_dir: Path, extra_files: Iterable[Path] = ()) -> list[Path]:
    """The shipped knowledge files, then the user's (which may override them), in order."""
    return [*sorted(builtin_dir.glob("*.toml")), *extra_files]


def load_knowledge(builtin_dir: Path, extra_files: Iterable[Path] = ()) -> Knowledge:
    """The shipped knowledge, then the user's files (which may override it)."""
    return knowledge_from(knowledge_files(builtin_dir, extra_files))


def knowledge_from(paths: Iterable[Path]) -> Knowledge:
    """These knowledge files merged, later ones overriding earlier ones."""
    knowledge = Knowledge()
    for path in paths:
        knowledge.add_file(path)
    return knowledge


def knowledge_digest(paths: Iterable[Path]) -> str:
    """What `Knowledge.digest` will be once these files are loaded, from their bytes alone
    (a run that reuses a kept result never parses them)."""
    digest = ""
    for path in paths:
        digest = hashlib.blake2b(digest.encode() + _read(path), digest_size=16).hexdigest()
    return digest


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KnowledgeError(f"{path}: cannot read knowledge file: {error}") from None
