"""SL3 indexes: request-path queries on columns no index serves, tenant and foreign-key
columns without an index, predicates an index cannot use, blocking index builds.

Every rule reads the schema model (scalelint/schema.py) and stays silent on tables
whose definition it did not find. A query is *served* when any one of its lookups on a
table can use an index (the planner needs one way in, not one per column), so a
finding means the query reads the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding, reached_from, request_chain
from scalelint.config import Config
from scalelint.findings import Finding, Related, Span
from scalelint.project import ProjectModel
from scalelint.query_shapes import Lookup, Query, is_flag
from scalelint.request_path_types import FuncRef
from scalelint.schema import Table, Where

USABLE = {"eq", "in", "range", "join"}


def _unserved(query: Query) -> Iterator[tuple[Table, list[Lookup]]]:
    """Tables the query finds rows in by lookups no index serves.

    A table's own filters decide; a join column counts only for a table the query does
    not filter (the planner reaches it from the other side, through that column)."""
    tables: dict[str, list[Lookup]] = {}
    for lookup in query.lookups:
        tables.setdefault(lookup.table.name, []).append(lookup)
    filtered = {name for name, ls in tables.items() if any(lookup.op != "join" for lookup in ls)}
    for name, lookups in tables.items():
        table = lookups[0].table
        if name in filtered:
            lookups = [lk for lk in lookups if lk.op != "join"]
        elif not filtered:
            continue  # joins only, nothing selective anywhere: the whole join is read anyway
        equal = frozenset(lk.column for lk in lookups if lk.op in ("eq", "in") and not lk.function)
        if any(table.serves(lk.column, lk.op, lk.function, equal) for lk in lookups):
            continue
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
    if table.origin == "alembic":
        return (
            f'a migration with `op.create_index(..., "{table.name}", ["{part}"], '
            "postgresql_concurrently=True)`"
        )
    return f"`CREATE INDEX CONCURRENTLY ON {table.name} ({part});`"


def _sargable_advice(table: Table, lookup: Lookup) -> tuple[str, str]:
    """Why an index cannot serve a non-sargable lookup, and the index that would."""
    column = lookup.column
    if lookup.op == "contains":
        why = (
            f"a pattern with a leading wildcard on `{table.name}.{column}` cannot use a b-tree index, "
            "so every call reads the whole table"
        )
        if lookup.function == "upper":  # Django's icontains: UPPER(col::text) LIKE UPPER(%s)
            return why, (
                f"a trigram index on `UPPER({column})`, which is what Django's case-insensitive lookups "
                f"compare (`GinIndex(OpClass(Upper('{column}'), name='gin_trgm_ops'), name=...)`), or "
                "full-text search"
            )
        return why, (
            f"a trigram index (`CREATE EXTENSION pg_trgm; CREATE INDEX CONCURRENTLY ON {table.name} "
            f"USING gin ({column} gin_trgm_ops);`, SQLAlchemy `Index(..., postgresql_using='gin', "
            f"postgresql_ops={{'{column}': 'gin_trgm_ops'}})`) or full-text search"
        )
    why = (
        f"`{lookup.text}` wraps the column in a function, so an index on `{column}` cannot serve it and "
        "every call reads the whole table"
    )
    if table.origin == "django" and lookup.function not in ("upper", "lower"):
        return why, (
            f"a range on the column instead (`{column}__gte=start, {column}__lt=end`), or an expression "
            f"index on what the `__{lookup.function}` transform computes "
            f"(`models.Index(Trunc...('{column}'), name=...)`)"
        )
    if table.origin == "django":
        return (
            why,
            f"an expression index (`models.Index({lookup.function.capitalize()}('{column}'), name=...)`)",
        )
    if table.origin == "sqlalchemy":
        return why, f"an expression index (`Index('...', func.{lookup.function}({column}))` on the table)"
    return why, f"an expression index (`CREATE INDEX CONCURRENTLY ON {table.name} ({lookup.text});`)"


def _once(seen: set[tuple[FuncRef, str, str]], query: Query, table: Table, what: str) -> bool:
    """One finding per function, table and column, however many calls repeat the query."""
    key = (query.function, table.name, what)
    if key in seen:
        return False
    seen.add(key)
    return True


@check("SL301")
def unindexed_query_column(project: ProjectModel, config: Config) -> Iterator[Finding]:
    schema = project.schema
    seen: set[tuple[FuncRef, str, str]] = set()
    for query in project.request_queries:
        for table, lookups in _unserved(query):
            plain = [lk for lk in lookups if lk.op in USABLE and not lk.function]
            if (
                not plain
                or len(plain) != len(lookups)
                or all(is_flag(schema, table, lk.column) for lk in plain)
            ):
                continue  # non-sargable lookups are SL304's; flags alone are not worth an index
            lookup = min(plain, key=lambda lk: ["eq", "in", "range", "join"].index(lk.op))
            if _once(seen, query, table, lookup.column):
                yield _unindexed(
                    project,
                    query,
                    table,
                    lookup.column,
                    f"finds rows of `{table.name}` by `{lookup.column}`, and no index of `{table.name}` "
                    "starts with it: every call reads the whole table, so it slows down as the table "
                    "grows and under load",
                )
        if query.limited and not query.lookups and query.order:
            lookup = query.order[0]
            table = lookup.table
            # created_at without an index is SL302's, reported once at the table.
            if table.serves(lookup.column) or lookup.column == "created_at":
                continue
            if _once(seen, query, table, lookup.column):
                yield _unindexed(
                    project,
                    query,
                    table,
                    lookup.column,
                    f"takes the first rows of `{table.name}` by `{lookup.column}`, and no index starts "
                    "with it: every call sorts the whole table to return a page",
                )


def _unindexed(project: ProjectModel, query: Query, table: Table, column: str, what: str) -> Finding:
    """An SL301 finding at the query, with the request chain and the table definition."""
    return finding(
        "SL301",
        project.path_of(query.function),
        query.span,
        f"`{query.text}` {what}{_label(project, query)}; add {_index_advice(table, column)}",
        _related(project, query, table),
    )


@check("SL304")
def non_sargable_predicate(project: ProjectModel, config: Config) -> Iterator[Finding]:
    seen: set[tuple[FuncRef, str, str]] = set()
    for query in project.request_queries:
        for table, lookups in _unserved(query):
            blocked = [lk for lk in lookups if lk.op == "contains" or (lk.function and lk.op in USABLE)]
            if not blocked or not _once(seen, query, table, blocked[0].text):
                continue
            why, fix = _sargable_advice(table, blocked[0])
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
    for query in project.request_queries:
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
            "page sorts every row the query matches (the whole table when it filters nothing); add "
            f"{_index_advice(table, 'created_at')} (after the tenant column when lists are per tenant)",
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
