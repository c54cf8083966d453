"""SQL text to SqlStatement facts with sqlglot (postgres dialect by default).

SQL that sqlglot cannot parse yields no statement and is counted by the caller; it
is never an error: real projects hold vendor syntax and templated fragments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from scalelint.facts.ddl import command_changes, schema_changes
from scalelint.facts.model import Predicate, SchemaChange, SqlStatement
from scalelint.facts.sql_text import DEFAULT_DIALECT, SESSION_STATEMENT, session_effects

logging.getLogger("sqlglot").setLevel(logging.CRITICAL)


def _kind(tree: exp.Expression) -> str:
    if isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        return "select"
    if isinstance(tree, exp.Insert):
        return "insert"
    if isinstance(tree, exp.Update):
        return "update"
    if isinstance(tree, exp.Delete):
        return "delete"
    if isinstance(tree, exp.Merge):
        return "merge"
    if isinstance(tree, (exp.Create, exp.Alter, exp.Drop)):
        return "ddl"
    return "other"


def _column_name(column: exp.Column) -> str:
    return f"{column.table}.{column.name}" if column.table else column.name


def _columns_under(node: exp.Expression | None) -> tuple[str, ...]:
    if node is None:
        return ()
    return tuple(
        dict.fromkeys(
            _column_name(c) for c in node.find_all(exp.Column) if not c.name.startswith("__scalelint")
        )
    )


COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "eq",
    exp.GT: "range",
    exp.GTE: "range",
    exp.LT: "range",
    exp.LTE: "range",
    exp.Between: "range",
    exp.In: "in",
    exp.Is: "null",
    exp.Like: "like",
    exp.ILike: "ilike",
}


def _pattern_is_infix(pattern: exp.Expression | None) -> bool:
    """`'%foo'`, `'%' || $1 || '%'`, `concat('%', x)`: a pattern with a leading wildcard."""
    if pattern is None:
        return False
    leaves = (exp.Literal, exp.Column, exp.Parameter, exp.Placeholder)
    first = next((n for n in pattern.walk() if isinstance(n, leaves)), None)
    return isinstance(first, exp.Literal) and first.is_string and str(first.this).startswith("%")


def _compared_column(node: exp.Expression | None) -> tuple[exp.Column, str] | None:
    """The column a comparison side reads, directly or wrapped in one function."""
    if isinstance(node, exp.Column):
        return node, ""
    if isinstance(node, exp.Func) and not isinstance(node, exp.AggFunc):
        inner = [a for a in node.args.values() if isinstance(a, exp.Expression)]
        if len(inner) == 1 and isinstance(inner[0], exp.Column):
            name = node.sql_name().lower() if not isinstance(node, exp.Anonymous) else str(node.this).lower()
            return inner[0], name
    return None


def _predicates(
    conditions: list[exp.Expression], resolve: Callable[[exp.Column], str]
) -> tuple[Predicate, ...]:
    found: list[Predicate] = []
    for condition in conditions:
        for node in condition.walk():
            op = next((name for kind, name in COMPARISONS.items() if type(node) is kind), None)
            if op is None:
                continue
            side = _compared_column(node.this)
            other = node.args.get("expression")
            if side is None and op == "eq":
                side, other = _compared_column(other), node.this
            if side is None or side[0].name.startswith("__scalelint"):
                continue
            column, function = side
            if op == "eq" and isinstance(other, exp.Column):
                op = "join"
                if not other.name.startswith("__scalelint"):
                    found.append(Predicate(resolve(other), other.name, op))
            elif op in ("like", "ilike"):
                op = "contains" if _pattern_is_infix(other) else op
            found.append(Predicate(resolve(column), column.name, op, function))
    return tuple(dict.fromkeys(found))


def _statement(tree: exp.Expression, line: int, text: str) -> SqlStatement:
    kind = _kind(tree)
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    table_nodes = [t for t in tree.find_all(exp.Table) if t.name and t.name not in cte_names]
    tables = tuple(dict.fromkeys(t.name for t in table_nodes))
    aliases = {t.alias_or_name: t.name for t in table_nodes}

    def resolve(column: exp.Column) -> str:
        if column.table:
            return aliases.get(column.table, "")
        return tables[0] if len(tables) == 1 else ""

    predicates: tuple[Predicate, ...] = ()
    order_by: tuple[Predicate, ...] = ()
    filters: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    has_limit = False
    aggregate = False
    paging: dict[str, bool] = {}
    eq_columns: tuple[str, ...] = ()
    is_exists = False
    if kind == "select":
        limit = tree.args.get("limit") or tree.args.get("fetch")
        offset = tree.args.get("offset")
        has_limit = bool(limit)
        paging = {
            "has_offset": bool(offset),
            "limit_is_param": _is_parameter(limit),
            "offset_is_param": _is_parameter(offset),
        }
        eq_columns = _equality_columns(tree.args.get("where"))
        is_exists = (
            isinstance(tree, exp.Select)
            and bool(tree.expressions)
            and all(isinstance(e.unalias(), exp.Exists) for e in tree.expressions)
        )
        wheres = [w for w in tree.find_all(exp.Where)]
        joins = [j.args.get("on") for j in tree.find_all(exp.Join)]
        filters = tuple(dict.fromkeys(c for node in [*wheres, *joins] for c in _columns_under(node)))
        order = _columns_under(tree.args.get("order"))
        predicates = _predicates([*wheres, *(j for j in joins if j is not None)], resolve)
        if len(tables) == 1:
            # One table: `tenant_id = p_tenant` compares with a parameter or an outer
            # column (a function's argument, a correlated sub-query), not a join.
            predicates = tuple(replace(p, op="eq") if p.op == "join" else p for p in predicates)
        order_node = tree.args.get("order")
        if order_node is not None:
            order_by = tuple(Predicate(resolve(c), c.name, "order") for c in order_node.find_all(exp.Column))
        if isinstance(tree, exp.Select) and not tree.args.get("group"):
            aggregate = any(e.find(exp.AggFunc) is not None for e in tree.expressions) and not any(
                isinstance(e, exp.Star) for e in tree.expressions
            )
    elif kind in ("update", "delete"):
        filters = _columns_under(tree.args.get("where"))
        where = tree.args.get("where")
        predicates = _predicates([where] if where is not None else [], resolve)
    return SqlStatement(
        kind=kind,
        tables=tables,
        line=line,
        has_limit=has_limit,
        filter_columns=filters,
        order_columns=order,
        is_aggregate=aggregate,
        text=text.strip()[:500],
        session_effects=session_effects(text),
        eq_columns=eq_columns,
        is_exists=is_exists,
        predicates=predicates,
        order_by=order_by,
        schema=_schema(tree, line, text),
        **paging,
    )


def _schema(tree: exp.Expression, line: int, text: str) -> tuple[SchemaChange, ...]:
    """Tables and indexes from sqlglot's tree; policies, RLS and functions from the text."""
    return schema_changes(tree, line) or command_changes(text, line, analyse)


