"""What a query looks rows up by: its lookups on the tables of the schema model.

A query is read where it runs — at the operation that executes or evaluates it
(`execute`, `.first()`, iterating a queryset, supabase `.execute()`) — so every filter
of a chain counts together, however the chain was built (`qs = ...filter(a=1)`,
`qs = qs.filter(b=2)`, `for row in qs`). A Django queryset handed on unevaluated
(`return Order.objects.filter(...)`, `Serializer(Order.objects.filter(...))`) is
read at its last filter call. Raw SQL lookups come from the statement facts; ORM
lookups from the chain's calls: Django keywords, SQLAlchemy comparisons
(`User.email == x`, `User.name.ilike("%x")`, `func.lower(User.email) == x`) and
`filter_by` keywords, supabase `.eq("col", v)` and friends.
"""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.facts.model import (
    Attr,
    CallResult,
    CallSite,
    Compare,
    Const,
    Imported,
    Item,
    Slice,
    SqlStatement,
    Value,
)
from scalelint.findings import Span
from scalelint.project import ClassRef, MethodRef, Operation, ProjectModel
from scalelint.record import record
from scalelint.request_path_types import FuncRef
from scalelint.schema import Schema, Table, Where

# Django field lookups (the last `__` part): what each asks of an index.
DJANGO_LOOKUPS = {
    "exact": ("eq", ""),
    "iexact": ("eq", "upper"),
    "in": ("in", ""),
    "gt": ("range", ""),
    "gte": ("range", ""),
    "lt": ("range", ""),
    "lte": ("range", ""),
    "range": ("range", ""),
    "year": ("range", ""),  # Django turns `__year=` into a BETWEEN on the column
    "isnull": ("null", ""),
    "startswith": ("like", ""),
    "istartswith": ("like", "upper"),
    "contains": ("contains", ""),
    "icontains": ("contains", "upper"),
    "endswith": ("contains", ""),
    "iendswith": ("contains", "upper"),
}
# Transforms wrap the column in a function (`placed_at__date=` is `placed_at::date = ...`).
DJANGO_TRANSFORMS = {"date", "time", "month", "day", "week", "week_day", "iso_week_day", "quarter", "hour"}
DJANGO_TRANSFORMS |= {"minute", "second", "lower", "upper", "unaccent"}
DJANGO_FILTERS = {"filter", "exclude", "get", "aget", "get_or_create", "aget_or_create", "update_or_create"}
SQLALCHEMY_FILTERS = {"where", "filter", "filter_by"}
SQLALCHEMY_ROOTS = {"select", "query", "update", "delete"}
SUPABASE_FILTERS = {"eq": "eq", "in_": "in", "gt": "range", "gte": "range", "lt": "range", "lte": "range"}
SUPABASE_PATTERNS = {"like", "ilike"}
COLUMN_METHODS = {"in_": "in", "like": "like", "ilike": "like", "contains": "contains", "between": "range"}
ORDER_METHODS = {"order_by", "order"}
QUERY_OPS = {"db.query", "db.write", "db.execute"}


@record
class Lookup:
    """A column a query finds rows by: `orders.status = ...`, `lower(email) = ...`."""

    table: Table
    column: str
    op: str  # eq, in, range, join, null, like, contains, order
    function: str = ""

    @property
    def text(self) -> str:
        return f"{self.function}({self.column})" if self.function else self.column


@record
class Query:
    """A request-path query and its lookups on known tables."""

    function: FuncRef
    span: Span
    text: str
    lookups: tuple[Lookup, ...]
    order: tuple[Lookup, ...] = ()
    limited: bool = False
    via: Where | None = None  # the SQL function an RPC call runs


# ---- values ----------------------------------------------------------------------------------


def split(value: Value | None) -> tuple[Value, str] | None:
    """`base.attr` as (base, attr); phase 1 folds attributes of imports into one dotted
    name (`Order.objects` with `Order` imported is `Imported("shop.models.Order.objects")`)."""
    if isinstance(value, Attr):
        return value.base, value.attr
    if isinstance(value, Imported) and "." in value.dotted.strip("."):
        base, attr = value.dotted.rsplit(".", 1)
        return Imported(base), attr
    return None


