"""SL4 pagination: queries on the request path that can return every row, or pages
that are not stable.

A query is bounded by a LIMIT/FETCH, a row-capping method in its chain or on its
result (`rows-bounds` in rules/apis/pagination.toml: `.limit()`, `[:20]`, `.first()`,
`fetchone()`), a row-capping argument (`limit-arg` in the knowledge: pymongo
`find(limit=n)`, motor `to_list(length=n)`), an aggregate without GROUP BY, EXISTS, or
equality on the primary key (`id`/`pk`, MongoDB's `_id`, a unique column the schema
model knows), or a list of keys (`pk__in=ids`).

Findings sit where the problem is written: the executing call, the `.offset()` /
`.skip()` / `.range()` / `.limit()` step of a chain, a Django slice, a list view's
`queryset =` line.
"""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding, reached_from, request_chain
from scalelint.config import Config
from scalelint.facts.model import (
    Attr,
    CallResult,
    CallSite,
    Computed,
    Const,
    DictLiteral,
    Instance,
    Opaque,
    Sequence,
    Slice,
    SqlStatement,
    Value,
)
from scalelint.findings import Finding, Severity, Span
from scalelint.knowledge import ApiSpec
from scalelint.project import (
    MODULE_BODY,
    ClassRef,
    KindRef,
    Link,
    ObjRef,
    Operation,
    ProjectModel,
    method_chain,
    name_of,
)
from scalelint.query_shapes import (
    built_in,
    chain_calls,
    model_at,
    model_of,
    pins_one_row,
    query_of,
    slices_of,
)
from scalelint.record import record
from scalelint.request_path_types import FuncRef

KEY_COLUMNS = {"id", "pk"}
KEY_KEYWORDS = {"id", "pk", "id__exact", "pk__exact"}
KEY_LIST_KEYWORDS = {"id__in", "pk__in"}
SUBQUERY_STEPS = {"values", "values_list", "all", "filter", "exclude", "only", "objects"}
# A MongoDB filter on the document key (`{"_id": x}`) reads one document, unless an
# operator widens it (`{"_id": {"$in": ids}}`).
DOCUMENT_KEY = "_id"
WIDENING_OPERATORS = {"$in", "$nin", "$ne", "$gt", "$gte", "$lt", "$lte", "$exists", "$regex", "$or", "$not"}
# Chain steps that skip rows and that order them, across the query builders.
OFFSET_STEPS = {"offset", "skip"}
ORDER_STEPS = {"order_by", "order", "sort"}


@record
class Query:
    """A query an operation runs, as far as its bounds are concerned."""

    library: str  # sql | sqlalchemy | django | supabase | mongo
    chain: list[Link]
    statement: SqlStatement | None = None
    iterated: Value | None = None  # the lazy query a loop, `list()` or `to_list()` runs


# Kinds whose queries are lazy until iterated: the library each belongs to.
LAZY_QUERIES = {"django": "django", "mongo": "mongo"}


def _query(project: ProjectModel, op: Operation) -> Query | None:
    """The query behind a `db.query` operation, or None when it reads no row set."""
    api = op.api
    site = op.site
    receiver = site.callee.base if isinstance(site.callee, Attr) else None
    if op.sql:
        selects = [s for s in op.sql if s.kind == "select"]
        return Query("sql", [], selects[0]) if selects else None
    if api.startswith("sqlalchemy.session.") or api.startswith("sqlalchemy.connection."):
        statement = site.args[0] if site.args else None
        if project.resolve(statement, op.function.module) is None:
            return None
        chain = method_chain(statement)
        if not chain or chain[0].name != "select":
            return None
        return Query("sqlalchemy", chain)
    if api in ("sqlalchemy.query.all", "sqlalchemy.query.__iter__"):
        return Query("sqlalchemy", method_chain(receiver))
    library = LAZY_QUERIES.get(api.split(".", 1)[0])
    if library is not None and api.endswith(".__iter__"):
        # `for x in qs` iterates its receiver; `list(qs)` / `Serializer(qs, many=True)` its argument.
        iterating = isinstance(site.callee, Attr) and site.callee.attr == "__iter__"
        iterated = receiver if iterating else (site.args[0] if site.args else None)
        return Query(library, method_chain(iterated), iterated=iterated)
    if api == "mongo.cursor.to_list":
        return Query("mongo", method_chain(receiver), iterated=receiver)
    if api == "supabase.query.execute":
        return Query("supabase", method_chain(receiver))
    return None