def _is_parameter(node: exp.Expression | None) -> bool:
    """LIMIT/OFFSET given as a placeholder or an f-string hole: the caller decides."""
    if node is None:
        return False
    value = node.args.get("expression") or node.this if isinstance(node, (exp.Limit, exp.Offset)) else node
    if value is None:
        return False
    return isinstance(value, (exp.Parameter, exp.Placeholder)) or (
        isinstance(value, exp.Column) and value.name.startswith("__scalelint")
    )


def _equality_columns(where: exp.Expression | None) -> tuple[str, ...]:
    """Columns pinned by `col = value` in the top-level AND of a WHERE."""
    if where is None:
        return ()
    found: list[str] = []
    pending = [where.this if isinstance(where, exp.Where) else where]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.And):
            pending.extend([node.left, node.right])
        elif isinstance(node, exp.Paren):
            pending.append(node.this)
        elif isinstance(node, exp.EQ):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if isinstance(side, exp.Column) and not isinstance(other, exp.Column):
                    found.append(_column_name(side))
    return tuple(dict.fromkeys(found))


@lru_cache(maxsize=4096)
def analyse(text: str, dialect: str = DEFAULT_DIALECT) -> tuple[SqlStatement, ...] | None:
    """Statements of an SQL string; None when sqlglot cannot parse it."""
    effects = session_effects(text)
    if effects and SESSION_STATEMENT.match(text):
        return (SqlStatement(kind="session", tables=(), text=text.strip()[:500], session_effects=effects),)
    try:
        trees = sqlglot.parse(text, read=dialect)
    except (SqlglotError, RecursionError, ValueError, KeyError):
        # Postgres-only syntax sqlglot rejects (`language sql security definer`): a
        # policy, RLS switch or function is still read from its clauses.
        changes = command_changes(text, 1, analyse)
        return (
            (SqlStatement(kind="ddl", tables=(), text=text.strip()[:500], schema=changes),)
            if changes
            else None
        )
    return tuple(_statement(t, 1, text) for t in trees if isinstance(t, exp.Expression))


def split_statements(text: str, dialect: str = DEFAULT_DIALECT) -> list[tuple[int, int, str]] | None:
    """(first line, offset, text) of each statement of an SQL file; None if it cannot be tokenized."""
    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(text)
    except (SqlglotError, ValueError, KeyError):
        return None
    chunks: list[tuple[int, int, str]] = []
    start: int | None = None
    line = 1
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            if start is not None:
                chunks.append((line, start, text[start : token.start]))
            start = None
            continue
        if start is None:
            # The line from the offset: sqlglot's token lines drift after some
            # multi-word keywords (`language sql security definer`).
            start = token.start
            line = text.count("\n", 0, start) + 1
        end = token.end
    if start is not None:
        chunks.append((line, start, text[start : end + 1]))
    return chunks


def analyse_file(text: str, dialect: str = DEFAULT_DIALECT) -> tuple[list[SqlStatement], int]:
    """Statements of an SQL file with their first lines, and how many failed to parse."""
    chunks = split_statements(text, dialect)
    if chunks is None:
        return [], 1
    statements: list[SqlStatement] = []
    failed = 0
    for line, offset, chunk in chunks:
        parsed = analyse(chunk, dialect)
        if parsed is None:
            failed += 1
            continue
        statements.extend(replace(s, line=line, offset=offset) for s in parsed)
    return statements, failed


def is_dialect(name: str) -> bool:
    """Whether sqlglot knows a dialect of this name."""
    try:
        sqlglot.Dialect.get_or_raise(name)
    except ValueError:
        return False
    return True
