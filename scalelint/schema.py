"""Phase 2: the schema model: tables, columns, keys, indexes, RLS policies, functions.

Built from whatever the project keeps, replayed in path order (migration files are
named to sort in the order they run): SQL DDL (`.sql` files outside tests, the
`schema` config globs, and DDL strings a migration executes), Alembic operations,
then the ORM models (Django, SQLAlchemy declarative and Core `Table`), which describe
the current state and add what the migrations did not show.

A table is *known* only when its definition was found; the index rules stay silent
on every other table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from functools import cached_property

from scalelint.facts.model import (
    Attr,
    CallResult,
    CallSite,
    ClassFacts,
    ColumnDef,
    Const,
    DictLiteral,
    Global,
    IndexDef,
    Instance,
    Item,
    PolicyDef,
    SchemaChange,
    Sequence,
    SqlStatement,
    Value,
)
from scalelint.findings import Span
from scalelint.project import MODULE_BODY, ClassRef, ExtName, ProjectModel, name_of
from scalelint.record import record
from scalelint.request_path import TEST_FILE
from scalelint.request_path_types import FuncRef

# Batch operations (`batch_op.create_index(name, columns)`) leave out the table name the
# `op.` form takes at this position.
BATCH_TABLE_ARGUMENT = {
    "create_index": 1,
    "add_column": 0,
    "drop_column": 0,
    "create_foreign_key": 1,
    "create_unique_constraint": 1,
    "create_primary_key": 1,
    "drop_index": 1,
}
# Django fields that load related rows when read.
RELATION_FIELDS = {"ForeignKey", "OneToOneField", "ManyToManyField", "GenericForeignKey", "GenericRelation"}
# SQLAlchemy `relationship(lazy=...)` values that load (or refuse to load) with the rows.
EAGER_LOADING = {"selectin", "joined", "subquery", "immediate", "raise", "raise_on_sql", "noload"}
# Index methods whose leading column serves equality, ranges, IN and ORDER BY.
ORDERED_METHODS = {"btree", ""}
TRIGRAM_OPCLASSES = {"gin_trgm_ops", "gist_trgm_ops"}


@record
class Where:
    """A place in the project: the file and line a schema object was declared on."""

    path: str
    line: int


@record
class Index:
    definition: IndexDef
    where: Where
    implicit: bool = False  # made by a PRIMARY KEY / UNIQUE / Django FK, not an index statement

    @property
    def parts(self) -> tuple[str, ...]:
        return self.definition.parts


@record
class ForeignKey:
    columns: tuple[str, ...]
    references: str
    where: Where


@record
class Policy:
    definition: PolicyDef
    where: Where
    offset: int | None = None  # where its statement starts in a .sql file, for fixes


@record
class Function:
    name: str
    volatility: str
    body: tuple[SqlStatement, ...]
    where: Where


@record
class Relation:
    """A model attribute that loads other rows: `order.customer` (one), `order.tags`,
    `customer.order_set` (many)."""

    kind: str  # one | many
    target: ClassRef | None
    generic: bool = False  # a GenericForeignKey: only prefetch_related can load it
    # Loaded with its rows: SQLAlchemy `lazy="selectin"` and friends, django-auto-prefetch keys.
    eager: bool = False
    orm: str = "django"


@dataclass
class Table:
    name: str
    where: Where
    origin: str  # sql | alembic | django | sqlalchemy
    columns: dict[str, Where] = field(default_factory=dict)
    indexes: list[Index] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    rls: bool = False
    policies: list[Policy] = field(default_factory=list)

    def add_index(self, definition: IndexDef, where: Where, implicit: bool = False) -> None:
        if not any(
            i.parts == definition.parts and i.definition.method == definition.method for i in self.indexes
        ):
            self.indexes.append(Index(definition, where, implicit))

    def add_foreign_key(self, key: ForeignKey, model: bool = False) -> None:
        """One key per column list; a model's declaration replaces a migration's."""
        for position, known in enumerate(self.foreign_keys):
            if known.columns == key.columns:
                if model:
                    self.foreign_keys[position] = key
                return
        self.foreign_keys.append(key)

    def serves(
        self, column: str, op: str = "eq", function: str = "", equal: frozenset[str] = frozenset()
    ) -> bool:
        """An index can find rows by `column` (wrapped in `function`, compared with `op`)
        when the column is its leading key part, or follows key parts the query pins
        with equality (`equal`)."""
        wanted = f"{function}({column})" if function else column
        for index in self.indexes:
            definition = index.definition
            if op == "contains":
                if (
                    definition.method in ("gin", "gist")
                    and any(o in TRIGRAM_OPCLASSES for o in definition.opclasses)
                    and wanted in definition.parts
                ):
                    return True
                continue
            if definition.method not in ORDERED_METHODS and not (definition.method == "hash" and op == "eq"):
                continue
            for part in definition.parts:
                if part == wanted:
                    return True
                if part not in equal:
                    break
        return False


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    models: dict[ClassRef, str] = field(default_factory=dict)  # ORM class -> its table
    fields: dict[ClassRef, dict[str, str]] = field(default_factory=dict)  # attribute -> column
    boolean_columns: set[tuple[str, str]] = field(default_factory=set)  # (table, column)
    relations: dict[ClassRef, dict[str, Relation]] = field(default_factory=dict)  # Django models
    functions: dict[str, Function] = field(default_factory=dict)
    # CREATE INDEX statements in order, and whether their table existed in an earlier file.
    index_statements: list[tuple[Index, bool]] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name.lower()) if name else None

    def function(self, name: str) -> Function | None:
        """A SQL function by its name as called: `is_member`, `private.is_member`."""
        name = name.lower()
        return self.functions.get(name) or self.functions.get(name.rsplit(".", 1)[-1])


# ---- building ---------------------------------------------------------------------


def is_schema_source(path: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch(path, g) for g in globs) or not TEST_FILE.search(path)


@record
class _Applied:
    """A schema change a migration makes, to be replayed."""

    change: SchemaChange
    where: Where
    origin: str


@record
class _DjangoModel:
    """A Django migration's `CreateModel` (no index) or `AddIndex` of an app's model."""

    model: str  # `app_model`
    index: IndexDef | None  # what AddIndex adds; None for CreateModel
    line: int


class _Builder:
    def __init__(self, project: ProjectModel, globs: tuple[str, ...]) -> None:
        self.project = project
        self.globs = globs
        self.schema = Schema()
        self._created_in: dict[str, str] = {}

    # -- replaying DDL -------------------------------------------------------------

    def apply(self, change: SchemaChange, where: Where, origin: str, offset: int | None = None) -> None:
        tables = self.schema.tables
        name = change.table.lower()
        action = change.action
        if action == "create_table":
            if not name:
                return  # `op.create_table(Model.__tablename__, ...)`: a name phase 1 cannot read
            table = tables.setdefault(name, Table(name, where, origin))
            self._created_in.setdefault(name, where.path)
            for column in change.columns:
                self._add_column(table, column, where)
            return
        if action == "create_function":
            self.schema.functions[change.name] = Function(change.name, change.volatility, change.body, where)
            return
        if action == "drop_index":
            for table in tables.values():
                table.indexes = [i for i in table.indexes if i.definition.name != change.name]
            return
        table_or_none = tables.get(name) if name else None
        if table_or_none is None:
            return
        table = table_or_none
        if action == "drop_table":
            del tables[name]
        elif action == "rename_table" and change.name:
            tables[change.name.lower()] = tables.pop(name)
            table.name = change.name.lower()
        elif action == "add_columns":
            for column in change.columns:
                self._add_column(table, column, where)
        elif action == "drop_column":
            for column_name in change.key:
                table.columns.pop(column_name, None)
                table.indexes = [i for i in table.indexes if column_name not in i.parts]
                table.foreign_keys = [k for k in table.foreign_keys if column_name not in k.columns]
        elif action in ("add_primary_key", "add_unique") and change.key:
            table.add_index(IndexDef(name, change.key, unique=True), where, implicit=True)
        elif action == "add_foreign_key" and change.key:
            table.add_foreign_key(ForeignKey(change.key, change.references.lower(), where))
        elif action == "add_index" and change.index is not None:
            index = Index(change.index, where)
            earlier = self._created_in.get(name)
            self.schema.index_statements.append((index, earlier is not None and earlier != where.path))
            table.add_index(change.index, where)
        elif action == "enable_rls":
            table.rls = True
        elif action == "create_policy" and change.policy is not None:
            table.policies.append(Policy(change.policy, where, offset))

    def _add_column(self, table: Table, column: ColumnDef, where: Where, model: bool = False) -> None:
        """A column (and the index and key it declares); a model's declaration is where
        a finding about the column belongs, even when a migration created it first."""
        place = Where(where.path, column.line or where.line)
        if model or column.name not in table.columns:
            table.columns[column.name] = place
        if column.primary_key or column.unique or column.indexed:
            table.add_index(
                IndexDef(table.name, (column.name,), unique=column.primary_key or column.unique),
                place,
                implicit=not column.indexed or column.primary_key,
            )
        if column.references:
            table.add_foreign_key(ForeignKey((column.name,), column.references.lower(), place), model)

    def sql_sources(self) -> None:
        """DDL in .sql files and in SQL strings Python migrations execute, in path order."""
        for path in sorted(self.project.files):
            facts = self.project.files[path]
            if facts.parse_error is not None or not is_schema_source(path, self.globs):
                continue
            if facts.language == "sql":
                for statement in facts.sql:
                    for change in statement.schema:
                        self.apply(change, Where(path, statement.line), "sql", statement.offset)
            elif facts.language == "python":
                self._python_migration(path)

    def _python_migration(self, path: str) -> None:
        """Replay what a Python file does to the schema; what it does is read once and kept
        for later runs while nothing it resolves through changes (`per_module`), and while
        the project imports Alembic or does not."""
        alembic = self._imports_alembic
        table = "schema-events" if alembic else "schema-events, no Alembic"
        events = self.project.per_module(table, path, lambda: tuple(self._migration_events(path, alembic)))
        for event in events:
            if isinstance(event, _Applied):
                self.apply(event.change, event.where, event.origin)
            elif event.index is None:
                self._created_in.setdefault(event.model, path)
            else:
                created = self._created_in.get(event.model)
                self.schema.index_statements.append(
                    (Index(event.index, Where(path, event.line)), created is not None and created != path)
                )

    @cached_property
    def _imports_alembic(self) -> bool:
        """Whether any file imports from `alembic`: without that import, no name of the
        project can stand for an Alembic operation, and calls are not resolved looking
        for one (a fifth of the schema's time on the small bench tier). Every import is
        in the facts, those of a name imported again from elsewhere too. (Narrowing this
        to the modules that reach such an import costs more than it saves: a large
        project's import graph takes longer to walk than resolving its calls.)"""
        project = self.project
        return any(
            _names_alembic(project.absolute(target, name))
            for name, facts in project.modules.items()
            for _, target in (*facts.imports, *facts.earlier_imports)
            if "alembic" in target or target[:1] == "."  # what else is absolute already
        )

    def _migration_events(self, path: str, alembic: bool) -> Iterator[_Applied | _DjangoModel]:
        """What a Python file does to the schema, in order, read from its facts alone
        (`alembic`: whether its calls may be Alembic operations)."""
        module = self.project.module_of(path)
        if module is None:
            return
        facts = self.project.files[path]
        # A migration's downgrade undoes its upgrade; replaying both would undo the schema.
        bodies = [
            (MODULE_BODY, facts.module_calls),
            *((fn.qualname, fn.calls) for fn in facts.functions if not fn.qualname.startswith("downgrade")),
        ]
        django = "/migrations/" in f"/{path}"
        for qualname, sites in bodies:
            ref = FuncRef(module, qualname)
            for site in sites:
                for statement in site.sql:
                    for change in statement.schema:
                        yield _Applied(change, Where(path, site.span.line), "sql")
                if alembic:
                    operation, call = self._alembic_call(site, ref)
                    for change in _alembic(operation, call, sites) if operation else ():
                        yield _Applied(change, Where(path, change.line or site.span.line), "alembic")
                if django and (model := self._django_migration(path, site, sites, ref)) is not None:
                    yield model

    def _django_migration(
        self, path: str, site: CallSite, sites: tuple[CallSite, ...], ref: FuncRef
    ) -> _DjangoModel | None:
        """`migrations.CreateModel` / `AddIndex` operations: which models an app's earlier
        migrations created, so an index added to one of them later is a blocking build."""
        name = self._external(site.callee, ref).rsplit(".", 1)[-1]
        if name not in ("CreateModel", "AddIndex"):
            return None
        app = f"/{path}".rsplit("/migrations/", 1)[0].rsplit("/", 1)[-1]
        model = _const_str(site.kwarg("name" if name == "CreateModel" else "model_name")).lower()
        if not model:
            return None
        if name == "CreateModel":
            return _DjangoModel(f"{app}_{model}", None, site.span.line)
        inner = [s for s in sites if s is not site and _inside(s.span, site.span)]
        index = next((s for s in inner if name_of(s.callee).endswith("Index")), None)
        fields = tuple(f.lstrip("-") for f in _strings(index.kwarg("fields"))) if index is not None else ()
        definition = IndexDef(
            f"{app}_{model}", fields or ("?",), _const_str(index.kwarg("name")) if index is not None else ""
        )
        return _DjangoModel(f"{app}_{model}", definition, site.span.line)

    def _alembic_call(self, site: CallSite, function: FuncRef) -> tuple[str, CallSite]:
        """`op.create_index(...)`, or `batch_op.create_index(...)` inside `with
        op.batch_alter_table("t") as batch_op:`, read as the `op.` call it stands for."""
        name = self._external(site.callee, function)
        if name.startswith("alembic.op."):
            return name.removeprefix("alembic.op."), site
        callee = site.callee
        if not isinstance(callee, Attr) or not isinstance(callee.base, CallResult):
            return "", site
        batch = callee.base
        if self._external(batch.callee, function) != "alembic.op.batch_alter_table" or not batch.first_text:
            return "", site
        position = BATCH_TABLE_ARGUMENT.get(callee.attr)
        if position is None:
            return "", site
        args = list(site.args)
        args.insert(min(position, len(args)), Const(batch.first_text))
        return callee.attr, replace(site, args=tuple(args))

    def _external(self, value: Value, function: FuncRef) -> str:
        ref = self.project.resolve(value, function.module)
        return ref.qualname if isinstance(ref, ExtName) else ""

    # -- ORM models ---------------------------------------------------------------------

    def models(self) -> None:
        django: list[tuple[ClassRef, ClassFacts]] = []
        for ref, cls in self.project.classes.items():
            path = self.project.path_of(ref)
            if not is_schema_source(path, self.globs) or "." in ref.qualname:
                continue
            tablename = _attribute(cls, "__tablename__")
            if isinstance(tablename, Const) and isinstance(tablename.value, str):
                self._sqlalchemy_model(ref, cls, tablename.value, path)
            elif self.project.class_spec(ref, frozenset({"model"})) is not None:
                django.append((ref, cls))
        for ref, cls in django:
            name = self._django_table(ref, cls)
            if name is not None:
                self.schema.models[ref] = name
        for ref, cls in django:
            if ref in self.schema.models:
                self._django_model(ref, cls)
        for ref, _ in django:
            self._django_relations(ref)
        self._sqlalchemy_core()

    def _class_calls(self, ref: ClassRef, seen: frozenset[ClassRef] = frozenset()) -> Iterator[CallSite]:
        """Field declarations of a class and of its project bases (mixins, abstract models)."""
        cls = self.project.classes[ref]
        for base in cls.bases:
            resolved = self.project.resolve(base, ref.module)
            if isinstance(resolved, ClassRef) and resolved not in seen and resolved != ref:
                yield from self._class_calls(resolved, seen | {ref})
        yield from cls.calls

    def _annotated_columns(self, ref: ClassRef, seen: frozenset[ClassRef] = frozenset()) -> Iterator[str]:
        """`email: Mapped[str]` with no `mapped_column(...)`: a column all the same."""
        cls = self.project.classes[ref]
        for base in cls.bases:
            resolved = self.project.resolve(base, ref.module)
            if isinstance(resolved, ClassRef) and resolved not in seen and resolved != ref:
                yield from self._annotated_columns(resolved, seen | {ref})
        for name, value in cls.attributes:
            if isinstance(value, Instance) and isinstance(value.of, Item):
                mapped = self.project.resolve(value.of.of, ref.module)
                if (
                    isinstance(mapped, ExtName)
                    and mapped.qualname.startswith("sqlalchemy.")
                    and (mapped.qualname.endswith(".Mapped"))
                ):
                    yield name

    def _sqlalchemy_model(self, ref: ClassRef, cls: ClassFacts, name: str, path: str) -> None:
        self.schema.models[ref] = name.lower()
        sites = list(self._class_calls(ref))
        self.schema.fields[ref] = {
            site.assigned_to: column.name
            for site in sites
            if site.assigned_to
            and name_of(site.callee) in ("Column", "mapped_column")
            and (column := _sqlalchemy_column(site)) is not None
        }
        for site in sites:
            if site.assigned_to and self._qualname(site.callee, ref.module).endswith(".relationship"):
                lazy = _const_str(site.kwarg("lazy")) or "select"
                one = site.kwarg("uselist") == Const(False)
                self.schema.relations.setdefault(ref, {})[site.assigned_to] = Relation(
                    "one" if one else "many", None, eager=lazy in EAGER_LOADING, orm="sqlalchemy"
                )
        table = self.schema.tables.setdefault(
            name.lower(), Table(name.lower(), Where(path, cls.span.line), "sqlalchemy")
        )
        self._sqlalchemy_columns(table, list(self._class_calls(ref)), ref.module, path)
        for attribute in self._annotated_columns(ref):
            if attribute not in self.schema.fields[ref]:
                self._add_column(table, ColumnDef(attribute, line=cls.span.line), Where(path, cls.span.line))
                self.schema.fields[ref][attribute] = attribute

    def _sqlalchemy_columns(self, table: Table, sites: list[CallSite], module: str, path: str) -> None:
        for site in sites:
            name = self._qualname(site.callee, module)
            last = name.rsplit(".", 1)[-1]
            where = Where(path, site.span.line)
            if not name.startswith("sqlalchemy."):
                continue
            if last in ("Column", "mapped_column"):
                column = _sqlalchemy_column(site)
                if column is not None:
                    self._add_column(table, column, where, model=True)
            elif last == "Index" and len(site.args) > 1:
                parts = tuple(p for p in (_part(v) for v in site.args[1:]) if p)
                unique = site.kwarg("unique") == Const(True)
                method = _const_str(site.kwarg("postgresql_using")) or "btree"
                if parts:
                    name = _const_str(site.args[0])
                    table.add_index(IndexDef(table.name, parts, name, unique, method, _ops(site)), where)
            elif last in ("UniqueConstraint", "PrimaryKeyConstraint"):
                parts = tuple(p for p in (_part(v) for v in site.args) if p)
                if parts:
                    table.add_index(IndexDef(table.name, parts, unique=True), where, implicit=True)
            elif last == "ForeignKeyConstraint" and len(site.args) >= 2:
                local = _strings(site.args[0])
                remote = _strings(site.args[1])
                if local and remote:
                    table.add_foreign_key(ForeignKey(local, remote[0].split(".")[0].lower(), where), True)

    def _sqlalchemy_core(self) -> None:
        """`Table("users", metadata, Column(...), Index(...))` at module level."""
        for path, facts in self.project.files.items():
            if facts.language != "python" or not is_schema_source(path, self.globs):
                continue
            module = self.project.module_of(path)
            if module is None:
                continue
            for site in facts.module_calls:
                if self._qualname(site.callee, module) not in ("sqlalchemy.Table", "sqlalchemy.schema.Table"):
                    continue
                name = _const_str(site.args[0]) if site.args else ""
                if not name:
                    continue
                table = self.schema.tables.setdefault(
                    name.lower(), Table(name.lower(), Where(path, site.span.line), "sqlalchemy")
                )
                inner = [s for s in facts.module_calls if s is not site and _inside(s.span, site.span)]
                self._sqlalchemy_columns(table, inner, module, path)

    def _qualname(self, value: Value, module: str) -> str:
        ref = self.project.resolve(value, module)
        return ref.qualname if isinstance(ref, ExtName) else ""

    def _django_table(self, ref: ClassRef, cls: ClassFacts) -> str | None:
        meta = self.project.classes.get(ClassRef(ref.module, f"{ref.qualname}.Meta"))
        if meta is not None:
            if _attribute(meta, "abstract") == Const(True) or _attribute(meta, "proxy") == Const(True):
                return None
            db_table = _const_str(_attribute(meta, "db_table"))
            if db_table:
                return db_table.lower()
        label = _const_str(_attribute(meta, "app_label")) if meta is not None else ""
        if not label:
            parts = self.project.path_of(ref).split("/")
            if parts[-1] == "models.py" and len(parts) > 1:
                label = parts[-2]
            elif len(parts) > 2 and parts[-2] == "models":
                label = parts[-3]
        return f"{label}_{ref.qualname.lower()}" if label else None

    def _django_model(self, ref: ClassRef, cls: ClassFacts) -> None:
        name = self.schema.models[ref]
        path = self.project.path_of(ref)
        table = self.schema.tables.setdefault(name, Table(name, Where(path, cls.span.line), "django"))
        fields: dict[str, str] = {"pk": "id"}
        has_pk = False
        for site in self._class_calls(ref):
            qualname = self._qualname(site.callee, ref.module)
            if not qualname.startswith("django.") or site.assigned_to is None:
                continue
            kind = qualname.rsplit(".", 1)[-1]
            attribute = site.assigned_to
            if kind == "ManyToManyField" or (not kind.endswith("Field") and kind not in ("ForeignKey",)):
                continue
            relation = kind in ("ForeignKey", "OneToOneField")
            column_name = _const_str(site.kwarg("db_column")) or (
                f"{attribute}_id" if relation else attribute
            )
            fields[attribute] = column_name
            primary = site.kwarg("primary_key") == Const(True)
            has_pk = has_pk or primary
            column = ColumnDef(
                name=column_name,
                primary_key=primary,
                unique=site.kwarg("unique") == Const(True) or kind == "OneToOneField",
                indexed=site.kwarg("db_index") == Const(True)
                or (relation and site.kwarg("db_index") != Const(False)),
                references=self._django_target(site, ref) if relation else "",
                line=site.span.line,
            )
            self._add_column(table, column, Where(path, site.span.line), model=True)
            if primary:
                fields["pk"] = column_name
            if kind in ("BooleanField", "NullBooleanField"):
                self.schema.boolean_columns.add((name, column_name))
        if not has_pk:
            self._add_column(
                table, ColumnDef("id", primary_key=True, line=cls.span.line), Where(path, cls.span.line)
            )
        self.schema.fields[ref] = fields
        meta_ref = ClassRef(ref.module, f"{ref.qualname}.Meta")
        meta = self.project.classes.get(meta_ref)
        if meta is None:
            return
        for together in ("unique_together", "index_together"):
            for group in _groups(_attribute(meta, together)):
                parts = tuple(fields.get(f, f) for f in group)
                table.add_index(
                    IndexDef(name, parts, unique=together == "unique_together"),
                    Where(path, meta.span.line),
                    True,
                )
        for site in meta.calls:
            kind = self._qualname(site.callee, ref.module).rsplit(".", 1)[-1]
            where = Where(path, site.span.line)
            names = [fields.get(f.lstrip("-"), f.lstrip("-")) for f in _strings(site.kwarg("fields"))]
            expressions = [_expression(a, site, meta.calls) for a in site.args]
            parts = tuple(names or [p for p, _ in expressions if p])
            if not parts:
                continue
            if kind == "UniqueConstraint":
                table.add_index(IndexDef(name, parts, unique=True), where, implicit=True)
            elif kind.endswith("Index"):
                method = kind.removesuffix("Index").lower() or "btree"
                opclasses = _strings(site.kwarg("opclasses")) or tuple(o for _, o in expressions)
                partial = site.has_kwarg("condition")
                table.add_index(
                    IndexDef(name, parts, _const_str(site.kwarg("name")), False, method, opclasses, partial),
                    where,
                )

    def _django_relations(self, ref: ClassRef) -> None:
        """Forward relations of a model and the reverse accessors they give their targets."""
        relations = self.schema.relations
        for site in self._class_calls(ref):
            qualname = self._qualname(site.callee, ref.module)
            kind = qualname.rsplit(".", 1)[-1]
            if site.assigned_to is None or kind not in RELATION_FIELDS:
                continue
            target = self._django_target_model(site, ref)
            many = kind in ("ManyToManyField", "GenericRelation")
            # django-auto-prefetch's keys load the relation for every row of the queryset at once.
            spec = self.project.knowledge.calls.get(qualname)
            relations.setdefault(ref, {})[site.assigned_to] = Relation(
                "many" if many else "one",
                target,
                kind == "GenericForeignKey",
                eager=spec is not None and spec.role == "peer-loading",
            )
            if target is None or kind.startswith("Generic"):
                continue
            related_name = _const_str(site.kwarg("related_name"))
            if related_name.endswith("+"):
                continue
            single = kind == "OneToOneField"
            accessor = related_name or (ref.qualname.lower() if single else f"{ref.qualname.lower()}_set")
            relations.setdefault(target, {})[accessor] = Relation("one" if single else "many", ref)

    def _django_target_model(self, site: CallSite, ref: ClassRef) -> ClassRef | None:
        target = site.args[0] if site.args else site.kwarg("to")
        if isinstance(target, Const) and isinstance(target.value, str):
            if target.value == "self":
                return ref
            name = target.value.rsplit(".", 1)[-1]
            found = [c for c in self.schema.models if c.qualname == name]
            return found[0] if len(found) == 1 else None
        resolved = self.project.resolve(target, ref.module) if target is not None else None
        return resolved if isinstance(resolved, ClassRef) and resolved in self.schema.models else None

    def _django_target(self, site: CallSite, ref: ClassRef) -> str:
        """The table a ForeignKey points at; a model outside the project (`"auth.User"`)
        by Django's default name for it, so the key itself is never lost."""
        target = site.args[0] if site.args else site.kwarg("to")
        if isinstance(target, Const) and isinstance(target.value, str):
            if target.value == "self":
                return self.schema.models.get(ref, "")
            model = target.value.rsplit(".", 1)[-1]
            found = [t for c, t in self.schema.models.items() if c.qualname == model]
            return found[0] if len(found) == 1 else target.value.replace(".", "_").lower()
        resolved = self.project.resolve(target, ref.module) if target is not None else None
        if isinstance(resolved, ClassRef) and resolved in self.schema.models:
            return self.schema.models[resolved]
        return name_of(target).lower() if target is not None else "?"


def build_schema(project: ProjectModel, globs: tuple[str, ...] = ()) -> Schema:
    builder = _Builder(project, globs)
    builder.sql_sources()
    builder.models()
    return builder.schema


# ---- reading values -------------------------------------------------------------------


def _attribute(cls: ClassFacts, name: str) -> Value | None:
    return next((v for k, v in cls.attributes if k == name), None)


def _const_str(value: Value | None) -> str:
    return value.value if isinstance(value, Const) and isinstance(value.value, str) else ""


def _strings(value: Value | None) -> tuple[str, ...]:
    if isinstance(value, Sequence):
        return tuple(s for s in (_const_str(v) for v in value.items) if s)
    text = _const_str(value)
    return (text,) if text else ()


def _groups(value: Value | None) -> list[tuple[str, ...]]:
    """`unique_together = [("a", "b")]` or the single-group form `("a", "b")`."""
    if not isinstance(value, Sequence):
        return []
    if all(isinstance(v, Const) for v in value.items):
        return [_strings(value)]
    return [_strings(v) for v in value.items if isinstance(v, Sequence)]


def _part(value: Value | None) -> str:
    """An index key part: "email", `User.email`, `email`, `Lower("email")`, `func.lower(...)`."""
    text = _const_str(value)
    if text:
        return text.lstrip("-")
    if isinstance(value, (Attr, Global)):
        return name_of(value)
    if isinstance(value, CallResult):
        function = value.callee
        name = name_of(function)
        if name in ("desc", "asc") and isinstance(function, Attr):
            return _part(function.base)
        inner = value.first_text or (_part(value.first_value) if value.first_value is not None else "")
        if name and inner:
            return f"{name.lower()}({inner})"
    return ""


def _expression(value: Value | None, site: CallSite, sites: tuple[CallSite, ...]) -> tuple[str, str]:
    """A Django index expression and its operator class: `Upper("name")`, or
    `OpClass(Upper("name"), name="gin_trgm_ops")` read from its own call site."""
    if isinstance(value, CallResult) and name_of(value.callee) == "OpClass":
        inner = next(
            (s for s in sites if s.callee == value.callee and s is not site and _inside(s.span, site.span)),
            None,
        )
        if inner is not None and inner.args:
            return _part(inner.args[0]), _const_str(inner.kwarg("name"))
    return _part(value), ""


def _ops(site: CallSite) -> tuple[str, ...]:
    """Operator classes of a SQLAlchemy / Alembic index (`postgresql_ops={"name": "gin_trgm_ops"}`)."""
    ops = site.kwarg("postgresql_ops")
    return tuple(sorted(ops.strings)) if isinstance(ops, DictLiteral) else ()


def _sqlalchemy_column(site: CallSite) -> ColumnDef | None:
    name = _const_str(site.args[0]) if site.args else ""
    name = name or site.assigned_to or ""
    if not name or "." in name:
        return None
    references = ""
    for arg in site.args:
        if isinstance(arg, CallResult) and name_of(arg.callee) == "ForeignKey" and arg.first_text:
            references = arg.first_text.split(".")[0]
    return ColumnDef(
        name=name,
        primary_key=site.kwarg("primary_key") == Const(True),
        unique=site.kwarg("unique") == Const(True),
        indexed=site.kwarg("index") == Const(True),
        references=references,
        line=site.span.line,
    )


def _inside(inner: Span, outer: Span) -> bool:
    return (inner.line, inner.column) > (outer.line, outer.column) and (inner.end_line, inner.end_column) <= (
        outer.end_line,
        outer.end_column,
    )


def _names_alembic(dotted: str) -> bool:
    return dotted == "alembic" or dotted.startswith("alembic.")


def _alembic(operation: str, site: CallSite, sites: tuple[CallSite, ...]) -> Iterator[SchemaChange]:
    """Schema effects of one `op.<operation>(...)` call of an Alembic migration."""
    args = site.args

    def arg(position: int, keyword: str) -> Value | None:
        return args[position] if len(args) > position else site.kwarg(keyword)

    line = site.span.line
    if operation in ("create_table", "add_column"):
        table = _const_str(arg(0, "table_name"))
        inner = [s for s in sites if s is not site and _inside(s.span, site.span)]
        columns = tuple(c for s in inner if name_of(s.callee) == "Column" and (c := _sqlalchemy_column(s)))
        yield SchemaChange(
            "create_table" if operation == "create_table" else "add_columns", table, line, columns=columns
        )
        for s in inner:
            kind = name_of(s.callee)
            if kind in ("PrimaryKeyConstraint", "UniqueConstraint"):
                yield SchemaChange(
                    "add_unique", table, s.span.line, key=tuple(_part(a) for a in s.args if _part(a))
                )
            elif kind == "ForeignKeyConstraint" and len(s.args) >= 2:
                remote = _strings(s.args[1])
                if remote:
                    yield SchemaChange(
                        "add_foreign_key",
                        table,
                        s.span.line,
                        key=_strings(s.args[0]),
                        references=remote[0].split(".")[0],
                    )
    elif operation == "create_index":
        table = _const_str(arg(1, "table_name"))
        listed = arg(2, "columns")
        parts = (
            tuple(p for p in (_part(v) for v in listed.items) if p) if isinstance(listed, Sequence) else ()
        )
        if table and parts:
            concurrently = site.kwarg("postgresql_concurrently") == Const(True)
            method = _const_str(site.kwarg("postgresql_using")) or "btree"
            index = IndexDef(
                table,
                parts,
                _const_str(arg(0, "index_name")),
                site.kwarg("unique") == Const(True),
                method,
                _ops(site),
                concurrently=concurrently,
                partial=site.has_kwarg("postgresql_where"),
            )
            yield SchemaChange("add_index", table, line, index=index)
    elif operation == "drop_index":
        yield SchemaChange("drop_index", line=line, name=_const_str(arg(0, "index_name")))
    elif operation == "drop_column":
        yield SchemaChange(
            "drop_column", _const_str(arg(0, "table_name")), line, key=_strings(arg(1, "column_name"))
        )
    elif operation == "drop_table":
        yield SchemaChange("drop_table", _const_str(arg(0, "table_name")), line)
    elif operation in ("create_unique_constraint", "create_primary_key"):
        yield SchemaChange(
            "add_unique", _const_str(arg(1, "table_name")), line, key=_strings(arg(2, "columns"))
        )
    elif operation == "create_foreign_key":
        yield SchemaChange(
            "add_foreign_key",
            _const_str(arg(1, "source_table")),
            line,
            key=_strings(arg(3, "local_cols")),
            references=_const_str(arg(2, "referent_table")),
        )
