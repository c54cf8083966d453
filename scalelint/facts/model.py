"""The fact types phase 1 produces for every file.

Values are *symbolic*: phase 1 sees one file, so `pool.getconn()` where `pool` was
imported from another module is recorded as `CallResult(Attr(Imported("app.db.pool"),
"getconn"))`; phase 2 resolves it with the whole project and the API knowledge.
"""

from __future__ import annotations

from dataclasses import field

from scalelint.findings import Span
from scalelint.record import record


@record
class Imported:
    """A name bound by an import, expanded: `psycopg2.connect`, `.repo.fetch` (relative)."""

    dotted: str


@record
class Global:
    """A module-level name of the file itself (function, class, variable or builtin)."""

    name: str


@record
class Attr:
    """`base.attr`."""

    base: Value
    attr: str


@record
class CallResult:
    """What calling `callee` returns; `keywords` are the names of its keyword arguments
    (`filter(pk=...)`), `args` how many positional ones it had."""

    callee: Value
    keywords: tuple[str, ...] = ()
    args: int = 0
    first_text: str | None = None  # the first positional argument, when a string literal
    literal: bool = False  # every positional argument is a literal (`.offset(0)`)
    first_value: Value | None = None


@record
class Instance:
    """An instance of the type `of` (a parameter annotation, `self`)."""

    of: Value


@record
class Sequence:
    """A tuple or list display inside a function: the values it holds (SQL parameters)."""

    items: tuple[Value, ...]


@record
class Slice:
    """`of[a:b]`: a bounded part of a sequence or query when `upper` is set."""

    of: Value
    upper: Value | None
    lower: Value | None


@record
class Item:
    """An element obtained by iterating `of` (a loop target)."""

    of: Value


@record
class Const:
    """A literal: str, int, float, bool or None; `origin` names the variable that held it."""

    value: str | int | float | bool | None
    origin: str | None = field(default=None, compare=False)


@record
class DictLiteral:
    """A dict display, flattened: every string key and string value at any depth.

    Enough to read settings such as Django's `DATABASES` without evaluating them.
    """

    keys: frozenset[str]
    strings: frozenset[str]
    line: int


@record
class Compare:
    """`left <op> right` with one operator: `User.email == x` (`op` is eq, ne, range,
    in or null), as SQLAlchemy filters are written."""

    left: Value
    op: str


@record
class Computed:
    """A number computed from other values (`offset + limit - 1`): what it depends on."""

    operands: tuple[Value, ...]


@record
class Opaque:
    """A value phase 1 cannot describe (an unannotated parameter, a lambda); `text` shows it."""

    text: str


Value = (
    Imported
    | Global
    | Attr
    | CallResult
    | Instance
    | Item
    | Slice
    | Sequence
    | Const
    | DictLiteral
    | Compare
    | Computed
    | Opaque
)


@record
class Predicate:
    """One column a statement filters, joins or looks up on.

    `table` is the real table name when the column was qualified (aliases resolved) or
    the statement reads one table; empty when phase 2 must work it out. `op` is `eq`,
    `in`, `range`, `like` (anchored pattern), `contains` (leading wildcard), `null` or
    `join`; `function` names a function wrapped around the column (`lower`).
    """

    table: str
    column: str
    op: str
    function: str = ""


@record
class ColumnDef:
    """A column as DDL, Alembic or an ORM model declares it."""

    name: str
    primary_key: bool = False
    unique: bool = False
    indexed: bool = False  # the declaration itself creates an index (`index=True`, Django FK)
    references: str = ""  # the table a foreign key points at
    line: int = 0


@record
class IndexDef:
    """An index: its key parts in order (a column name, or an expression's text such
    as `lower(email)`), method and operator classes, partial WHERE and uniqueness."""

    table: str
    parts: tuple[str, ...]
    name: str = ""
    unique: bool = False
    method: str = "btree"
    opclasses: tuple[str, ...] = ()
    partial: bool = False
    concurrently: bool = False