def _bounded(project: ProjectModel, op: Operation, query: Query) -> bool:
    bounds = project.knowledge.row_bounds
    if op.site.consumed_by in bounds or op.api.rsplit(".", 1)[-1] in bounds:
        return True
    if _read_one_row_later(project, op):
        return True
    shape = query_of(project, op)
    if shape is not None and pins_one_row(shape):
        return True  # equality on the primary key or a unique column, from the schema
    if any(_caps(value) for value, _ in _limit_arguments(project, op, query)):
        return True  # `find(limit=20)`, `to_list(length=50)`
    if query.library == "mongo" and _filters_on_document_key(project, op, query):
        return True
    statement = query.statement
    if statement is not None:
        return (
            statement.has_limit
            or statement.is_aggregate
            or statement.is_exists
            or any(c.rsplit(".", 1)[-1] in KEY_COLUMNS for c in statement.eq_columns)
        )
    for link in query.chain:
        if link.name in bounds or KEY_KEYWORDS & set(link.keywords):
            return True
        if link.name in ("eq", "filter_by") and (link.first_text or "") in KEY_COLUMNS:
            return True
    return query.library == "django" and _keys_listed(project, op, query)


def _keys_listed(project: ProjectModel, op: Operation, query: Query) -> bool:
    """`filter(pk__in=ids)` with a list of keys (`request.GET.getlist("id")`, a list built
    here): at most one row per key the caller names. A queryset or `values_list(...)` in
    its place is a subquery, which can name every row."""
    for _, site in _query_sites(project, op, query):
        for keyword in KEY_LIST_KEYWORDS & set(site.kwargs_names):
            keys = site.kwarg(keyword)
            if keys is None or isinstance(project.resolve(keys, op.function.module), KindRef):
                continue
            if not {link.name for link in method_chain(keys)} & SUBQUERY_STEPS:
                return True
    return False


def _query_sites(project: ProjectModel, op: Operation, query: Query) -> list[tuple[str, CallSite]]:
    """The calls of the query's chain made in the operation's function, with their method
    names, outermost first, then the operation's own call."""
    found = [
        (method, site)
        for method, _, site in chain_calls(project, op.function, query.iterated)
        if site is not None
    ]
    own = op.site.callee.attr if isinstance(op.site.callee, Attr) else ""
    return [*found, (own, op.site)]


def _limit_arguments(project: ProjectModel, op: Operation, query: Query) -> list[tuple[Value, CallSite]]:
    """Values given to the arguments that knowledge says cap a query's rows (`limit-arg`):
    `find(limit=n)`, `to_list(length=n)`, with the call each is given to."""
    found = []
    for _, site in _query_sites(project, op, query):
        spec = project.spec_of(site.callee, op.function.module)
        if spec is None or spec.limit_arg is None:
            continue
        value = spec.argument(site, spec.limit_arg)
        if value is not None:
            found.append((value, site))
    return found


def _caps(value: Value) -> bool:
    """A row cap given as an argument caps something unless it is None or 0 (pymongo's
    `limit=0` and motor's `to_list(None)` mean every row)."""
    return value not in (Const(None), Const(0))


def _filters_on_document_key(project: ProjectModel, op: Operation, query: Query) -> bool:
    """`find({"_id": x})`: a filter document naming the document key with no widening operator."""
    for method, site in _query_sites(project, op, query):
        spec = project.spec_of(site.callee, op.function.module)
        document = spec.argument(site, "filter") if spec is not None and method == "find" else None
        if isinstance(document, DictLiteral) and DOCUMENT_KEY in document.keys:
            return not (document.keys & WIDENING_OPERATORS)
    return False


