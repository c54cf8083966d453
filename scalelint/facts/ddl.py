"""DDL statements to SchemaChange facts: tables, columns, keys, indexes, RLS, functions.

sqlglot parses CREATE/ALTER/DROP TABLE and CREATE/DROP INDEX into trees. Postgres
statements it keeps as opaque commands (`CREATE POLICY`, `ALTER TABLE ... ENABLE ROW
LEVEL SECURITY`, `CREATE FUNCTION`) are split into their clauses here and the
expressions inside (a policy's USING, a function's body) are parsed by sqlglot again,
so the rules look at parsed SQL, never at string matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from scalelint.facts.model import ColumnDef, IndexDef, PolicyDef, SchemaChange, SqlStatement

Analyse = Callable[[str], "tuple[SqlStatement, ...] | None"]

_NAME = r'(?:"[^"]+"|[\w$]+)'
_QUALIFIED = rf"(?:{_NAME}\s*\.\s*)?({_NAME})"
ENABLE_RLS = re.compile(
    rf"^\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_QUALIFIED}\s+(?:FORCE|ENABLE)\s+ROW\s+LEVEL\s+SECURITY",
    re.I,
)
POLICY_HEAD = re.compile(rf"^\s*CREATE\s+POLICY\s+({_NAME})\s+ON\s+{_QUALIFIED}", re.I | re.S)
FUNCTION_HEAD = re.compile(rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+{_QUALIFIED}\s*\(", re.I)
DOLLAR_BODY = re.compile(r"(\$[\w]*\$)(.*?)\1", re.S)
VOLATILITY = re.compile(r"\b(IMMUTABLE|STABLE|VOLATILE)\b", re.I)
BODY_PREFIX = re.compile(r"^(?:\s*\b(?:begin|return\s+query|return)\b)+", re.I)
LANGUAGE = re.compile(r"\bLANGUAGE\s+'?(\w+)", re.I)


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') and name.endswith('"') else name.lower()


def _table_name(node: exp.Expression | None) -> str:
    if isinstance(node, exp.Schema):
        node = node.this
    return node.name if isinstance(node, exp.Table) else ""


def _identifiers(node: exp.Expression) -> tuple[str, ...]:
    return tuple(e.name for e in node.expressions if isinstance(e, (exp.Identifier, exp.Column)))


def _reference_table(reference: exp.Expression | None) -> str:
    return _table_name(reference.this) if isinstance(reference, exp.Reference) else ""


def _column(node: exp.ColumnDef) -> ColumnDef:
    kinds = [c.args.get("kind") for c in node.args.get("constraints") or []]
    return ColumnDef(
        name=node.name,
        primary_key=any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in kinds),
        unique=any(isinstance(k, exp.UniqueColumnConstraint) for k in kinds),
        references=next((_reference_table(k) for k in kinds if isinstance(k, exp.Reference)), ""),
    )


def _constraint(table: str, node: exp.Expression, line: int) -> SchemaChange | None:
    """A table-level PRIMARY KEY / UNIQUE / FOREIGN KEY, named or not."""
    if isinstance(node, exp.Constraint):
        inner = next((e for e in node.expressions), None)
        return _constraint(table, inner, line) if inner is not None else None
    if isinstance(node, exp.PrimaryKey):
        return SchemaChange("add_primary_key", table, line, key=_identifiers(node))
    if isinstance(node, exp.UniqueColumnConstraint):
        schema = node.this
        columns = _identifiers(schema) if isinstance(schema, exp.Schema) else ()
        return SchemaChange("add_unique", table, line, key=columns) if columns else None
    if isinstance(node, exp.ForeignKey):
        return SchemaChange(
            "add_foreign_key",
            table,
            line,
            key=_identifiers(node),
            references=_reference_table(node.args.get("reference")),
        )
    return None


def _index_part(node: exp.Expression) -> tuple[str, str]:
    """(key part, operator class) of one index column: `email`, `lower(email)`."""
    if isinstance(node, exp.Ordered):
        node = node.this
    opclass = ""
    if isinstance(node, exp.Opclass):
        opclass = node.expression.name.lower()
        node = node.this
    if isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column):
        return node.name, opclass
    return node.sql(dialect="postgres").lower(), opclass


def _index(create: exp.Create, line: int) -> SchemaChange | None:
    index = create.this
    if not isinstance(index, exp.Index):
        return None
    table = _table_name(index.args.get("table"))
    params = index.args.get("params")
    if not table or not isinstance(params, exp.IndexParameters):
        return None
    parts = [_index_part(c) for c in params.args.get("columns") or []]
    using = params.args.get("using")
    return SchemaChange(
        "add_index",
        table,
        line,
        index=IndexDef(
            table=table,
            parts=tuple(p for p, _ in parts),
            name=index.name,
            unique=bool(create.args.get("unique")),
            method=(using.name if using is not None else "btree").lower(),
            opclasses=tuple(o for _, o in parts),
            partial=params.args.get("where") is not None,
            concurrently=bool(create.args.get("concurrently")),
        ),
    )


def _create_table(create: exp.Create, line: int) -> list[SchemaChange]:
    schema = create.this
    table = _table_name(schema)
    if not table:
        return []
    if not isinstance(schema, exp.Schema):
        return [SchemaChange("create_table", table, line)]
    columns = tuple(_column(c) for c in schema.expressions if isinstance(c, exp.ColumnDef))
    changes = [SchemaChange("create_table", table, line, columns=columns)]
    for node in schema.expressions:
        change = _constraint(table, node, line)
        if change is not None:
            changes.append(change)
    return changes


def _alter(alter: exp.Alter, line: int) -> list[SchemaChange]:
    table = _table_name(alter.this)
    if not table or str(alter.args.get("kind", "")).upper() != "TABLE":
        return []
    changes: list[SchemaChange] = []
    for action in alter.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            changes.append(SchemaChange("add_columns", table, line, columns=(_column(action),)))
        elif isinstance(action, exp.AddConstraint):
            changes.extend(c for e in action.expressions if (c := _constraint(table, e, line)) is not None)
        elif isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
            names = tuple(t.name for t in action.args.get("tables") or [])
            changes.append(SchemaChange("drop_column", table, line, key=names))
        elif isinstance(action, exp.AlterRename):
            changes.append(SchemaChange("rename_table", table, line, name=_table_name(action.this)))
    return changes


def _drop(drop: exp.Drop, line: int) -> list[SchemaChange]:
    kind = str(drop.args.get("kind", "")).upper()
    names = [t.name for t in drop.args.get("tables") or [] if isinstance(t, exp.Table)]
    if kind == "TABLE":
        return [SchemaChange("drop_table", name, line) for name in names]
    if kind == "INDEX":
        return [SchemaChange("drop_index", line=line, name=name) for name in names]
    return []


def schema_changes(tree: exp.Expression, line: int) -> tuple[SchemaChange, ...]:
    """What a parsed DDL statement does to the schema."""
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind", "")).upper()
        if kind == "TABLE":
            return tuple(_create_table(tree, line))
        if kind == "INDEX":
            change = _index(tree, line)
            return (change,) if change is not None else ()
        return ()
    if isinstance(tree, exp.Alter):
        return tuple(_alter(tree, line))
    if isinstance(tree, exp.Drop):
        return tuple(_drop(tree, line))
    return ()


# ---- statements sqlglot keeps as commands ----------------------------------------


def _clause(text: str, keyword: str) -> str:
    """The parenthesised expression after USING / WITH CHECK, brackets balanced."""
    match = re.search(rf"\b{keyword}\s*\(", text, re.I)
    if match is None:
        return ""
    depth, start = 0, match.end() - 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index].strip()
    return ""


def _policy(text: str, line: int) -> SchemaChange | None:
    head = POLICY_HEAD.match(text)
    if head is None:
        return None
    rest = text[head.end() :]
    before_using = re.split(r"\bUSING\b|\bWITH\s+CHECK\b", rest, maxsplit=1, flags=re.I)[0]
    command = re.search(r"\bFOR\s+(ALL|SELECT|INSERT|UPDATE|DELETE)\b", before_using, re.I)
    roles = re.search(r"\bTO\s+(.+)$", before_using, re.I | re.S)
    role_names = tuple(_unquote(r.strip()) for r in roles.group(1).split(",")) if roles else ("public",)
    table = _unquote(head.group(2))
    using, check = _clause(rest, "USING"), _clause(rest, r"WITH\s+CHECK")
    calls, columns, parsed = _policy_expressions([e for e in (using, check) if e])
    clauses = re.search(r"\bUSING\b|\bWITH\s+CHECK\b", rest, re.I)
    called = {name for name, _ in calls}
    bare = (
        tuple(c for c in _bare_calls(text, head.end() + clauses.start()) if c[0] in called) if clauses else ()
    )
    return SchemaChange(
        "create_policy",
        table,
        line,
        policy=PolicyDef(
            name=_unquote(head.group(1)),
            table=table,
            command=command.group(1).upper() if command else "ALL",
            roles=tuple(r for r in role_names if r),
            permissive=re.search(r"\bAS\s+RESTRICTIVE\b", before_using, re.I) is None,
            using=using,
            check=check,
            calls=calls,
            columns=columns,
            parsed=parsed,
            bare_calls=bare,
        ),
    )


def _policy_expressions(
    expressions: list[str],
) -> tuple[tuple[tuple[str, bool], ...], tuple[str, ...], bool]:
    """The function calls (with whether each is inside a scalar sub-select) and the
    compared columns of the policy's own table, from its USING / WITH CHECK."""
    calls: list[tuple[str, bool]] = []
    columns: list[str] = []
    for text in expressions:
        try:
            tree = sqlglot.parse_one(text, read="postgres")
        except (SqlglotError, RecursionError, ValueError, KeyError):
            return (), (), False
        for node in tree.find_all(exp.Anonymous):
            name = str(node.this).lower()
            if isinstance(node.parent, exp.Dot) and node.parent.expression is node:
                name = f"{node.parent.this.name.lower()}.{name}"
            calls.append((name, _in_scalar_select(node)))
        for column in tree.find_all(exp.Column):
            if not column.table and column.find_ancestor(exp.Select) is None:
                columns.append(column.name)
    return tuple(dict.fromkeys(calls)), tuple(dict.fromkeys(columns)), True