@record
class PolicyDef:
    """A row-level-security policy; `using`/`check` are the expressions' SQL text."""

    name: str
    table: str
    command: str = "ALL"
    roles: tuple[str, ...] = ("public",)
    permissive: bool = True
    using: str = ""
    check: str = ""
    # Functions the expressions call (`auth.uid`), and whether each call sits in a
    # scalar sub-select (`(select auth.uid())`), which Postgres evaluates once per query.
    calls: tuple[tuple[str, bool], ...] = ()
    columns: tuple[str, ...] = ()  # the policy table's columns the expressions compare
    # Calls outside any sub-select, as written: (name, start, end, text), offsets in the
    # statement's text, so a fix can wrap them in `(select ...)`.
    bare_calls: tuple[tuple[str, int, int, str], ...] = ()
    parsed: bool = True  # False: sqlglot could not parse USING / WITH CHECK


@record
class SchemaChange:
    """One DDL effect, replayed in order by phase 2 to build the schema.

    `action`: create_table, add_columns, drop_table, drop_column, add_index, drop_index,
    add_unique, add_primary_key, add_foreign_key, enable_rls, create_policy,
    create_function. Only the fields the action needs are set.
    """

    action: str
    table: str = ""
    line: int = 0
    columns: tuple[ColumnDef, ...] = ()
    key: tuple[str, ...] = ()  # unique / primary / foreign key columns
    references: str = ""
    index: IndexDef | None = None
    policy: PolicyDef | None = None
    name: str = ""  # dropped index, function name
    volatility: str = ""  # functions: IMMUTABLE, STABLE or VOLATILE
    body: tuple[SqlStatement, ...] = ()  # a SQL function's queries


@record
class SqlStatement:
    """What one SQL statement does, as far as sqlglot could tell.

    `kind` is select/insert/update/delete/merge/ddl/other. Columns are
    `table.column` when the table is known, the bare column otherwise.
    """

    kind: str
    tables: tuple[str, ...]
    line: int = 1
    has_limit: bool = False
    filter_columns: tuple[str, ...] = ()
    order_columns: tuple[str, ...] = ()
    is_aggregate: bool = False
    text: str = ""
    session_effects: tuple[str, ...] = ()
    has_offset: bool = False
    limit_is_param: bool = False
    offset_is_param: bool = False
    eq_columns: tuple[str, ...] = ()
    is_exists: bool = False
    predicates: tuple[Predicate, ...] = ()
    order_by: tuple[Predicate, ...] = ()  # ORDER BY columns, tables resolved like predicates
    schema: tuple[SchemaChange, ...] = ()
    offset: int = 0  # where the statement starts in its .sql file (characters), for fixes


@record
class Loop:
    """An enclosing loop of an operation: for, async for, while or a comprehension."""

    kind: str
    line: int
    iterable: Value | None
    iter_text: str
    bounded: bool
    walks_rows: bool = False  # a `while` that fetches the rows of one result, one at a time

    @property
    def per_item(self) -> bool:
        """Runs its body once per element of a collection of unknown size."""
        return (self.kind != "while" or self.walks_rows) and not self.bounded


@record
class CallSite:
    """A call expression, unclassified: phase 2 decides what it does."""

    callee: Value
    text: str
    span: Span
    loops: tuple[Loop, ...] = ()
    args: tuple[Value | None, ...] = ()
    kwargs: tuple[tuple[str, Value | None], ...] = ()
    sql: tuple[SqlStatement, ...] = ()
    stored_in: str | None = None
    assigned_to: str | None = None
    as_context: bool = False
    in_finally: bool = False
    returned: bool = False
    defines: str | None = None
    awaited: bool = False
    in_lambda: bool = False
    consumed_by: str | None = None
    hoistable: bool = False  # in a per-item loop, reading nothing the loop changes
    method_span: Span | None = None  # the method's name in `chain.offset(n)`: where that step is

    @property
    def per_item_loop(self) -> Loop | None:
        """The innermost enclosing loop that runs once per element of data, if any."""
        return next((loop for loop in reversed(self.loops) if loop.per_item), None)

    @property
    def stored_globally(self) -> bool:
        """The result is kept in something that outlives the call (see `stored_in`)."""
        return self.stored_in is not None

    def kwarg(self, name: str) -> Value | None:
        for key, value in self.kwargs:
            if key == name:
                return value
        return None

    @property
    def kwargs_names(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.kwargs)

    def has_kwarg(self, name: str) -> bool:
        return any(key == name for key, _ in self.kwargs)