def _chain(value: Value | None) -> Iterator[CallResult | Slice]:
    """The calls and slices of a method chain, outermost first (`a.filter(x)[:20]`)."""
    while value is not None:
        if isinstance(value, (CallResult, Slice)):
            yield value
        if isinstance(value, Slice):
            value = value.of
            continue
        parts = split(value.callee if isinstance(value, CallResult) else value)
        value = parts[0] if parts is not None else None


def _calls(value: Value | None) -> list[CallResult]:
    return [node for node in _chain(value) if isinstance(node, CallResult)]


def _method(call: CallResult) -> str:
    parts = split(call.callee)
    return parts[1] if parts is not None else ""


def _limited(value: Value | None, bounds: set[str] | frozenset[str]) -> bool:
    """A slice with an upper bound, or a row-capping method (`.limit()`, `.first()`), in the chain."""
    return any(
        node.upper is not None if isinstance(node, Slice) else _method(node) in bounds
        for node in _chain(value)
    )


def model_at(project: ProjectModel, module: str, value: Value | None) -> ClassRef | None:
    """The ORM model at the root of a query expression written in `module`:
    `Order.objects.filter(...)`, `select(User).where(...)`, `select(User.name)`,
    `session.query(User)`."""
    models = project.schema.models
    while value is not None:
        ref = project.resolve(value, module)
        if isinstance(ref, ClassRef):
            return ref if ref in models else None
        if isinstance(value, Slice):
            value = value.of
            continue
        if isinstance(value, CallResult):
            parts = split(value.callee)
            if (parts is None or parts[1] in SQLALCHEMY_ROOTS) and value.first_value is not None:
                column = split(value.first_value)  # `select(User.name)`
                for candidate in (value.first_value, column[0] if column is not None else None):
                    found = project.resolve(candidate, module)
                    if isinstance(found, ClassRef) and found in models:
                        return found
            value = parts[0] if parts is not None else None
            continue
        parts = split(value)
        value = parts[0] if parts is not None else None
    return None


