"""SL3 indexes: request-path queries on columns no index serves, tenant and foreign-key
columns without an index, predicates an index cannot use, blocking index builds.

Every rule reads the schema model (scalelint/schema.py) and stays silent on tables
whose definition it did not find. A query is *served* when any one of its lookups on a
table can use an index (the planner needs one way in, not one per column), so a
finding means the query reads the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from scalelint.checks import check, finding, reached_from, request_chain
from scalelint.config import Config
from scalelint.facts.model import Attr, CallResult, CallSite, Compare, Const, Imported, SqlStatement, Value
from scalelint.findings import Finding, Related, Span
from scalelint.project import ClassRef, MethodRef, ProjectModel, method_chain
from scalelint.request_path_types import FuncRef
from scalelint.schema import Schema, Table, Where

# Django field lookups: the suffix after `__`, what it asks of an index.
DJANGO_LOOKUPS = {
    "exact": ("eq", ""),
    "iexact": ("eq", "upper"),
    "in": ("in", ""),
    "gt": ("range", ""),
    "gte": ("range", ""),
    "lt": ("range", ""),
    "lte": ("range", ""),
    "range": ("range", ""),
    "isnull": ("null", ""),
    "startswith": ("like", ""),
    "istartswith": ("like", "upper"),
    "contains": ("contains", ""),
    "icontains": ("contains", "upper"),
    "endswith": ("contains", ""),
    "iendswith": ("contains", "upper"),
}
DJANGO_FILTERS = {"filter", "exclude", "get", "aget", "get_or_create", "update_or_create", "aget_or_create"}
SQLALCHEMY_FILTERS = {"where", "filter", "filter_by"}
SQLALCHEMY_ROOTS = {"select", "query", "update", "delete"}
SUPABASE_FILTERS = {"eq": "eq", "in_": "in", "gt": "range", "gte": "range", "lt": "range", "lte": "range"}
SUPABASE_PATTERNS = {"like", "ilike"}
COLUMN_METHODS = {"in_": "in", "like": "like", "ilike": "like", "contains": "contains", "between": "range"}
BOOLEAN_NAME = ("is_", "has_", "can_")
USABLE = {"eq", "in", "range", "join"}


@dataclass(frozen=True, slots=True)
class Lookup:
    """A column a query finds rows by: `orders.status = ...`, `lower(email) = ...`."""

    table: Table
    column: str
    op: str
    function: str = ""

    @property
    def text(self) -> str:
        return f"{self.function}({self.column})" if self.function else self.column


@dataclass(frozen=True, slots=True)
class Query:
    """A request-path query and its lookups per known table."""

    function: FuncRef
    span: Span
    text: str
    lookups: tuple[Lookup, ...]
    order: tuple[Lookup, ...] = ()
    limited: bool = False
    via: Where | None = None  # the SQL function an RPC call runs


# ---- query shapes ----------------------------------------------------------------------


def _sql_lookups(schema: Schema, statement: SqlStatement) -> tuple[list[Lookup], list[Lookup]]:
    known = [t for t in (schema.table(n) for n in statement.tables) if t is not None]

    def table_of(table_name: str, column: str) -> Table | None:
        if table_name:
            table = schema.table(table_name)
            return table if table is not None and column in table.columns else None
        owners = [t for t in known if column in t.columns]
        return owners[0] if len(owners) == 1 and len(statement.tables) == 1 else None

    lookups = [
        Lookup(t, p.column, p.op, p.function)
        for p in statement.predicates
        if (t := table_of(p.table, p.column)) is not None
    ]
    order = [Lookup(t, p.column, "order") for p in statement.order_by if (t := table_of(p.table, p.column))]
    return lookups, order


def _split(value: Value | None) -> tuple[Value, str] | None:
    """`base.attr` as (base, attr); phase 1 folds attributes of imports into one dotted
    name (`Order.objects` with `Order` imported is `Imported("shop.models.Order.objects")`)."""
    if isinstance(value, Attr):
        return value.base, value.attr
    if isinstance(value, Imported) and "." in value.dotted.strip("."):
        base, attr = value.dotted.rsplit(".", 1)
        return Imported(base), attr
    return None


def _model_of(project: ProjectModel, value: Value | None, module: str) -> ClassRef | None:
    """The ORM model at the root of a query expression (`Order.objects...`, `select(User)`)."""
    models = project.schema.models
    while value is not None:
        if isinstance(value, CallResult):
            callee = value.callee
            split = _split(callee)
            if split is None or split[1] in SQLALCHEMY_ROOTS:
                ref = project.resolve(value.first_value, module) if value.first_value is not None else None
                if isinstance(ref, ClassRef) and ref in models:
                    return ref
            value = split[0] if split is not None else None
            continue
        split = _split(value)
        if split is None:
            return None
        ref = project.resolve(split[0], module)
        if isinstance(ref, ClassRef) and ref in models:
            return ref
        value = split[0]
    return None


def _django_lookups(schema: Schema, model: ClassRef, keywords: list[str]) -> list[Lookup]:
    table = schema.table(schema.models[model])
    fields = schema.fields.get(model, {})
    if table is None:
        return []
    found = []
    for keyword in keywords:
        parts = keyword.split("__")
        lookup = DJANGO_LOOKUPS.get(parts[-1]) if len(parts) > 1 else None
        if len(parts) > 2 or (len(parts) == 2 and lookup is None):
            continue  # a relation traversal (`customer__email`): a join this rule does not model
        op, function = lookup or ("eq", "")
        column = fields.get(parts[0], parts[0] if parts[0] in table.columns else "")
        if column in table.columns:
            found.append(Lookup(table, column, op, function))
    return found


def _sqlalchemy_lookups(
    project: ProjectModel, site: CallSite, method: str, model: ClassRef | None, module: str
) -> list[Lookup]:
    schema = project.schema
    found = []
    if method == "filter_by" and model is not None:
        table = schema.table(schema.models[model])
        for keyword in site.kwargs_names:
            column = schema.fields.get(model, {}).get(keyword, keyword)
            if table is not None and column in table.columns:
                found.append(Lookup(table, column, "eq"))
    for arg in site.args:
        op = ""
        target: Value | None = None
        method_split = _split(arg.callee) if isinstance(arg, CallResult) else None
        if isinstance(arg, Compare) and arg.op != "ne":
            op, target = arg.op, arg.left
        elif isinstance(arg, CallResult) and method_split is not None and method_split[1] in COLUMN_METHODS:
            op, target = COLUMN_METHODS[method_split[1]], method_split[0]
            if op == "like" and (arg.first_text or "").startswith("%"):
                op = "contains"
        split = _split(target)
        if split is None:
            continue
        owner = project.resolve(split[0], module)
        if isinstance(owner, ClassRef) and owner in schema.models:
            table = schema.table(schema.models[owner])
            column = schema.fields.get(owner, {}).get(split[1], split[1])
            if table is not None and column in table.columns:
                found.append(Lookup(table, column, op))
    return found


def _site_query(project: ProjectModel, function: FuncRef, site: CallSite) -> Query | None:
    """The lookups of one query call in a request-path function, if it is one."""
    schema = project.schema
    module = function.module
    if site.sql:
        lookups: list[Lookup] = []
        order: list[Lookup] = []
        limited = False
        for statement in site.sql:
            if statement.kind in ("select", "update", "delete"):
                found, sort = _sql_lookups(schema, statement)
                lookups += found
                order += sort
                limited = limited or statement.has_limit
        return Query(function, site.span, site.text, tuple(lookups), tuple(order), limited)
    split = _split(site.callee)
    if split is None:
        return None
    receiver, method = split
    ref = project.resolve(site.callee, module)
    kind = ref.kind if isinstance(ref, MethodRef) else ""
    if method in DJANGO_FILTERS and kind.startswith("django."):
        model = _model_of(project, site.callee, module)
        if model is None:
            return None
        chain = method_chain(receiver)
        keywords = [k for link in chain if link.name in DJANGO_FILTERS for k in link.keywords]
        keywords += list(site.kwargs_names)
        return Query(function, site.span, site.text, tuple(_django_lookups(schema, model, keywords)))
    if method in SQLALCHEMY_FILTERS and (kind.startswith("sqlalchemy") or kind == ""):
        model = _model_of(project, receiver, module)
        found = _sqlalchemy_lookups(project, site, method, model, module)
        return Query(function, site.span, site.text, tuple(found)) if found else None
    if method == "rpc" and kind.startswith("supabase") and site.args:
        return _rpc_query(project, function, site)
    if (method in SUPABASE_FILTERS or method in SUPABASE_PATTERNS) and kind.startswith("supabase"):
        chain = method_chain(receiver)
        table_name = next((link.first_text for link in chain if link.name in ("table", "from_")), None)
        table = schema.table(table_name or "")
        column = site.args[0] if site.args else None
        if table is None or not isinstance(column, Const) or column.value not in table.columns:
            return None
        op = SUPABASE_FILTERS.get(method, "like")
        pattern = site.args[1] if len(site.args) > 1 else None
        if op == "like" and isinstance(pattern, Const) and str(pattern.value).startswith("%"):
            op = "contains"
        return Query(function, site.span, site.text, (Lookup(table, str(column.value), op),))
    return None


def _rpc_query(project: ProjectModel, function: FuncRef, site: CallSite) -> Query | None:
    """`supabase.rpc("fn", ...)`: the queries in the body of the SQL function it calls."""
    name = site.args[0]
    body = (
        project.schema.functions.get(name.value)
        if isinstance(name, Const) and isinstance(name.value, str)
        else None
    )
    if body is None:
        return None
    lookups: list[Lookup] = []
    for statement in body.body:
        lookups += _sql_lookups(project.schema, statement)[0]
    return Query(function, site.span, site.text, tuple(lookups), via=body.where)


def request_queries(project: ProjectModel) -> Iterator[Query]:
    """Every query call on the request path, with its lookups on known tables."""
    if not project.schema.tables:
        return
    for function in sorted(project.request_path, key=lambda f: (f.module, f.qualname)):
        for site in project.functions[function].calls:
            query = _site_query(project, function, site)
            if query is not None and (query.lookups or query.order):
                yield query


# ---- what a query needs from the indexes --------------------------------------------------


def _is_boolean(schema: Schema, lookup: Lookup) -> bool:
    column = lookup.column
    return (lookup.table.name, column) in schema.boolean_columns or column.startswith(BOOLEAN_NAME)


def _unserved(schema: Schema, query: Query) -> Iterator[tuple[Table, list[Lookup]]]:
    """Tables the query finds rows in by lookups of which no index serves any."""
    tables: dict[str, list[Lookup]] = {}
    for lookup in query.lookups:
        tables.setdefault(lookup.table.name, []).append(lookup)
    filtered = {name for name, ls in tables.items() if any(lookup.op != "join" for lookup in ls)}
    for name, lookups in tables.items():
        table = lookups[0].table
        equal = frozenset(lk.column for lk in lookups if lk.op in ("eq", "in") and not lk.function)
        if any(table.serves(lk.column, lk.op, lk.function, equal) for lk in lookups):
            continue
        if name not in filtered and not filtered - {name}:
            continue  # joined only, and nothing else in the query is selective: a full join anyway
        yield table, lookups


def _label(project: ProjectModel, query: Query) -> str:
    return reached_from(project, query.function)


def _related(project: ProjectModel, query: Query, table: Table) -> tuple[Related, ...]:
    via = (Related(query.via.path, query.via.line, "the function's query runs here"),) if query.via else ()
    return (
        *request_chain(project, query.function),
        *via,
        Related(table.where.path, table.where.line, f"table `{table.name}` is defined here"),
    )


def _index_advice(table: Table, part: str) -> str:
    if table.origin == "django":
        return f"`models.Index(fields=[...])` in the model's Meta.indexes (or `db_index=True` on `{part}`)"
    if table.origin == "sqlalchemy":
        return f"`index=True` on the `{part}` column (or an `Index(...)` in `__table_args__`)"
    return f"`CREATE INDEX CONCURRENTLY ON {table.name} ({part});`"


@check("SL301")
def unindexed_query_column(project: ProjectModel, config: Config) -> Iterator[Finding]:
    schema = project.schema
    seen: set[tuple[FuncRef, str, str]] = set()
    for query in request_queries(project):
        for table, lookups in _unserved(schema, query):
            plain = [lk for lk in lookups if lk.op in USABLE and not lk.function]
            if not plain or len(plain) != len(lookups) or all(_is_boolean(schema, lk) for lk in plain):
                continue  # non-sargable lookups are SL304's; flags alone are not worth an index
            lookup = min(plain, key=lambda lk: ["eq", "in", "range", "join"].index(lk.op))
            key = (query.function, table.name, lookup.column)
            if key in seen:
                continue
            seen.add(key)
            yield finding(
                "SL301",
                project.path_of(query.function),
                query.span,
                f"`{query.text}` finds rows of `{table.name}` by `{lookup.column}`, and no index of "
                f"`{table.name}` starts with it: every call reads the whole table, so it slows down "
                f"as the table grows and under load{_label(project, query)}; add "
                f"{_index_advice(table, lookup.column)}",
                _related(project, query, table),
            )
        if query.limited and not query.lookups:
            yield from _sorted_scan(project, query)


def _sorted_scan(project: ProjectModel, query: Query) -> Iterator[Finding]:
    """`ORDER BY x LIMIT n` with no filter: without an index on x, a sort of every row."""
    for lookup in query.order[:1]:
        table = lookup.table
        if table.serves(lookup.column, "eq") or lookup.column == "created_at":
            continue  # created_at without an index is SL302's, reported once at the table
        yield finding(
            "SL301",
            project.path_of(query.function),
            query.span,
            f"`{query.text}` takes the first rows of `{table.name}` by `{lookup.column}`, and no index "
            f"starts with it: every call sorts the whole table to return a page{_label(project, query)}; "
            f"add {_index_advice(table, lookup.column)}",
            _related(project, query, table),
        )


@check("SL304")
def non_sargable_predicate(project: ProjectModel, config: Config) -> Iterator[Finding]:
    schema = project.schema
    seen: set[tuple[FuncRef, str, str]] = set()
    for query in request_queries(project):
        for table, lookups in _unserved(schema, query):
            blocked = [lk for lk in lookups if lk.op == "contains" or (lk.function and lk.op in USABLE)]
            if not blocked:
                continue
            lookup = blocked[0]
            key = (query.function, table.name, lookup.text)
            if key in seen:
                continue
            seen.add(key)
            if lookup.op == "contains":
                why = (
                    f"a pattern with a leading wildcard on `{table.name}.{lookup.column}` cannot use a "
                    "b-tree index, so every call reads the whole table"
                )
                fix = (
                    f"a trigram index (`CREATE EXTENSION pg_trgm; CREATE INDEX CONCURRENTLY ON {table.name} "
                    f"USING gin ({lookup.column} gin_trgm_ops);`, Django `GinIndex(..., "
                    "opclasses=['gin_trgm_ops'])`) or full-text search"
                )
            else:
                why = (
                    f"`{lookup.text}` wraps the column in a function, so an index on `{lookup.column}` "
                    "cannot serve it and every call reads the whole table"
                )
                fix = (
                    f"an expression index (`CREATE INDEX CONCURRENTLY ON {table.name} ({lookup.text});`, "
                    "Django "
                    f"`models.Index({lookup.function.capitalize()}('{lookup.column}'), name=...)`)"
                )
            yield finding(
                "SL304",
                project.path_of(query.function),
                query.span,
                f"`{query.text}`: {why}{_label(project, query)}; add {fix}",
                _related(project, query, table),
            )


def _at(where: Where) -> Span:
    return Span(where.line, 1, where.line, 1)


def _leads_with(table: Table, columns: tuple[str, ...]) -> bool:
    """Some index has exactly these columns, in any order, as its leading key parts."""
    wanted = set(columns)
    return any(
        set(index.parts[: len(columns)]) == wanted
        for index in table.indexes
        if index.definition.method in ("btree", "") and not index.definition.partial
    )


@check("SL302")
def missing_tenant_index(project: ProjectModel, config: Config) -> Iterator[Finding]:
    schema = project.schema
    for name in sorted(schema.tables):
        table = schema.tables[name]
        for column in config.tenant_columns:
            where = table.columns.get(column)
            if where is None or _leads_with(table, (column,)):
                continue
            yield finding(
                "SL302",
                where.path,
                _at(where),
                f"`{name}.{column}` has no index that starts with it: every tenant's query on "
                f"`{name}` reads every tenant's rows, so each customer gets slower as all the others "
                f"grow; add {_index_advice(table, column)} (or lead a composite index with it)",
            )
    ordered: dict[str, Query] = {}
    for query in request_queries(project):
        for lookup in query.order:
            if lookup.column == "created_at" and query.limited:
                ordered.setdefault(lookup.table.name, query)
    for name, query in sorted(ordered.items()):
        table = schema.tables[name]
        if any("created_at" in index.parts for index in table.indexes):
            continue
        where = table.columns.get("created_at", table.where)
        yield finding(
            "SL302",
            where.path,
            _at(where),
            f"`{name}` is listed newest first (`{query.text}`), and no index holds `created_at`: every "
            f"page sorts the whole table; add {_index_advice(table, 'created_at')} (after the tenant "
            "column when lists are per tenant)",
            (Related(project.path_of(query.function), query.span.line, "ordered by created_at here"),),
        )


@check("SL303")
def unindexed_foreign_key(project: ProjectModel, config: Config) -> Iterator[Finding]:
    schema = project.schema
    for name in sorted(schema.tables):
        table = schema.tables[name]
        for key in table.foreign_keys:
            if _leads_with(table, key.columns):
                continue
            columns = ", ".join(key.columns)
            yield finding(
                "SL303",
                key.where.path,
                _at(key.where),
                f"foreign key `{name}({columns})` → `{key.references}` has no index: Postgres does not "
                f"create one, so loading a `{key.references}` row's `{name}` and every delete or key "
                f"update on `{key.references}` scan all of `{name}`; add "
                f"{_index_advice(table, columns)}",
            )


@check("SL305")
def blocking_index_creation(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for index, table_existed in project.schema.index_statements:
        definition = index.definition
        if definition.concurrently or not table_existed:
            continue
        yield finding(
            "SL305",
            index.where.path,
            _at(index.where),
            f"index `{definition.name or ', '.join(definition.parts)}` on existing table "
            f"`{definition.table}` is built without CONCURRENTLY: the build holds a lock that blocks "
            "every write to the table until it finishes, minutes on a large table; use "
            "`CREATE INDEX CONCURRENTLY` (outside a transaction; Alembic `postgresql_concurrently=True` "
            "in an autocommit block, Django `AddIndexConcurrently` in a non-atomic migration)",
        )