def _bare_calls(text: str, start: int) -> tuple[tuple[str, int, int, str], ...]:
    """Function calls after `start` not directly inside `(select ...)`, with their spans:
    `auth.uid()` in `user_id = auth.uid()`, not in `(select auth.uid())`."""
    try:
        tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(text)
    except (SqlglotError, ValueError, KeyError):
        return ()
    found = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        first = index
        names = [token]
        while (
            index + 2 < len(tokens)
            and tokens[index + 1].token_type == TokenType.DOT
            and tokens[index + 2].token_type == TokenType.VAR
        ):
            index += 2
            names.append(tokens[index])
        opening = index + 1
        if (
            token.start >= start
            and token.token_type == TokenType.VAR
            and opening < len(tokens)
            and tokens[opening].token_type == TokenType.L_PAREN
        ):
            depth, close = 0, opening
            for close in range(opening, len(tokens)):
                kind = tokens[close].token_type
                depth += kind == TokenType.L_PAREN
                depth -= kind == TokenType.R_PAREN
                if depth == 0:
                    break
            if first == 0 or tokens[first - 1].token_type != TokenType.SELECT:
                end = tokens[close].end + 1
                name = ".".join(t.text.lower() for t in names)
                found.append((name, token.start, end, text[token.start : end]))
        index += 1
    return tuple(found)


