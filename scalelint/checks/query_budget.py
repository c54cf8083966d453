"""SL6 query budget: round trips made once per row instead of once per request.

One loop, three rules by what the iteration does: a query (SL601), a write (SL605),
a cache or HTTP call (SL603). Each is found directly in the loop body, and through the
functions the loop calls, across modules (`for o in orders: total(o)` where `total`
queries two modules away); the finding then sits on the call in the loop and carries
the chain down to the operation.
"""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding, request_chain
from scalelint.config import Config
from scalelint.facts.model import Attr, CallResult, CallSite, Const, Imported, ItemRead, Loop, Opaque, Value
from scalelint.findings import Edit, Finding, Related, Severity
from scalelint.project import MODULE_BODY, ClassRef, Operation, ProjectModel, name_of
from scalelint.query_shapes import built_in, chain_calls, model_of_value, split
from scalelint.record import record
from scalelint.request_path_types import ChainStep, FuncRef
from scalelint.schema import Relation


@record
class PerRow:
    """An operation that runs once per loop iteration, and how the loop reaches it."""

    function: FuncRef
    site: CallSite
    loop: Loop
    operation: Operation
    chain: tuple[ChainStep, ...]


def per_row(project: ProjectModel, kinds: frozenset[str], config: Config) -> Iterator[PerRow]:
    """Operations of these kinds inside a loop over data, directly or through a call (not
    a loop over an enumeration's members); only on the request path when
    `per-row-scope = "request"`."""
    for row in _rows_in_loops(project, kinds):
        if _over_enum(project, row.function, row.loop):
            continue
        if config.per_row_scope == "all" or row.function in project.request_path:
            yield row


ENUMERATION = frozenset({"enumeration"})
ENUM_MEMBERS = {"choices", "values", "labels", "names", "__members__"}


def _over_enum(project: ProjectModel, function: FuncRef, loop: Loop) -> bool:
    """`for status in OrderStatus:` (or `OrderStatus.choices`): as many turns as members."""
    value = loop.iterable
    parts = split(value.callee) if isinstance(value, CallResult) else None
    if parts is not None and parts[1] == "items":
        value = parts[0]  # `Status.__members__.items()`
    parts = split(value)
    if parts is not None and parts[1] in ENUM_MEMBERS:
        value = parts[0]
    cls = project.resolve(value, function.module)
    return isinstance(cls, ClassRef) and project.class_spec(cls, ENUMERATION) is not None


def _rows_in_loops(project: ProjectModel, kinds: frozenset[str]) -> Iterator[PerRow]:
    for op in project.all_operations():
        loop = op.site.per_item_loop
        if op.op in kinds and op.round_trip and loop is not None and not project.routing.one_off(op.function):
            yield PerRow(op.function, op.site, loop, op, ())
    reaching = project.reaches(kinds)
    for caller, edges in project.call_edges.items():
        if project.routing.one_off(caller):
            continue
        reported: set[int] = set()
        for site, target in edges:
            loop = site.per_item_loop
            if loop is None or target not in reaching or target in project.routing.memoized:
                continue
            if id(site) in reported:
                continue
            reported.add(id(site))
            chain, operation = reaching[target]
            yield PerRow(caller, site, loop, operation, (ChainStep(caller, site), *chain))


def _related(project: ProjectModel, row: PerRow) -> tuple[Related, ...]:
    related = [Related(project.path_of(row.function), row.loop.line, "the loop")]
    related += [
        Related(project.step_path(step), step.site.span.line, f"calls `{step.site.text}`")
        for step in row.chain[1:]
    ]
    if row.chain:
        op = row.operation
        related.append(
            Related(project.path_of(op.function), op.site.span.line, f"`{op.site.text}` runs here")
        )
    if row.function in project.request_path:
        related += request_chain(project, row.function)
    return tuple(related)


def _through(project: ProjectModel, row: PerRow) -> str:
    if not row.chain:
        return ""
    called = [step.caller for step in row.chain[1:]] + [row.operation.function]
    names = " → ".join(function.qualname for function in called)
    op = row.operation
    return f" (through {names}: `{op.site.text}` at {project.path_of(op.function)}:{op.site.span.line})"