class _Reader:
    """Reads the queries of one request-path function."""

    def __init__(self, project: ProjectModel, function: FuncRef) -> None:
        self.project = project
        self.schema: Schema = project.schema
        self.function = function
        self.module = function.module
        self.sites = project.functions[function].calls

    def site_of(self, call: CallResult) -> CallSite | None:
        """The call site in this function that made `call`, for its argument values."""
        return next(
            (s for s in self.sites if s.callee == call.callee and len(s.args) == call.args),
            None,
        )

    def model_of(self, value: Value | None) -> ClassRef | None:
        return model_at(self.project, self.module, value)

    def table(self, model: ClassRef | None) -> Table | None:
        return self.schema.table(self.schema.models[model]) if model is not None else None

    def column(self, model: ClassRef, name: str, table: Table) -> str:
        column = self.schema.fields.get(model, {}).get(name, name)
        return column if column in table.columns else ""

    # -- raw SQL ------------------------------------------------------------------------------

    def sql(self, statement: SqlStatement) -> tuple[list[Lookup], list[Lookup]]:
        schema = self.schema
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
        order = [
            Lookup(t, p.column, "order") for p in statement.order_by if (t := table_of(p.table, p.column))
        ]
        return lookups, order

    # -- Django ---------------------------------------------------------------------------------

    def django(self, model: ClassRef, keywords: list[str]) -> list[Lookup]:
        table = self.table(model)
        if table is None:
            return []
        found = []
        for keyword in keywords:
            parts = keyword.split("__")
            op, function = "eq", ""
            if parts[-1] in DJANGO_LOOKUPS and len(parts) > 1:
                op, function = DJANGO_LOOKUPS[parts[-1]]
                parts = parts[:-1]
            transforms = parts[1:]
            if any(t not in DJANGO_TRANSFORMS for t in transforms) or len(transforms) > 1:
                continue  # a relation traversal (`customer__email`): a join this rule does not model
            if transforms:
                function = transforms[0]
            column = self.column(model, parts[0], table)
            if column:
                found.append(Lookup(table, column, op, function))
        return found

    def django_order(self, model: ClassRef, call: CallResult) -> list[Lookup]:
        table = self.table(model)
        name = (call.first_text or "").lstrip("-")
        column = self.column(model, name, table) if table is not None and name else ""
        return [Lookup(table, column, "order")] if table is not None and column else []

    # -- SQLAlchemy ----------------------------------------------------------------------------

    def sqlalchemy_column(self, value: Value | None) -> tuple[Table, str, str] | None:
        """`User.email` (or `func.lower(User.email)`) as (table, column, function)."""
        function = ""
        if isinstance(value, CallResult):
            parts = split(value.callee)
            if parts is None or value.first_value is None:
                return None
            function, value = parts[1].lower(), value.first_value
        parts = split(value)
        if parts is None:
            return None
        owner = self.project.resolve(parts[0], self.module)
        if not isinstance(owner, ClassRef) or owner not in self.schema.models:
            return None
        table = self.table(owner)
        column = self.column(owner, parts[1], table) if table is not None else ""
        return (table, column, function) if table is not None and column else None

    def sqlalchemy(self, site: CallSite, method: str, model: ClassRef | None) -> list[Lookup]:
        found = []
        if method == "filter_by" and model is not None:
            table = self.table(model)
            for keyword in site.kwargs_names:
                column = self.column(model, keyword, table) if table is not None else ""
                if table is not None and column:
                    found.append(Lookup(table, column, "eq"))
        for arg in site.args:
            op, target = "", None
            parts = split(arg.callee) if isinstance(arg, CallResult) else None
            if isinstance(arg, Compare) and arg.op != "ne":
                op, target = arg.op, arg.left
            elif isinstance(arg, CallResult) and parts is not None and parts[1] in COLUMN_METHODS:
                op, target = COLUMN_METHODS[parts[1]], parts[0]
                if op == "like" and (arg.first_text or "").startswith("%"):
                    op = "contains"
            found_column = self.sqlalchemy_column(target)
            if found_column is not None:
                found.append(Lookup(found_column[0], found_column[1], op, found_column[2]))
        return found

    def sqlalchemy_order(self, site: CallSite) -> list[Lookup]:
        found = []
        for arg in site.args:
            if isinstance(arg, CallResult) and _method(arg) in ("desc", "asc"):
                parts = split(arg.callee)
                arg = parts[0] if parts is not None else None
            found_column = self.sqlalchemy_column(arg)
            if found_column is not None and not found_column[2]:
                found.append(Lookup(found_column[0], found_column[1], "order"))
        return found

    # -- supabase ---------------------------------------------------------------------------

    def supabase(self, calls: list[CallResult]) -> tuple[list[Lookup], list[Lookup]]:
        name = next((c.first_text for c in calls if _method(c) in ("table", "from_")), None)
        table = self.schema.table(name or "")
        if table is None:
            return [], []
        lookups: list[Lookup] = []
        order: list[Lookup] = []
        for call in calls:
            method = _method(call)
            column = call.first_text or ""
            if column not in table.columns:
                continue
            if method in SUPABASE_FILTERS:
                lookups.append(Lookup(table, column, SUPABASE_FILTERS[method]))
            elif method in SUPABASE_PATTERNS:
                site = self.site_of(call)
                pattern = site.args[1] if site is not None and len(site.args) > 1 else None
                wild = isinstance(pattern, Const) and str(pattern.value).startswith("%")
                lookups.append(Lookup(table, column, "contains" if wild else "like"))
            elif method == "order":
                order.append(Lookup(table, column, "order"))
        return lookups, order

    # -- one operation ------------------------------------------------------------------------

    def query(self, op: Operation) -> Query | None:
        site = op.site
        bounds = self.project.knowledge.row_bounds
        limited = site.consumed_by in bounds or op.api.rsplit(".", 1)[-1] in bounds
        if op.sql:
            lookups: list[Lookup] = []
            order: list[Lookup] = []
            for statement in op.sql:
                if statement.kind in ("select", "update", "delete"):
                    found, sort = self.sql(statement)
                    lookups += found
                    order += sort
                    limited = limited or statement.has_limit
            return Query(self.function, site.span, site.text, tuple(lookups), tuple(order), limited)
        parts = split(site.callee)
        receiver = parts[0] if parts is not None else None
        method = parts[1] if parts is not None else ""
        api = op.api
        if api.startswith("supabase.") and method == "rpc":
            return self.rpc(site)
        # SQLAlchemy runs a statement object passed to it; the ORM runs its receiver chain.
        built = site.args[0] if api.startswith("sqlalchemy.") and site.args else receiver
        calls = _calls(built)
        limited = limited or _limited(built, bounds)
        if api.startswith("django."):
            model = self.model_of(site.callee)
            if model is None:
                return None
            keywords = [k for c in calls if _method(c) in DJANGO_FILTERS for k in c.keywords]
            if method in DJANGO_FILTERS:
                keywords += list(site.kwargs_names)
            order = [o for c in calls if _method(c) == "order_by" for o in self.django_order(model, c)]
            lookups = self.django(model, keywords)
        elif api.startswith("sqlalchemy."):
            model = self.model_of(built)
            lookups, order = [], []
            for call in calls:
                call_site = self.site_of(call)
                if call_site is None:
                    continue
                if _method(call) in SQLALCHEMY_FILTERS:
                    lookups += self.sqlalchemy(call_site, _method(call), model)
                elif _method(call) == "order_by":
                    order += self.sqlalchemy_order(call_site)
        elif api.startswith("supabase."):
            lookups, order = self.supabase(calls)
        else:
            return None
        return Query(self.function, site.span, site.text, tuple(lookups), tuple(order), limited)

    def inner_calls(self) -> set[Value]:
        """Callees of calls that another call of this function builds on (`qs.filter(...)`
        where `qs = Order.objects.filter(...)`): they are read with the chain that uses them."""
        inner: set[Value] = set()
        for site in self.sites:
            parts = split(site.callee)
            inner.update(call.callee for call in _calls(parts[0] if parts is not None else None))
        return inner

    def unevaluated(self, site: CallSite, inner: set[Value]) -> Query | None:
        """The last call of a Django queryset chain that no operation here evaluates:
        handed on (`return qs`, `Serializer(qs)`), or evaluated by a builtin (`list(qs)`)."""
        parts = split(site.callee)
        if parts is None or site.callee in inner:
            return None
        ref = self.project.resolve(site.callee, self.module)
        if not isinstance(ref, MethodRef) or not ref.kind.startswith("django.") or ref.spec.op:
            return None
        model = self.model_of(site.callee)
        if model is None:
            return None
        keywords = [k for c in _calls(parts[0]) if _method(c) in DJANGO_FILTERS for k in c.keywords]
        if parts[1] in DJANGO_FILTERS:
            keywords += list(site.kwargs_names)
        return Query(self.function, site.span, site.text, tuple(self.django(model, keywords)))

    def rpc(self, site: CallSite) -> Query | None:
        """`supabase.rpc("fn", ...)`: the queries in the body of the SQL function it calls."""
        name = site.args[0] if site.args else None
        body = (
            self.schema.function(name.value)
            if isinstance(name, Const) and isinstance(name.value, str)
            else None
        )
        if body is None:
            return None
        lookups: list[Lookup] = []
        for statement in body.body:
            lookups += self.sql(statement)[0]
        return Query(self.function, site.span, site.text, tuple(lookups), via=body.where)