def _in_scalar_select(node: exp.Expression) -> bool:
    """Inside `(select f())` with no FROM: an init plan Postgres runs once per statement."""
    select = node.find_ancestor(exp.Select)
    while select is not None:
        if not select.args.get("from_") and not select.args.get("from"):
            return True
        select = select.find_ancestor(exp.Select)
    return False


def _function(text: str, line: int, analyse: Analyse) -> SchemaChange | None:
    head = FUNCTION_HEAD.match(text)
    if head is None:
        return None
    body = DOLLAR_BODY.search(text)
    outside = text if body is None else text[: body.start()] + text[body.end() :]
    volatility = VOLATILITY.search(outside)
    language = LANGUAGE.search(outside)
    statements: tuple[SqlStatement, ...] = ()
    if body is not None and language is not None and language.group(1).lower() in ("sql", "plpgsql"):
        for chunk in re.split(r";\s*", body.group(2)):
            query = BODY_PREFIX.sub("", chunk).strip()
            if re.match(r"(select|with|update|delete|insert)\b", query, re.I):
                statements += analyse(query) or ()
    return SchemaChange(
        "create_function",
        line=line,
        name=_unquote(head.group(1)),
        volatility=volatility.group(1).upper() if volatility else "VOLATILE",
        body=statements,
    )


def command_changes(text: str, line: int, analyse: Analyse) -> tuple[SchemaChange, ...]:
    """Schema effects of the Postgres statements sqlglot does not model."""
    rls = ENABLE_RLS.match(text)
    if rls is not None:
        return (SchemaChange("enable_rls", _unquote(rls.group(1)), line),)
    change = _policy(text, line) or _function(text, line, analyse)
    return (change,) if change is not None else ()