@record
class Cost:
    """What a per-row operation does, what N of them cost, and the batched alternative."""

    what: str  # "runs a query"
    cost: str  # "N rows cost N database round trips"
    fix: str


def _report(
    project: ProjectModel, rule: str, row: PerRow, cost: Cost, request_severity: Severity | None
) -> Finding:
    loop = row.loop
    through = _through(project, row)
    if loop.kind == "concurrent fan-out":
        message = (
            f"`{row.site.text}` {cost.what} for every item of `{loop.iter_text}`, all at once (line "
            f"{loop.line}){through}: a concurrent fan-out is still N round trips, holding N connections "
            f"at the same time; {cost.fix}"
        )
    elif row.site.hoistable:
        # Nothing in the call changes per item: the same round trip, N times.
        where = "out of the loop" if rule == "SL605" else "above the loop"
        message = (
            f"`{row.site.text}` {cost.what} on every iteration of the {loop.kind} loop over "
            f"`{loop.iter_text}` (line {loop.line}){through}, and reads nothing the loop changes: every "
            f"iteration repeats the same call; hoist it {where} and run it once"
        )
    else:
        message = (
            f"`{row.site.text}` {cost.what} on every iteration of the {loop.kind} loop over "
            f"`{loop.iter_text}` (line {loop.line}){through}: {cost.cost}; {cost.fix}"
        )
    on_request_path = row.function in project.request_path
    return finding(
        rule,
        project.path_of(row.function),
        row.site.span,
        message,
        _related(project, row),
        request_severity if on_request_path else None,
    )


QUERY_PER_ROW = Cost(
    "runs a query",
    "N rows cost N database round trips",
    "fetch them in one query before the loop (a JOIN, `WHERE id = ANY(...)`, "
    "`select_related`/`prefetch_related`, `selectinload`)",
)