def query_of(project: ProjectModel, op: Operation) -> Query | None:
    """The lookups of the query one operation runs (on any path)."""
    if not project.schema.tables or op.op not in QUERY_OPS:
        return None
    return _Reader(project, op.function).query(op)


def pins_one_row(query: Query) -> bool:
    """Equality on every column of a unique index (a primary key) of a table it reads."""
    by_table: dict[str, set[str]] = {}
    tables: dict[str, Table] = {}
    for lookup in query.lookups:
        if lookup.op == "eq" and not lookup.function:
            by_table.setdefault(lookup.table.name, set()).add(lookup.column)
            tables[lookup.table.name] = lookup.table
    return any(
        index.definition.unique and not index.definition.partial and set(index.parts) <= pinned
        for name, pinned in by_table.items()
        for index in tables[name].indexes
    )


def model_of(project: ProjectModel, op: Operation) -> ClassRef | None:
    """The ORM model whose table an operation's query reads, when the schema knows it."""
    parts = split(op.site.callee)
    value = op.site.args[0] if op.api.startswith("sqlalchemy.") and op.site.args else op.site.callee
    return _Reader(project, op.function).model_of(value if parts is not None else None)


def model_of_value(project: ProjectModel, function: FuncRef, value: Value | None) -> ClassRef | None:
    """The ORM model of a query expression written in `function`."""
    return _Reader(project, function).model_of(value)


