"""SL202: rarely-changing data (settings, flags, plans, lookup tables) read from the
database on every request with no cache in front."""

from __future__ import annotations

import re
from collections.abc import Iterator

from scalelint.checks import at_operation, check, reached_from
from scalelint.checks.caching import data_name, data_touched, writes
from scalelint.config import Config
from scalelint.findings import Finding
from scalelint.project import Operation, ProjectModel, method_chain
from scalelint.query_shapes import model_at
from scalelint.record import record
from scalelint.request_path_types import FuncRef

# Read-mostly reference data, by table name or by its model class's name in snake case.
HOT_NAME = re.compile(
    r"^(?:\w+_)?(?:settings?|configs?|configurations?|feature_?flags?|permissions?|roles?|role_?permissions?"
    r"|countr(?:y|ies)|currenc(?:y|ies)|locales?)$"
    r"|^(?:flags?|(?:billing_|subscription_|pricing_)?plans?|pricing)$"
    r"|_(?:lookups?|types?)$"
)
# The database's own catalogs (`pg_type`, `pg_settings`): not the application's data.
SYSTEM_TABLE = re.compile(r"^(pg_|sqlite_)|^(information_schema|pg_catalog|sys|mysql)\.", re.I)
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# Decorators that keep a function's result (or a view's response): what they wrap runs
# once per key and TTL, not per request. Matched by their last name, so Flask-Caching's
# `@cache.cached(...)`, fastapi-cache's `@cache()` and aiocache's `@cached` count too.
CACHING_DECORATORS = {"cache", "cached", "cache_page", "cache_response", "memoize", "lru_cache"}
CACHING_DECORATORS |= {"alru_cache", "ttl_cache", "cached_property"}
SQLALCHEMY_ROOTS = {"select", "query"}


@record
class HotTable:
    """A table a query reads, and why it counts as hot."""

    table: str
    names: frozenset[str]  # what writes to it are recognised by (see `data_touched`)
    why: str


def _hot_reason(names: list[str], configured: set[str]) -> str | None:
    if any(name.lower() in configured for name in names):
        return "listed in `hot-tables`"
    if any(HOT_NAME.search(name.lower()) for name in names):
        return "reference data by its name"
    return None


def _hot_tables(project: ProjectModel, op: Operation, configured: set[str]) -> list[HotTable]:
    """The hot tables a read takes its rows from; [] when it also reads other tables (a
    join or subquery: the read is about those) or when it is not a plain read."""
    if op.sql:
        if op.op == "db.write":
            return []
        found: list[HotTable] = []
        for statement in op.sql:
            if statement.kind != "select" or not statement.tables or "for update" in statement.text.lower():
                return []
            for table in statement.tables:
                name = table.rsplit(".", 1)[-1]
                why = None if SYSTEM_TABLE.search(table) else _hot_reason([name], configured)
                if why is None:
                    return []
                found.append(HotTable(name, frozenset({data_name(name)}), why))
        return found
    if op.op != "db.query":
        return []
    chain = method_chain(op.site.callee)
    if any(link.name == "rpc" for link in chain):
        return []
    named = next(
        (link.first_text for link in chain if link.name in ("table", "from_") and link.first_text), None
    )
    if named is not None:  # supabase
        why = _hot_reason([named], configured)
        return [HotTable(named, frozenset({data_name(named)}), why)] if why else []
    module = op.function.module
    roots = [op.site.callee, *op.site.args[:1]] if op.api.startswith("sqlalchemy.") else [op.site.callee]
    for root in roots:
        model = model_at(project, module, root)
        if model is not None:
            table = project.schema.models[model]
            cls = model.qualname.rsplit(".", 1)[-1]
            why = _hot_reason([table, cls, CAMEL.sub("_", cls)], configured)
            return [HotTable(table, frozenset({data_name(table), data_name(cls)}), why)] if why else []
    return []


def _caches_result(project: ProjectModel, function: FuncRef) -> bool:
    """The function reads a cache itself (`get`, `get_or_set`), through a thin wrapper
    it calls, or its result is kept by a decorator (`@lru_cache`, `@cache_page(60)`)."""
    if function in project.routing.memoized:
        return True
    decorators = project.functions[function].decorators
    if any(d.text.split("(")[0].rsplit(".", 1)[-1].strip() in CACHING_DECORATORS for d in decorators):
        return True

    def reads_cache(target: FuncRef) -> bool:
        return any(
            op.op == "cache.get" or op.api.endswith(".get_or_set")
            for op in project.operations.get(target, ())
        )

    return reads_cache(function) or any(
        reads_cache(target) for _, target in project.call_edges.get(function, ())
    )


def _written_with(project: ProjectModel, function: FuncRef, hot: list[HotTable]) -> bool:
    """The function also writes the table (read-modify-write: an update form, an admin
    endpoint), or saves a model instance it may have read."""
    names = {name for table in hot for name in table.names}
    for op in project.operations.get(function, ()):
        if not writes(op):
            continue
        written = data_touched(op)
        if written & names or (not written and op.api.startswith("django.model.")):
            return True
    return False


@check("SL202")
def uncached_hot_read(project: ProjectModel, config: Config) -> Iterator[Finding]:
    configured = {name.lower() for name in config.hot_tables}
    for function in sorted(project.request_path, key=lambda f: (f.module, f.qualname)):
        reads = [
            (op, hot)
            for op in project.operations.get(function, ())
            if (hot := _hot_tables(project, op, configured))
        ]
        if not reads:
            continue
        handler, chain = project.request_path[function]
        scope = [function, *(step.caller for step in chain)]
        if any(_caches_result(project, f) for f in scope):
            continue
        for op, hot in reads:
            if _written_with(project, function, hot):
                continue
            tables = ", ".join(dict.fromkeys(f"`{t.table}`" for t in hot))
            why = "; ".join(dict.fromkeys(t.why for t in hot))
            message = (
                f"`{op.site.text}` reads {tables} ({why}) from the database on every request to "
                f"{handler.label}{reached_from(project, function)}, though its rows change rarely: 600 "
                "concurrent users make 600 identical queries, each holding a pooled connection; cache it "
                "with a short TTL (cache-aside: Redis `get`, then `setex(key, 60, ...)` on a miss; Django "
                "`cache.get_or_set(key, load, 60)`; `cachetools.TTLCache(maxsize=..., ttl=60)`) and delete "
                "the key where the table is written (SL201)"
            )
            yield at_operation("SL202", project, op, message)