def _read_one_row_later(project: ProjectModel, op: Operation) -> bool:
    """`cur.execute(sql)` followed by `cur.fetchone()` on the same cursor."""
    if not isinstance(op.site.callee, Attr):
        return False
    receiver = op.site.callee.base
    fn = project.functions[op.function]
    return any(
        isinstance(site.callee, Attr)
        and site.callee.base == receiver
        and site.callee.attr in project.knowledge.row_bounds
        for site in fn.calls
    )


FIX = {
    "sql": "add `ORDER BY ... LIMIT %s OFFSET %s` (or keyset `WHERE id > %s`) with a capped page size",
    "sqlalchemy": "add `.order_by(...).limit(size).offset(...)` with a capped size",
    "django": "slice the queryset (`qs.order_by(...)[start:end]`) or use `Paginator`/DRF pagination",
    "supabase": "add `.order(...).range(start, end)` (or `.limit(n)`)",
    "mongo": "add `.sort(...).limit(n)` (or `to_list(length=n)`); page by `_id` (`{'_id': {'$gt': last}}`)",
}


@check("SL401")
def unbounded_query(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "db.query":
            continue
        on_request_path = op.function in project.request_path
        if not on_request_path and (config.unbounded_scope != "all" or project.routing.one_off(op.function)):
            continue
        query = _query(project, op)
        if query is None or _bounded(project, op, query):
            continue
        where = "here"
        if on_request_path:
            handler, _ = project.request_path[op.function]
            where = f"on every request to {handler.label}" + reached_from(project, op.function)
        if query.library == "supabase":
            message = (
                f"`{op.site.text}` reads a table with no limit {where}: PostgREST silently truncates "
                "it at the project's max-rows cap (1,000 by default), so the page is wrong once the "
                "table grows, and it still moves up to max-rows rows per request; " + FIX["supabase"]
            )
        else:
            rows = "document of its collection" if query.library == "mongo" else "row of its table"
            message = (
                f"`{op.site.text}` can return every {rows} {where}: it gets slower and "
                "heavier with every row added (100K rows is seconds and megabytes per request); "
                + FIX[query.library]
            )
        related = request_chain(project, op.function) if on_request_path else ()
        yield finding(
            "SL401",
            project.path_of(op.function),
            op.site.span,
            message,
            related,
            None if on_request_path else Severity.WARNING,
        )
    yield from unpaginated_list_views(project)


def _pages(project: ProjectModel, op: Operation, query: Query) -> tuple[bool, bool, bool]:
    """(takes a page, has an order, offset from a parameter) for a query."""
    statement = query.statement
    if statement is not None:
        return (
            statement.has_limit and (statement.has_offset or statement.limit_is_param),
            bool(statement.order_columns),
            statement.offset_is_param,
        )
    names = {link.name for link in query.chain}
    # A page: an offset or range, or a limit the caller sets (`.limit(size)`).
    paged = bool(names & (OFFSET_STEPS | {"range", "[:]", "[a:]"})) or any(
        link.name == "limit" and not link.literal for link in query.chain
    )
    ordered = bool(names & ORDER_STEPS)
    offset_from_caller = any(link.name in OFFSET_STEPS and not link.literal for link in query.chain)
    # `qs[offset:offset + size]`: a slice starting where the caller says.
    offset_from_caller = offset_from_caller or any(
        piece.lower is not None and not isinstance(piece.lower, Const) for piece in slices_of(query.iterated)
    )
    if query.library == "mongo":
        # `find(filter, sort=[...], skip=n, limit=m)` takes its page by keyword.
        for method, site in _query_sites(project, op, query):
            if method != "find":
                continue
            ordered = ordered or site.has_kwarg("sort")
            skip = site.kwarg("skip")
            paged = paged or skip is not None
            offset_from_caller = offset_from_caller or (skip is not None and not isinstance(skip, Const))
    return paged, ordered, offset_from_caller


def _page_span(project: ProjectModel, op: Operation, query: Query, *steps: set[str]) -> Span:
    """Where a query takes its page: the first of `steps` (in that order of preference) in
    its chain, `.offset()` / `.skip()` / `.range()` / `.limit()`, when this function makes
    that call; else the call that runs the query (raw SQL, a slice, a chain built elsewhere)."""
    if query.statement is not None:
        return op.site.span
    built = op.site.args[0] if query.library == "sqlalchemy" and op.site.args else query.iterated
    if built is None and isinstance(op.site.callee, Attr):
        built = op.site.callee.base
    if query.library == "django":
        sliced = _slice_span(project, op, built)
        if sliced is not None:
            return sliced
    calls = chain_calls(project, op.function, built)
    for wanted in steps:
        for method, _, site in calls:
            if method in wanted and site is not None and site.method_span is not None:
                return site.method_span
    return op.site.span


def _slice_span(project: ProjectModel, op: Operation, value: Value | None) -> Span | None:
    """Where the outermost slice of a queryset expression is written in the operation's
    function (`qs.order_by("id")[start:end]`), if it is."""
    written = dict(project.functions[op.function].slices)
    return next((written[piece] for piece in slices_of(value) if piece in written), None)


@check("SL403")
def unordered_pagination(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "db.query" or op.function not in project.request_path:
            continue
        query = _query(project, op)
        if query is None:
            continue
        paged, ordered, _ = _pages(project, op, query)
        if not paged or ordered:
            continue
        if query.library == "django" and _default_ordering(project, op) is not False:
            continue  # the model orders itself (Meta.ordering), or the model is unknown
        message = (
            f"`{op.site.text}` takes a page without ORDER BY: the database may return rows in any "
            "order, so rows repeat or go missing between pages as the table changes; order by a "
            "unique key (`ORDER BY created_at DESC, id DESC`)"
        )
        if query.library == "django":
            message += ", with `.order_by('-created_at', '-id')` or the model's `Meta.ordering`"
        if query.library == "mongo":
            message += ", with `.sort([('created_at', -1), ('_id', -1)])`"
        span = _page_span(project, op, query, OFFSET_STEPS | {"range"}, {"limit"})
        yield _at(project, op, span, "SL403", message)
    yield from _unordered_paginators(project)
    yield from _paged_unordered_views(project)


def _at(project: ProjectModel, op: Operation, span: Span, rule: str, message: str) -> Finding:
    """A finding at `span` in the operation's function, with its request chain."""
    related = request_chain(project, op.function) if op.function in project.request_path else ()
    return finding(rule, project.path_of(op.function), span, message, related)


def _default_ordering(project: ProjectModel, op: Operation) -> bool | None:
    """Whether a Django query's model has a `Meta.ordering` (its own or an abstract base's);
    None when the model is not known."""
    model = model_of(project, op)
    return None if model is None else _orders_itself(project, model)


def _orders_itself(project: ProjectModel, model: ClassRef) -> bool:
    for current in _class_and_bases(project, model):
        meta = project.classes.get(ClassRef(current.module, f"{current.qualname}.Meta"))
        if meta is not None and any(name == "ordering" for name, _ in meta.attributes):
            return True
    return False


# Steps after which a paginated queryset has an order, or nothing to page: an explicit
# order, a search backend's relevance order (wagtail `.search(...)`), an empty queryset.
PAGED_IN_ORDER = ORDER_STEPS | {"search", "none"}


def _unordered_paginators(project: ProjectModel) -> Iterator[Finding]:
    """`Paginator(Order.objects.filter(...), 25)` on a queryset with no `order_by()` whose
    model has no `Meta.ordering`: Django warns (UnorderedObjectListWarning) and pages
    overlap. The queryset may be built in a helper."""
    for function in project.request_path:
        for site in project.functions[function].calls:
            spec = project.spec_of(site.callee, function.module)
            if spec is None or spec.op or spec.limit_arg is None or not spec.params:
                continue
            pieces = built_in(project, function, spec.argument(site, spec.params[0]))
            if any(link.name in PAGED_IN_ORDER for _, value in pieces for link in method_chain(value)):
                continue
            where, listed = pieces[-1]
            model = model_at(project, where.module, listed)
            if model is None or _orders_itself(project, model):
                continue
            message = (
                f"`{site.text}` pages a queryset of `{model.qualname}` that has no `order_by()` (and the "
                "model no `Meta.ordering`): the database may return rows in any order, so rows repeat "
                "or go missing between pages; add `.order_by('-created_at', '-id')` (a unique key last)"
            )
            yield finding(
                "SL403", project.path_of(function), site.span, message, request_chain(project, function)
            )


@check("SL404")
def deep_offset_pagination(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "db.query" or op.function not in project.request_path:
            continue
        query = _query(project, op)
        if query is None:
            continue
        paged, _, offset_from_caller = _pages(project, op, query)
        if not (paged and offset_from_caller):
            continue
        message = (
            f"`{op.site.text}` pages with an OFFSET the client chooses: the database still reads "
            "and throws away every skipped row, so page 5,000 costs 5,000 pages; for deep lists "
            "use keyset pagination (`WHERE (created_at, id) < (%s, %s) ORDER BY created_at DESC, "
            "id DESC LIMIT %s`)"
        )
        yield _at(project, op, _page_span(project, op, query, OFFSET_STEPS | {"range"}), "SL404", message)


PAGE_SIZE_NAMES = {
    "limit",
    "page_size",
    "pagesize",
    "per_page",
    "perpage",
    "size",
    "count",
    "take",
    "top",
    "rows",
    "n",
}
# Chain steps that take a page size.
PAGE_SIZE_STEPS = {"limit", "range", "paginate", "fetch"}
CLAMPS = {"le", "lt"}  # `Query(le=100)`, `Field(le=100)`, `conint(le=100)`
REQUEST_DATA = {"args", "GET", "query_params", "values", "form"}


def _request_page_size(project: ProjectModel, function: FuncRef, value: Value | None) -> str | None:
    """The name of an unclamped page size from the request that `value` carries, if any."""
    if isinstance(value, (Sequence, Computed)):
        # The parameters of a statement; the operands of `offset + limit - 1`.
        for item in value.items if isinstance(value, Sequence) else value.operands:
            found = _request_page_size(project, function, item)
            if found:
                return found
        return None
    handler = project.handlers.get(function)
    if handler is None or handler.framework not in ("fastapi", "ninja", "litestar"):
        handler = None
    fn = project.functions[function]
    if handler is not None and isinstance(value, (Opaque, Instance)):
        # A query parameter of the handler itself (FastAPI): clamped by `Query(le=...)` or
        # its type (`limit: conint(le=100)`, whose value is an instance of that call).
        if isinstance(value, Instance):
            param = next((p for p in fn.params if p.annotation == value.of), None)
        else:
            param = next((p for p in fn.params if p.name == value.text), None)
        if param is None or param.name not in PAGE_SIZE_NAMES:
            return None
        default = param.default
        if isinstance(default, CallResult) and CLAMPS & set(default.keywords):
            return None
        if any(CLAMPS & set(site.kwargs_names) for site in fn.param_calls):
            return None
        return param.name
    if handler is not None and isinstance(value, Attr) and value.attr in PAGE_SIZE_NAMES:
        # A field of a query-parameter model (`page: Annotated[Page, Query()]`, `Depends()`):
        # clamped by `Field(le=...)` or a constrained type in the model's body.
        model = project.resolve(value.base, function.module)
        if not isinstance(model, ObjRef):
            return None
        facts = project.classes[model.cls]
        if any(CLAMPS & set(site.kwargs_names) for site in facts.calls):
            return None
        field = dict(facts.attributes).get(value.attr)
        return value.attr if isinstance(field, Const) else None
    if isinstance(value, CallResult):
        chain = method_chain(value)
        names = [link.name for link in chain]
        if names and names[-1] == "get" and REQUEST_DATA & set(names):
            key = chain[-1].first_text or ""
            return key if key in PAGE_SIZE_NAMES else None
    return None


@check("SL402")
def unclamped_page_size(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "db.query" or op.function not in project.request_path:
            continue
        candidates: list[Value | None] = []
        if any(s.limit_is_param for s in op.sql):
            candidates.extend(op.site.args[1:])
            candidates.extend(value for _, value in op.site.kwargs)
        receiver = op.site.callee.base if isinstance(op.site.callee, Attr) else None
        for link in method_chain(receiver) + method_chain(op.site.args[0] if op.site.args else None):
            if link.name in PAGE_SIZE_STEPS and not link.literal:
                candidates.append(link.first_value)
        # supabase `.range(offset, offset + limit - 1)`: the end carries the size.
        for method, _, site in chain_calls(project, op.function, receiver):
            if method == "range" and site is not None and len(site.args) > 1:
                candidates.append(site.args[1])
        query = _query(project, op)
        if query is not None:
            candidates.extend(value for value, _ in _limit_arguments(project, op, query))
            candidates.extend(piece.upper for piece in slices_of(query.iterated))  # `qs[:size]`
        name = next((n for n in (_request_page_size(project, op.function, v) for v in candidates) if n), None)
        if name is None:
            continue
        message = (
            f"`{op.site.text}` takes its page size from the request (`{name}`) without a cap: one "
            f"request with {name}=1000000 reads the whole table; clamp it (`min({name}, "
            f"{config.max_page_size})`, FastAPI `Query(le={config.max_page_size})`, DRF `max_page_size`)"
        )
        span = op.site.span if query is None else _page_span(project, op, query, PAGE_SIZE_STEPS)
        yield _at(project, op, span, "SL402", message)
    yield from _paginator_sizes(project, config)
    yield from _drf_paginators(project, config)


def _paginator_sizes(project: ProjectModel, config: Config) -> Iterator[Finding]:
    """A paginator built on the request path with its page size from the request
    (`Paginator(qs, request.GET.get("per_page"))`): a call that runs no query itself but
    has a `limit-arg` in the knowledge."""
    for function in project.request_path:
        for site in project.functions[function].calls:
            spec = project.spec_of(site.callee, function.module)
            if spec is None or spec.op or spec.limit_arg is None:
                continue
            name = _request_page_size(project, function, spec.argument(site, spec.limit_arg))
            if name is None:
                continue
            message = (
                f"`{site.text}` takes its page size from the request (`{name}`) without a cap: one "
                f"request with {name}=1000000 puts the whole table on one page; clamp it (`min({name}, "
                f"{config.max_page_size})`)"
            )
            related = request_chain(project, function)
            yield finding("SL402", project.path_of(function), site.span, message, related)


def _drf_paginators(project: ProjectModel, config: Config) -> Iterator[Finding]:
    """A DRF paginator that lets the client pick the page size with no ceiling:
    `page_size_query_param` without `max_page_size`, `LimitOffsetPagination` without
    `max_limit` (its `?limit=` is always on)."""
    for cls, facts in project.classes.items():
        spec = project.class_spec(cls, frozenset({"paginator"}))
        if spec is None or len(spec.params) < 2:
            continue
        size_param, ceiling = spec.params[0], spec.params[1]
        reader = spec.params[2] if len(spec.params) > 2 else ""
        param = _inherited_attribute(project, cls, size_param) if size_param != "limit" else Const("limit")
        if param is None or param == Const(None):
            continue
        if _inherited_attribute(project, cls, ceiling) not in (None, Const(None)):
            continue
        override = project.class_methods(cls).get(reader) if reader else None
        if override is not None and not _returns_request_size(project, override, reader):
            continue  # `get_page_size` clamps the size itself, or does something this cannot follow
        lines = dict(facts.attribute_lines)
        line = lines.get(size_param, facts.span.line)
        name = param.value if isinstance(param, Const) else size_param
        message = (
            f"`{cls.qualname}` lets the client choose the page size (`?{name}=`) with no `{ceiling}`: "
            f"one request with {name}=1000000 serializes the whole table; set `{ceiling} = "
            f"{config.max_page_size}`"
        )
        if override is not None:
            message += f" (its own `{reader}` hands the client's value on without `min(...)`)"
        yield finding("SL402", project.path_of(cls), Span(line, 1, line, 1), message)


def _returns_request_size(project: ProjectModel, function: FuncRef, reader: str) -> bool:
    """A paginator's own `get_page_size` / `get_limit` that hands back the client's value
    uncapped: it returns `super().get_page_size(request)` (uncapped without a max) or reads
    `request.query_params` itself, and calls no `min()`."""
    fn = project.functions[function]
    if any(name_of(site.callee) == "min" for site in fn.calls):
        return False
    for value in fn.returns:
        names = {link.name for link in method_chain(value)}
        if reader in names or REQUEST_DATA & names:
            return True
    return False


def _pages_by_hand(project: ProjectModel, function: FuncRef, depth: int = 1) -> bool:
    """A DRF view hook (`get_queryset`, `filter_queryset`) that pages the queryset itself:
    it calls a paginator (`Paginator(qs, 25)`, `self.paginate_queryset(qs)`, a project's
    `paginator(qs, request)`) or returns a bounded slice (`qs[:100]`), itself or through a
    helper of the project it calls."""
    fn = project.functions[function]
    if any(isinstance(value, Slice) and value.upper is not None for value in fn.returns):
        return True
    for site in fn.calls:
        if "paginat" in name_of(site.callee).lower():
            return True
        helper = project.resolve(site.callee, function.module) if depth else None
        if (
            isinstance(helper, FuncRef)
            and helper in project.functions
            and helper != function
            and _pages_by_hand(project, helper, depth - 1)
        ):
            return True
    return False


def _global_drf_pagination(project: ProjectModel) -> bool:
    """`REST_FRAMEWORK = {"DEFAULT_PAGINATION_CLASS": ...}` in some settings module."""
    return any(
        name == "REST_FRAMEWORK"
        and isinstance(value, DictLiteral)
        and "DEFAULT_PAGINATION_CLASS" in value.keys
        for facts in project.files.values()
        for name, value in facts.module_vars
    )


def _class_and_bases(project: ProjectModel, cls: ClassRef) -> Iterator[ClassRef]:
    """A project class, then its project bases, nearest first."""
    pending, seen = [cls], set()
    while pending:
        current = pending.pop(0)
        if current in seen or current not in project.classes:
            continue
        seen.add(current)
        yield current
        for base in project.classes[current].bases:
            ref = project.resolve(base, current.module)
            if isinstance(ref, ClassRef):
                pending.append(ref)


def _inherited_attribute(project: ProjectModel, cls: ClassRef, name: str) -> Value | None:
    """A class attribute's value, from the class or its project bases (nearest first)."""
    for current in _class_and_bases(project, cls):
        attributes = dict(project.classes[current].attributes)
        if name in attributes:
            return attributes[name]
    return None


def _list_view_spec(project: ProjectModel, cls: ClassRef) -> ApiSpec | None:
    """The knowledge of a view class's list action: its view base, or the mixin that gives
    a generic view its list (`GenericViewSet` + `ListModelMixin`)."""
    spec = project.class_spec(cls, frozenset({"view-class"}))
    if spec is not None and spec.pages_by is None:
        spec = project.class_spec(cls, frozenset({"list-mixin"}))
    return spec


def _paged_unordered_views(project: ProjectModel) -> Iterator[Finding]:
    """SL403 for a DRF list view that pages (its `pagination_class`, or REST_FRAMEWORK's
    default) a `queryset` with no `order_by()`, on a model with no `Meta.ordering`, and
    sets no `ordering`: DRF itself warns (UnorderedObjectListWarning)."""
    drf_default = _global_drf_pagination(project)
    for cls, facts in project.classes.items():
        spec = _list_view_spec(project, cls)
        if spec is None or spec.framework != "drf" or spec.pages_by is None:
            continue
        if project.routing.one_off(FuncRef(cls.module, MODULE_BODY)):
            continue
        if {"list", "paginate_queryset", "get_queryset", "filter_queryset"} & set(project.class_methods(cls)):
            continue  # the rows it pages are chosen in code scalelint does not follow here
        pagination = _inherited_attribute(project, cls, spec.pages_by)
        paged = drf_default if pagination is None else pagination != Const(None)
        queryset = _inherited_attribute(project, cls, "queryset")
        if not paged or queryset is None or _inherited_attribute(project, cls, "ordering") is not None:
            continue
        if any(link.name in PAGED_IN_ORDER for link in method_chain(queryset)):
            continue
        model = model_at(project, cls.module, queryset)
        if model is None or _orders_itself(project, model):
            continue
        line = dict(facts.attribute_lines).get("queryset", facts.span.line)
        message = (
            f"DRF view `{cls.qualname}` pages a queryset of `{model.qualname}` that has no `order_by()` "
            "(and the model no `Meta.ordering`, the view no `ordering`): the database may return rows "
            "in any order, so rows repeat or go missing between pages; order it by a unique key last "
            "(`.order_by('-created_at', '-id')`)"
        )
        yield finding("SL403", project.path_of(cls), Span(line, 1, line, 1), message)


def _list_views(project: ProjectModel) -> Iterator[tuple[ClassRef, str, str, Span]]:
    """List views (knowledge `pages-by`: DRF `pagination_class`, Django `ListView.paginate_by`)
    with no pagination: the class, its framework, the attribute that would page it, and
    where its queryset is set (`queryset =`, `model =`, or `get_queryset`)."""
    drf_default = _global_drf_pagination(project)
    for cls, facts in project.classes.items():
        spec = _list_view_spec(project, cls)
        if spec is None or spec.pages_by is None or (spec.framework == "drf" and drf_default):
            continue
        if project.routing.one_off(FuncRef(cls.module, MODULE_BODY)):
            continue  # a view in test code (Django's own tests/generic_views) serves no traffic
        methods = project.class_methods(cls)
        if {"list", "paginate_queryset", "get_paginate_by"} & set(methods):
            continue  # a custom list() may paginate by hand
        hooks = [methods[name] for name in ("get_queryset", "filter_queryset") if name in methods]
        if any(_pages_by_hand(project, hook) for hook in hooks):
            continue
        pagination = _inherited_attribute(project, cls, spec.pages_by)
        if pagination is not None and pagination != Const(None):
            continue
        module_facts = project.modules[cls.module]
        assigned = [
            site.span
            for site in module_facts.module_calls
            if site.assigned_to == "queryset" and facts.span.line <= site.span.line <= facts.span.end_line
        ]
        lines = dict(facts.attribute_lines)
        framework = spec.framework or ""
        if assigned:
            yield cls, framework, spec.pages_by, assigned[0]
        elif "queryset" in lines or "model" in lines:
            line = lines.get("queryset", lines.get("model", facts.span.line))
            yield cls, framework, spec.pages_by, Span(line, 1, line, 1)
        elif "get_queryset" in methods:
            yield cls, framework, spec.pages_by, project.functions[methods["get_queryset"]].span


def unpaginated_list_views(project: ProjectModel) -> Iterator[Finding]:
    """SL401 for list views: the `queryset =` line (or `model =`, or `get_queryset`) of an
    unpaginated DRF or Django list view."""
    for cls, framework, attribute, span in _list_views(project):
        if framework == "drf":
            message = (
                f"DRF view `{cls.qualname}` lists its whole queryset: it sets no `pagination_class` and "
                "REST_FRAMEWORK has no DEFAULT_PAGINATION_CLASS, so every request serializes every row; "
                "set `pagination_class` (e.g. `LimitOffsetPagination` with `max_limit`) or a default in "
                "settings"
            )
        else:
            message = (
                f"List view `{cls.qualname}` lists its whole queryset: it sets no `{attribute}`, so every "
                f"request renders every row; set `{attribute} = 50` (the template gets `page_obj`)"
            )
        yield finding(
            "SL401", project.path_of(cls), Span(span.line, span.column, span.line, span.column), message
        )