def slices_of(value: Value | None) -> Iterator[Slice]:
    """The slices in a query expression, outermost first (`qs.order_by("id")[a:b]`)."""
    while value is not None:
        if isinstance(value, Slice):
            yield value
            value = value.of
        elif isinstance(value, CallResult):
            value = value.callee
        elif isinstance(value, (Attr, Item)):
            value = value.base if isinstance(value, Attr) else value.of
        else:
            value = None


def built_in(
    project: ProjectModel, function: FuncRef, value: Value | None
) -> list[tuple[FuncRef, Value | None]]:
    """A query value as pieces, each with the function that wrote it: the caller's chain
    first, then what each helper at the bottom of the chain returns
    (`recent_orders(user).select_related("customer")` continues in `recent_orders`).
    A helper is followed when all its `return`s give the same value."""
    pieces = [(function, value)]
    while True:
        bottom = None
        for node in _chain(value):
            bottom = node
        ref = project.resolve(bottom.callee, function.module) if isinstance(bottom, CallResult) else None
        facts = project.functions.get(ref) if isinstance(ref, FuncRef) else None
        if facts is None or len(set(facts.returns)) != 1 or any(ref == f for f, _ in pieces):
            return pieces
        function, value = ref, facts.returns[0]  # type: ignore[assignment]
        pieces.append((function, value))


def chain_calls(
    project: ProjectModel, function: FuncRef, value: Value | None
) -> list[tuple[str, CallResult, CallSite | None]]:
    """The method calls that built a query value, with the call site in `function` that
    made each one (None when it was made elsewhere), outermost first."""
    reader = _Reader(project, function)
    return [(_method(call), call, reader.site_of(call)) for call in _calls(value)]


def request_queries(project: ProjectModel) -> list[Query]:
    """Every query run on the request path, with its lookups on known tables."""
    if not project.schema.tables:
        return []
    queries: list[Query] = []
    for function in sorted(project.request_path, key=lambda f: (f.module, f.qualname)):
        reader = _Reader(project, function)
        ops = project.operations.get(function, ())
        found = [reader.query(op) for op in ops if op.op in QUERY_OPS]
        inner = reader.inner_calls()
        found += [reader.unevaluated(site, inner) for site in reader.sites]
        queries += [q for q in found if q is not None and (q.lookups or q.order)]
    return queries


def is_flag(schema: Schema, table: Table, column: str) -> bool:
    """A boolean column (by type when the model says, by name otherwise): too few distinct
    values for an index on it alone to pay."""
    return (table.name, column) in schema.boolean_columns or column.startswith(("is_", "has_", "can_"))