@check("SL601")
def n_plus_one(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for row in per_row(project, frozenset({"db.query"}), config):
        yield _report(project, "SL601", row, QUERY_PER_ROW, Severity.ERROR)
    yield from lazy_relations(project, config)
    yield from nested_serializers(project)


PEER_FETCH_MODES = {"FETCH_PEERS", "RAISE"}
# Methods of a related manager that a prefetch serves from memory.
PREFETCH_SERVED = {"all", "count", "exists", "__iter__", "__len__"}


def _loaded(project: ProjectModel, function: FuncRef, value: Value) -> tuple[set[str], set[str], bool] | None:
    """What a Django queryset loads with its rows: (select_related paths, prefetch_related
    paths, every forward key); None when part of the chain was built out of sight."""
    joined: set[str] = set()
    prefetched: set[str] = set()
    every_key = False
    for method, _call, site in chain_calls(project, function, value):
        if method == "fetch_mode" and site is not None:
            # Django 6.1: FETCH_PEERS loads a key for every row at once on first access; RAISE
            # refuses lazy loads. Either way, reading a key is not a query per row.
            every_key = every_key or any(name_of(arg) in PEER_FETCH_MODES for arg in site.args if arg)
            continue
        if method not in ("select_related", "prefetch_related"):
            continue
        if site is None:
            return None
        if method == "select_related" and not site.args:
            every_key = True
        for arg in site.args:
            names: list[str] = []
            if isinstance(arg, Const) and isinstance(arg.value, str):
                names.append(arg.value)
            elif isinstance(arg, CallResult) and arg.first_text:  # Prefetch("tags", ..., to_attr=...)
                names.append(arg.first_text)
                inner = next((s for s in project.functions[function].calls if s.callee == arg.callee), None)
                to_attr = inner.kwarg("to_attr") if inner is not None else None
                if isinstance(to_attr, Const) and isinstance(to_attr.value, str):
                    names.append(to_attr.value)
            else:
                return None  # a path phase 1 cannot read: assume it covers what it needs
            target = joined if method == "select_related" else prefetched
            target.update(name.split("__")[0] for name in names)
    return joined, prefetched, every_key


def _covers(
    loaded: tuple[set[str], set[str], bool], name: str, relation: Relation, method: str = "__iter__"
) -> bool:
    """The queryset's loads serve `row.<name>` (and `.<method>()` on a many relation)."""
    joined, prefetched, every_key = loaded
    if relation.kind == "one":
        return name in joined or name in prefetched or every_key or relation.eager
    return name in prefetched and method in PREFETCH_SERVED


def _helper_note(project: ProjectModel, pieces: list[tuple[FuncRef, Value | None]]) -> str:
    """Where the query starts when a helper builds it."""
    if len(pieces) < 2:
        return ""
    helper = pieces[-1][0]
    where = f"{project.path_of(helper)}:{project.functions[helper].line}"
    return f"; the query is built in `{helper.qualname}` ({where})"


def _loaded_by(
    project: ProjectModel, pieces: list[tuple[FuncRef, Value | None]]
) -> tuple[set[str], set[str], bool] | None:
    """What a queryset built by a caller and the helpers it starts from loads, together."""
    joined: set[str] = set()
    prefetched: set[str] = set()
    every_key = False
    for function, value in pieces:
        loaded = _loaded(project, function, value) if value is not None else None
        if loaded is None:
            return None
        joined |= loaded[0]
        prefetched |= loaded[1]
        every_key = every_key or loaded[2]
    return joined, prefetched, every_key


@record
class LazyRead:
    """A relation read per row that the queryset did not load."""

    read: ItemRead
    loop: Loop
    what: str
    fix: str
    loader: str  # select_related | prefetch_related | "" (no safe fix)


def _lazy_reads(project: ProjectModel, function: FuncRef) -> Iterator[LazyRead]:
    relations = project.schema.relations
    fn = project.functions[function]
    reported: set[tuple[int, str]] = set()
    for read in fn.item_reads:
        loop = next((lp for lp in read.loops if lp.iterable == read.item.of and lp.per_item), None)
        if loop is None or (loop.line, read.attr) in reported:
            continue
        pieces = built_in(project, function, _statement_of(project, function, read.item.of))
        model = model_of_value(project, *pieces[-1])
        relation = relations.get(model, {}).get(read.attr) if model is not None else None
        if relation is not None and relation.orm == "sqlalchemy":
            options = _sqlalchemy_loads(project, pieces)
            if relation.eager or options is None or read.attr in options:
                continue
            loader = "joinedload" if relation.kind == "one" else "selectinload"
            what = "loads lazily, with a query of its own for every row"
            fix = (
                f"load it with the rows: `.options({loader}({model.qualname if model else ''}.{read.attr}))`"
            )
            reported.add((loop.line, read.attr))
            yield LazyRead(read, loop, what, fix + _helper_note(project, pieces), "")
            continue
        loaded = _loaded_by(project, pieces) if relation is not None else None
        if relation is None or loaded is None:
            continue
        prefetched = loaded[1]
        method = _manager_method(fn.calls, read)
        if relation.kind == "one":
            if _covers(loaded, read.attr, relation):
                continue
            loader = "prefetch_related" if relation.generic else "select_related"
            why = "a generic key cannot be joined" if relation.generic else "one JOIN"
            fix = f"add `{loader}('{read.attr}')` to the queryset ({why})"
            what = "loads its row with a query of its own for every row"
        elif read.attr in prefetched and method in PREFETCH_SERVED:
            continue
        elif read.attr in prefetched:
            loader = ""
            fix = "filter the prefetch itself (`Prefetch('" + read.attr + "', queryset=...)`)"
            what = f"runs a new query on the prefetched rows (`.{method}()`) for every row"
        else:
            loader = "prefetch_related"
            fix = f"add `prefetch_related('{read.attr}')` to the queryset (one more query in all)"
            what = "queries the related rows for every row"
        reported.add((loop.line, read.attr))
        yield LazyRead(read, loop, what, fix + _helper_note(project, pieces), loader)


# Loader options that load a relationship with its rows (or make a lazy load raise).
SQLALCHEMY_LOADERS = {
    "joinedload",
    "selectinload",
    "subqueryload",
    "immediateload",
    "raiseload",
    "contains_eager",
}


def _statement_of(project: ProjectModel, function: FuncRef, value: Value | None) -> Value | None:
    """The statement a SQLAlchemy result was read from (`session.scalars(stmt).all()`),
    or the value itself (`session.query(User)...`, a Django queryset)."""
    for method, _, site in chain_calls(project, function, value):
        if method in ("scalars", "execute", "exec") and site is not None and site.args:
            return site.args[0]
    return value


def _sqlalchemy_loads(project: ProjectModel, pieces: list[tuple[FuncRef, Value | None]]) -> set[str] | None:
    """Relationships a statement's `.options(...)` load; None when an option is unreadable."""
    loads: set[str] = set()
    calls = [call for function, statement in pieces for call in chain_calls(project, function, statement)]
    for method, _, site in calls:
        if method != "options":
            continue
        if site is None:
            return None
        for arg in site.args:
            root = arg
            while isinstance(root, CallResult) and isinstance(root.callee, Attr):  # .selectinload(...) chains
                root = root.callee.base if isinstance(root.callee.base, CallResult) else None
            if not isinstance(root, CallResult):
                return None
            if name_of(root.callee) not in SQLALCHEMY_LOADERS:
                continue
            target = root.first_value
            attr = name_of(target) if isinstance(target, (Attr, Imported)) else root.first_text
            if attr:
                loads.add(attr)
    return loads


def _loader_fix(
    project: ProjectModel, function: FuncRef, value: Value | None, wanted: dict[str, list[str]]
) -> tuple[Edit, ...]:
    """Edits that add the missing `select_related` / `prefetch_related` names to a queryset
    built in this function: into an existing call, or as new calls right after the manager."""
    chain = chain_calls(project, function, value)
    if not chain or any(site is None for _, _, site in chain):
        return ()
    path = project.path_of(function)
    edits: list[Edit] = []
    new_calls = ""
    for loader, names in wanted.items():
        quoted = ", ".join(f'"{name}"' for name in dict.fromkeys(names))
        existing = next((site for method, _, site in chain if method == loader and site and site.args), None)
        if existing is not None:
            span = existing.span
            edits.append(Edit(path, 0, 0, f", {quoted}", span.end_line, span.end_column - 1, after=")"))
        else:
            new_calls += f".{loader}({quoted})"
    if new_calls:
        method, _, first = chain[-1]
        receiver = first.text.split(f".{method}(")[0] if first is not None else ""
        if first is None or not receiver or "(" in receiver or "\n" in receiver:
            return ()
        manager = receiver.rsplit(".", 1)[-1]
        edits.append(
            Edit(path, 0, 0, new_calls, first.span.line, first.span.column + len(receiver), before=manager)
        )
    return tuple(edits)


def lazy_relations(project: ProjectModel, config: Config) -> Iterator[Finding]:
    """`row.customer` / `row.tags.all()` on each row of a Django queryset that did not
    load them with `select_related` / `prefetch_related`: one query per row. The fix
    adds the loads to the queryset when it is built in the same function."""
    if not project.schema.relations:
        return
    for function, fn in project.functions.items():
        if not fn.item_reads or project.routing.one_off(function):
            continue
        if config.per_row_scope == "request" and function not in project.request_path:
            continue
        lazy = list(_lazy_reads(project, function))
        by_queryset: dict[int, dict[str, list[str]]] = {}
        for item in lazy:
            if item.loader:
                by_queryset.setdefault(item.loop.line, {}).setdefault(item.loader, []).append(item.read.attr)
        fixes = {
            line: _loader_fix(
                project, function, next(i.loop.iterable for i in lazy if i.loop.line == line), wanted
            )
            for line, wanted in by_queryset.items()
        }
        for item in lazy:
            read, loop = item.read, item.loop
            message = (
                f"`{read.name}.{read.attr}` {item.what} in the loop over `{loop.iter_text}` "
                f"(line {loop.line}): N rows cost N+1 queries; {item.fix}"
            )
            related = [Related(project.path_of(function), loop.line, "the loop")]
            if function in project.request_path:
                related += request_chain(project, function)
            yield finding(
                "SL601",
                project.path_of(function),
                read.span,
                message,
                tuple(related),
                Severity.ERROR if function in project.request_path else None,
                fixes=fixes.get(loop.line, ()) if item.loader else (),
            )


# ---- DRF: nested serializers over a queryset that did not load the relation ------------


@record
class SerializedList:
    """A queryset serialized with `many=True`: by a call, or by a DRF list view."""

    serializer: ClassRef
    queryset: Value
    function: FuncRef  # where the queryset is written
    where: str  # how it is serialized, for the message
    line: int


def _serializer_spec(project: ProjectModel, cls: ClassRef) -> bool:
    spec = project.class_spec(cls, frozenset({"called-class"}))
    return spec is not None and spec.framework == "drf"


def _serialized_lists(project: ProjectModel) -> Iterator[SerializedList]:
    for op in project.all_operations():
        site = op.site
        if site.kwarg("many") != Const(True) or not site.args or site.args[0] is None:
            continue
        cls = project.resolve(site.callee, op.function.module)
        if isinstance(cls, ClassRef) and _serializer_spec(project, cls):
            yield SerializedList(cls, site.args[0], op.function, f"`{site.text}`", site.span.line)
    for view, facts in project.classes.items():
        spec = project.class_spec(view, frozenset({"view-class"}))
        if spec is None or spec.framework != "drf" or "list" not in spec.handler_methods:
            continue
        if "get_queryset" in project.class_methods(view):
            continue  # the rows (and what they load) are chosen in code not read here
        attributes = dict(facts.attributes)
        queryset, serializer = attributes.get("queryset"), attributes.get("serializer_class")
        cls = project.resolve(serializer, view.module) if serializer is not None else None
        if queryset is not None and isinstance(cls, ClassRef) and _serializer_spec(project, cls):
            body = FuncRef(view.module, MODULE_BODY)
            yield SerializedList(
                cls, queryset, body, f"the list action of `{view.qualname}`", facts.span.line
            )


def _nested_fields(project: ProjectModel, serializer: ClassRef) -> Iterator[tuple[str, CallSite]]:
    """(relation name, field call) of each nested serializer field: `customer =
    CustomerSerializer()`, `tags = TagSerializer(many=True, source="labels")`."""
    for site in project.classes[serializer].calls:
        if site.assigned_to is None:
            continue
        nested = project.resolve(site.callee, serializer.module)
        if isinstance(nested, ClassRef) and _serializer_spec(project, nested):
            source = site.kwarg("source")
            name = (
                source.value
                if isinstance(source, Const) and isinstance(source.value, str)
                else site.assigned_to
            )
            if "." not in name and name != "*":
                yield name, site


def _serializer_model(project: ProjectModel, serializer: ClassRef) -> ClassRef | None:
    meta = project.classes.get(ClassRef(serializer.module, f"{serializer.qualname}.Meta"))
    model = dict(meta.attributes).get("model") if meta is not None else None
    found = project.resolve(model, serializer.module) if model is not None else None
    return found if isinstance(found, ClassRef) else None


def django_loader(relation: Relation) -> str:
    """The queryset method that loads a Django relation with its rows."""
    return "select_related" if relation.kind == "one" and not relation.generic else "prefetch_related"


@record
class MethodField:
    """`comment_count = SerializerMethodField()`: DRF calls `get_comment_count(obj)` per row."""

    name: str
    method: FuncRef
    row_param: str  # the method's parameter that receives the row


def _method_fields(project: ProjectModel, serializer: ClassRef) -> Iterator[MethodField]:
    for site in project.classes[serializer].calls:
        if site.assigned_to is None or name_of(site.callee) != "SerializerMethodField":
            continue
        named = site.kwarg("method_name") or (site.args[0] if site.args else None)
        method = named.value if isinstance(named, Const) and isinstance(named.value, str) else None
        ref = FuncRef(serializer.module, f"{serializer.qualname}.{method or 'get_' + site.assigned_to}")
        facts = project.functions.get(ref)
        if facts is not None and len(facts.params) >= 2:
            yield MethodField(site.assigned_to, ref, facts.params[1].name)


def _lazy_row_calls(
    project: ProjectModel, field: MethodField, model: ClassRef, loaded: tuple[set[str], set[str], bool]
) -> Iterator[tuple[CallSite, str, Relation]]:
    """Calls on a relation of the row the method receives (`obj.comments.count()`,
    `obj.author.get_full_name()`) that the queryset did not load."""
    relations = project.schema.relations.get(model, {})
    for site in project.functions[field.method].calls:
        callee = site.callee
        if not (isinstance(callee, Attr) and isinstance(callee.base, Attr)):
            continue
        row, relation_name = callee.base.base, callee.base.attr
        relation = relations.get(relation_name)
        if relation is None or row != Opaque(field.row_param):
            continue
        if not _covers(loaded, relation_name, relation, callee.attr):
            yield site, relation_name, relation


def _method_field_findings(
    project: ProjectModel,
    listed: SerializedList,
    model: ClassRef | None,
    loaded: tuple[set[str], set[str], bool] | None,
) -> Iterator[tuple[Finding, str]]:
    """A `SerializerMethodField` whose method queries: once per serialized row. A relation
    of the row is judged only when the queryset's loads are known."""
    reaching = project.reaches(frozenset({"db.query"}))
    where = f"for every row that {listed.where} serializes ({project.path_of(listed.function)}:{listed.line})"
    for field in _method_fields(project, listed.serializer):
        path = project.path_of(field.method)
        method = field.method.qualname.rsplit(".", 1)[-1]
        related = (Related(project.path_of(listed.function), listed.line, "the rows are serialized here"),)
        lazy = next(_lazy_row_calls(project, field, model, loaded), None) if model and loaded else None
        if lazy is not None:
            site, name, relation = lazy
            loader = django_loader(relation)
            message = (
                f"`{site.text}` in `{method}` loads `{name}` with a query of its own {where}: N rows "
                f"cost N+1 queries; add `{loader}('{name}')` to that queryset"
                + (", or `annotate(...)` the value there" if relation.kind == "many" else "")
            )
            yield finding("SL601", path, site.span, message, related), field.name
        elif field.method in reaching:
            chain, op = reaching[field.method]
            site = chain[0].site if chain else op.site
            message = (
                f"`{site.text}` in `{method}` (SerializerMethodField `{field.name}`) runs a query {where}: "
                f"N rows cost N+1 queries; compute the value for every row in one query (`annotate(...)`, "
                f"a prefetch) and read it from the row"
            )
            chained = (*related, *_chain_related(project, chain, op))
            yield finding("SL601", path, site.span, message, chained), field.name


def _chain_related(project: ProjectModel, chain: tuple[ChainStep, ...], op: Operation) -> tuple[Related, ...]:
    if not chain:
        return ()
    return (Related(project.path_of(op.function), op.site.span.line, f"`{op.site.text}` runs here"),)


def nested_serializers(project: ProjectModel) -> Iterator[Finding]:
    """A nested serializer field of a list serialized with `many=True`, on a relation its
    queryset did not `select_related` / `prefetch_related`: one query per row."""
    relations = project.schema.relations
    reported: set[tuple[ClassRef, str]] = set()
    for listed in _serialized_lists(project):
        model = _serializer_model(project, listed.serializer)
        loaded = _loaded(project, listed.function, listed.queryset) if model is not None else None
        for method_finding, method_field in _method_field_findings(project, listed, model, loaded):
            if (listed.serializer, method_field) not in reported:
                reported.add((listed.serializer, method_field))
                yield method_finding
        if model not in relations or loaded is None:
            continue
        path = project.path_of(listed.serializer)
        for name, field in _nested_fields(project, listed.serializer):
            relation = relations[model].get(name)
            if relation is None or (listed.serializer, name) in reported:
                continue
            if _covers(loaded, name, relation):
                continue
            reported.add((listed.serializer, name))
            loader = django_loader(relation)
            message = (
                f"nested field `{name}` of `{listed.serializer.qualname}` loads `{name}` with a query of its "
                f"own for every row that {listed.where} serializes ({project.path_of(listed.function)}:"
                f"{listed.line}): N rows cost N+1 queries; add `{loader}('{name}')` to that queryset"
            )
            related = (
                Related(project.path_of(listed.function), listed.line, "the rows are serialized here"),
            )
            yield finding("SL601", path, field.span, message, related)


def _manager_method(calls: tuple[CallSite, ...], read: ItemRead) -> str:
    """The method called on `row.tags` (`all`, `filter`), or `__iter__` when none is."""
    manager = Attr(read.item, read.attr)
    for site in calls:
        if isinstance(site.callee, Attr) and site.callee.base == manager:
            return site.callee.attr
    return "__iter__"


@check("SL603")
def io_in_loop(project: ProjectModel, config: Config) -> Iterator[Finding]:
    kinds = frozenset({"cache.get", "cache.set", "cache.delete", "http.request"})
    for row in per_row(project, kinds, config):
        if row.operation.op in ("cache.set", "cache.delete") and len(row.chain) > CACHE_CHAIN_DEPTH:
            # A cache write deep under a per-item job (warming a cache, one report per
            # chart) is a side effect of that job; one `mget` in the loop is no fix.
            continue
        cost = HTTP_PER_ROW if row.operation.op == "http.request" else CACHE_PER_ROW
        yield _report(project, "SL603", row, cost, None)


CACHE_CHAIN_DEPTH = 2  # the loop's call, and one helper below it


HTTP_PER_ROW = Cost(
    "makes an HTTP request",
    "N items cost N round trips to the upstream",
    "batch the call or move it to a worker",
)
CACHE_PER_ROW = Cost(
    "makes a cache round trip",
    "N items cost N round trips to the cache",
    "use one `mget`/`mset` or a pipeline for the whole loop",
)
WRITE_PER_ROW = Cost(
    "writes to the database",
    "N rows cost N round trips and N transactions' worth of locking",
    "write them in one statement (`bulk_create`/`bulk_update`, `queryset.update()`, `executemany`, "
    "`insert().values([...])`, `COPY`)",
)


@check("SL605")
def per_row_write(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for row in per_row(project, frozenset({"db.write"}), config):
        yield _report(project, "SL605", row, WRITE_PER_ROW, None)


DB_ROUND_TRIPS = {"db.query", "db.write", "db.execute", "db.ddl"}


@check("SL602")
def request_query_budget(project: ProjectModel, config: Config) -> Iterator[Finding]:
    budget = config.max_db_calls_per_request
    for handler_ref, handler in sorted(
        project.handlers.items(), key=lambda item: (item[0].module, item[0].qualname)
    ):
        calls = [
            op
            for function in project.reachable_from(handler_ref, project.routing.memoized)
            for op in project.operations.get(function, ())
            if op.op in DB_ROUND_TRIPS
        ]
        in_loops = [op for op in calls if op.site.per_item_loop is not None]
        if len(calls) <= budget:
            continue
        count = f"{len(calls)}{'+N' if in_loops else ''}"
        message = (
            f"{handler.label} can make {count} database round trips per request (budget: {budget}, "
            "`max-db-calls-per-request`): every extra round trip is latency the user waits for and a "
            "pool connection held longer; fold them into one query (JOINs, CTEs, an RPC) or cache the reads"
        )
        related = tuple(
            Related(
                project.path_of(op.function),
                op.site.span.line,
                f"`{op.site.text}`" + (" (in a loop)" if op in in_loops else ""),
            )
            for op in calls[:20]
        )
        fn = project.functions[handler_ref]
        yield finding("SL602", project.path_of(handler_ref), fn.span, message, related)