@record
class ItemRead:
    """`row.customer` inside a loop, where `row` is an element of `item.of`: an attribute
    that may load a related object lazily, once per row."""

    item: Item
    attr: str
    span: Span
    loops: tuple[Loop, ...]
    name: str = ""  # the loop variable: `row`


@record
class Param:
    """A function parameter with its annotation and default, as values."""

    name: str
    annotation: Value | None = None
    default: Value | None = None


@record
class Decorator:
    """`@callee` or `@callee(args)`; `call` is set for the call form."""

    callee: Value
    text: str
    line: int
    call: CallSite | None = None


@record
class FunctionFacts:
    """A function or method. `qualname` is local to the module: `Repo.fetch`."""

    qualname: str
    span: Span
    is_async: bool
    class_name: str | None
    decorators: tuple[Decorator, ...]
    params: tuple[Param, ...]
    calls: tuple[CallSite, ...]
    returns: tuple[Value, ...] = ()
    returned_names: tuple[str, ...] = ()
    param_calls: tuple[CallSite, ...] = ()
    item_stores: tuple[tuple[str, Span], ...] = ()  # `CACHE[key] = ...` into a module name, key not literal
    item_deletes: tuple[str, ...] = ()  # `del CACHE[key]`, or `CACHE = {}` under `global`
    item_reads: tuple[ItemRead, ...] = ()
    slices: tuple[tuple[Slice, Span], ...] = ()  # `qs[a:b]` in the body, at the `[`

    @property
    def line(self) -> int:
        return self.span.line


@record
class ClassFacts:
    """A class: its bases and the values of its attributes (body and `self.x = ...`)."""

    qualname: str
    span: Span
    bases: tuple[Value, ...]
    attributes: tuple[tuple[str, Value], ...]
    methods: tuple[str, ...]
    calls: tuple[CallSite, ...] = ()  # calls in the class body: model fields, `Index(...)`
    attribute_lines: tuple[tuple[str, int], ...] = ()  # `page_size_query_param = ...` -> its line


@record
class Setting:
    """A value read from a deployment or server config file (pgbouncer.ini, Procfile, ...).

    `key` is normalised: `pgbouncer.pool_mode`, `postgres.max_connections`, `app.workers`.
    """

    key: str
    value: str
    line: int


@record
class ParseError:
    """Why a file could not be analysed, and where."""

    message: str
    line: int = 1
    column: int = 1


Suppression = tuple[int, frozenset[str]]
"""A line and the rule ids silenced on it; an empty set silences every rule."""


@record
class FileFacts:
    """Everything phase 2 needs from one file. `path` is POSIX, relative to the root."""

    path: str
    language: str
    imports: tuple[tuple[str, str], ...] = ()  # (local name, dotted module or member)
    module_vars: tuple[tuple[str, Value], ...] = ()
    functions: tuple[FunctionFacts, ...] = ()
    classes: tuple[ClassFacts, ...] = ()
    module_calls: tuple[CallSite, ...] = ()
    sql: tuple[SqlStatement, ...] = ()
    settings: tuple[Setting, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    parse_error: ParseError | None = None
    notes: tuple[str, ...] = field(default=())
    unparsed_sql: int = 0  # SQL strings or statements sqlglot could not parse (no facts, no findings)
    # Why this file says the app connects through PgBouncer or Supabase's pooler (a
    # connection string, Django's DATABASES), if it does: read by SL106.
    pooler: str | None = None
    # Imports of a name the file imports again from elsewhere (`try: from rq import Queue`,
    # `except ImportError: from .compat import Queue`): `imports` has the later one, and
    # values built in between still name the earlier.
    earlier_imports: tuple[tuple[str, str], ...] = ()
