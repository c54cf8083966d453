"""Phase 2: the ProjectModel links every file's facts into one picture.

It resolves the symbolic values of phase 1 across modules and against the API
knowledge, classifies call sites into operations, finds request handlers and
background tasks, and computes which functions run on the request path (and
through which chain of calls).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from scalelint.facts.model import (
    Attr,
    CallResult,
    CallSite,
    ClassFacts,
    Computed,
    Const,
    DictLiteral,
    FileFacts,
    FunctionFacts,
    Global,
    Imported,
    Instance,
    Item,
    Opaque,
    Sequence,
    Setting,
    Slice,
    SqlStatement,
    Value,
)
from scalelint.findings import Span
from scalelint.knowledge import ApiSpec, Knowledge
from scalelint.record import record
from scalelint.request_path_types import ChainStep, FuncRef, Handler, RequestPathSettings

if TYPE_CHECKING:
    from scalelint.query_shapes import Query
    from scalelint.request_path import RequestPath
    from scalelint.schema import Schema

MODULE_BODY = "<module>"
WRITE_SQL = {"insert", "update", "delete", "merge"}
# Statement objects built in Python (SQLAlchemy `select(...)`) are these kinds.
STATEMENT_KINDS = {"sql.select": "db.query", "sql.write": "db.write"}


# ---- what a value resolves to ------------------------------------------------


@record
class ExtName:
    """A name outside the project (a library or builtin), fully qualified."""

    qualname: str


@record
class ModuleRef:
    name: str


@record
class ClassRef:
    module: str
    qualname: str


@record
class ObjRef:
    """An instance of a project class."""

    cls: ClassRef


@record
class KindRef:
    """An object of a kind the API knowledge describes (`psycopg2.connection`)."""

    kind: str


@record
class MethodRef:
    kind: str
    name: str
    spec: ApiSpec


Ref = ExtName | ModuleRef | FuncRef | ClassRef | ObjRef | KindRef | MethodRef


_T = TypeVar("_T")
_K = TypeVar("_K")


class _Mark:
    """What the resolution memo says besides an answer (see `ProjectModel.resolve`)."""


# ---- what phase 2 derives ------------------------------------------------------


@record
class Operation:
    """A call site classified by the knowledge: `db.query`, `db.connect`, ..."""

    op: str
    site: CallSite
    function: FuncRef
    spec: ApiSpec | None
    sql: tuple[SqlStatement, ...]
    heuristic: bool = False
    api: str = ""  # what was called: `requests.get`, `redis.client.set`

    @property
    def round_trip(self) -> bool:
        """The call itself waits for the server; not a command queued on a Redis pipeline."""
        return self.spec is None or not self.spec.queued


@dataclass
class ProjectModel:
    """All facts of the analysis scope, linked."""

    files: dict[str, FileFacts]
    knowledge: Knowledge
    settings: RequestPathSettings = field(default_factory=RequestPathSettings)
    schema_globs: tuple[str, ...] = ()
    modules: dict[str, FileFacts] = field(default_factory=dict)
    functions: dict[FuncRef, FunctionFacts] = field(default_factory=dict)
    classes: dict[ClassRef, ClassFacts] = field(default_factory=dict)
    _members: dict[str, dict[str, object]] = field(default_factory=dict)
    # What a value means in a module, by module (so a later run can inherit whole modules).
    # A value being resolved has a `_Mark` in its module's memo: met again, it is a cycle.
    _memo: dict[str, dict[Value, Ref | _Mark | None]] = field(default_factory=dict)
    # The same value object asked again (most calls): found by identity, without hashing
    # its whole tree; the entry holds the value so its id cannot be reused.
    _by_identity: dict[str, dict[int, tuple[Value, Ref | None]]] = field(default_factory=dict)
    _active_keys: set[tuple[int, object]] = field(default_factory=set)  # see `_once`
    _cuts: int = 0  # cycles met so far (a resolution that adds to it met one)
    _class_specs: dict[ClassRef, tuple[ApiSpec, ...]] = field(default_factory=dict)
    _class_members: dict[tuple[ClassRef, str], Ref | None] = field(default_factory=dict)
    _class_methods: dict[ClassRef, dict[str, FuncRef]] = field(default_factory=dict)
    _reaches: dict[frozenset[str], dict[FuncRef, tuple[tuple[ChainStep, ...], Operation]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self._previous: ProjectModel | None = None
        self._stale: set[str] = set()
        self._per_module: dict[str, dict[str, tuple[FileFacts, Any]]] = {}
        self._misses: set[tuple[str, str]] = set()  # (module, name) looked for and not bound
        self._definitions: dict[str, dict[str, list[CallSite]]] = {}  # see `_module_definitions`
        self._class_callees: dict[ClassRef, tuple[FuncRef, ...]] = {}  # see `callees`
        self._index_modules()
        for facts in self.files.values():
            module = self._canonical.get(facts.path)
            if module is None:
                continue
            members: dict[str, object] = {}
            body = FunctionFacts(
                qualname=MODULE_BODY,
                span=Span(1, 1, 1, 1),
                is_async=False,
                class_name=None,
                decorators=(),
                params=(),
                calls=facts.module_calls,
            )
            self.functions[FuncRef(module, MODULE_BODY)] = body
            for fn in facts.functions:
                self.functions[FuncRef(module, fn.qualname)] = fn
            for cls in facts.classes:
                self.classes[ClassRef(module, cls.qualname)] = cls
            # One value per import, made once: resolution keys what it learns by the value
            # object, so a new object per lookup would make a new entry each time.
            members.update({f"import:{k}": Imported(v) for k, v in facts.imports})
            members.update({f"var:{k}": v for k, v in facts.module_vars})
            self._members[module] = members

    # ---- modules -------------------------------------------------------------

    def _index_modules(self) -> None:
        python = {p: f for p, f in self.files.items() if f.language == "python"}
        packages = {p.rsplit("/", 1)[0] for p in python if p.endswith("/__init__.py")}
        claims: dict[str, list[str]] = {}
        for path in python:
            parts = path[: -len(".py")].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names = {".".join(parts)}
            # The importable name starts below the highest folder that is a package.
            start = len(parts) - 1
            while start > 0 and "/".join(parts[:start]) in packages:
                start -= 1
            names.add(".".join(parts[start:]) if parts[start:] else ".".join(parts))
            for name in names:
                if name:
                    claims.setdefault(name, []).append(path)
        for name, paths in claims.items():
            # Two files claim a name (`app.views` and `examples/app/views.py`): the one
            # whose path spells the name wins; otherwise the name stays unresolved.
            exact = [p for p in paths if p[: -len(".py")].replace("/", ".").removesuffix(".__init__") == name]
            chosen = paths if len(paths) == 1 else exact
            if len(chosen) == 1:
                self.modules[name] = python[chosen[0]]
        self._canonical: dict[str, str] = {}
        for name, facts in self.modules.items():
            current = self._canonical.get(facts.path)
            if current is None or len(name) < len(current):
                self._canonical[facts.path] = name

    def path_of(self, ref: FuncRef | ClassRef) -> str:
        return self.modules[ref.module].path

    def module_of(self, path: str) -> str | None:
        """The importable name of a Python file of the project, if it has one."""
        return self._canonical.get(path)

    @cached_property
    def request_queries(self) -> list[Query]:
        """Request-path queries and the columns they look rows up by (see query_shapes.py),
        read once for the rules that share them."""
        from scalelint.query_shapes import request_queries

        return request_queries(self)

    @cached_property
    def schema(self) -> Schema:
        """Tables, columns, indexes and policies the project declares (see schema.py)."""
        from scalelint.schema import build_schema

        return build_schema(self, self.schema_globs)

    def absolute(self, dotted: str, module: str) -> str:
        level = len(dotted) - len(dotted.lstrip("."))
        if level == 0:
            return dotted
        facts = self.modules.get(module)
        is_package = facts is not None and facts.path.endswith("__init__.py")
        parts = module.split(".")
        base = parts if is_package else parts[:-1]
        base = base[: len(base) - (level - 1)] if level > 1 else base
        rest = dotted[level:]
        return ".".join([*base, rest]) if rest else ".".join(base)

    # ---- reuse between runs (the daemon) -------------------------------------------

    def inherit(self, previous: ProjectModel, changed: Iterable[str]) -> None:
        """Take over what `previous` (the model of the last run, in a long-lived process)
        worked out for the modules no changed file can affect: what their names resolve to,
        the operations and call edges of their functions; most of the time spent before the
        checks.

        What a function's calls resolve to depends only on the *outline* of the modules its
        module reaches through imports (their names, imports, module variables, returns,
        decorators, classes; see `_outline`). So the functions kept are those of unchanged
        modules that reach no module whose outline changed. Anything else that changed (the
        set of files, a non-Python file, the knowledge, the settings) keeps nothing.
        """
        changed = set(changed)
        same_inputs = (
            previous.knowledge is self.knowledge
            and previous.settings == self.settings
            and previous.schema_globs == self.schema_globs
            and previous.files.keys() == self.files.keys()
        )
        modules = {self._canonical.get(path) for path in changed}
        if not same_inputs or None in modules:
            return
        reshaped = set()
        for path in changed:
            module = self._canonical[path]
            old, new = previous.files[path], self.files[path]
            if _outline(old) == _outline(new) or _literals_rebound(old, new):
                continue
            added = _added_names(old, new)
            if added is not None and not any((module, name) in previous._misses for name in added):
                continue  # only new names, and no module looked for any of them
            reshaped.add(module)
        self._misses = set(previous._misses)  # what inherited results looked for
        self._previous = previous
        self._stale = stale = {m for m in modules if m is not None} | self._importers_of(reshaped)
        # The previous model is dropped after this run: its tables can be taken as they are.
        # Values are resolved in a module under whichever of its names the caller used
        # (`src.deps` for `deps`): a table is kept when the file that name stands for is.
        for module, memo in previous._memo.items():
            named = self.modules.get(module)
            canonical = self._canonical.get(named.path) if named is not None else None
            if canonical is not None and canonical not in stale:
                self._memo[module] = memo
                self._by_identity[module] = previous._by_identity[module]
        # The same member values too (imports become value objects per model): the tables
        # kept above find them by identity instead of gaining an entry for each new copy.
        for module, members in previous._members.items():
            if module not in stale and module in self._members:
                self._members[module] = members

    def _missed(self, module: str, name: str) -> None:
        """A name looked for in a module that does not bind it: a later edit that adds it
        changes what the looking module's names resolve to."""
        named = self.modules.get(module)
        self._misses.add((self._canonical[named.path] if named is not None else module, name))

    def per_module(self, name: str, path: str, compute: Callable[[], _T]) -> _T:
        """`compute()` for one file, when it reads that file's facts and what its names
        resolve to: a later run inherits it unless the file or a module it reaches changed."""
        table = self._per_module.setdefault(name, {})
        if path not in table:
            facts = self.files[path]
            previous = self._previous
            held = previous._per_module.get(name, {}).get(path) if previous is not None else None
            if held is not None and held[0] is facts and self._canonical.get(path) not in self._stale:
                table[path] = held
            else:
                table[path] = (facts, compute())
        return table[path][1]  # type: ignore[no-any-return]

    @property
    def inherits_from(self) -> ProjectModel | None:
        return self._previous

    def release_previous(self) -> ProjectModel | None:
        """Forget the model this one inherited from (once this one's run is over); it is
        returned for the caller to dispose of."""
        previous, self._previous = self._previous, None
        return previous

    def _inherited(self, name: str) -> Any:
        previous = self._previous
        return previous.__dict__.get(name) if previous is not None else None

    def _importers_of(self, modules: set[str]) -> set[str]:
        """The modules that can reach any of `modules` by name, transitively: through
        their imports (under any name a file has), and a package through the modules below
        it (`helpers.f()` in `pkg/__init__.py` finds `pkg.helpers` without an import)."""
        if not modules:
            return set()
        below: dict[str, set[str]] = {}  # a dotted name -> the modules at or under it
        for name, facts in self.modules.items():
            canonical = self._canonical[facts.path]
            parts = name.split(".")
            for cut in range(1, len(parts) + 1):
                below.setdefault(".".join(parts[:cut]), set()).add(canonical)
        importers: dict[str, set[str]] = {}

        def reaches(module: str, dotted: str) -> None:
            parts = dotted.split(".")
            reached = set(below.get(dotted, ()))
            reached.update(
                self._canonical[self.modules[prefix].path]
                for cut in range(1, len(parts))
                if (prefix := ".".join(parts[:cut])) in self.modules
            )
            for other in reached:
                importers.setdefault(other, set()).add(module)

        for name, facts in self.modules.items():
            module = self._canonical[facts.path]
            reaches(module, name)  # its own submodules, under each of its names
            for _, target in (*facts.imports, *facts.earlier_imports):
                reaches(module, self.absolute(target, name))
        found = set(modules)
        queue = list(modules)
        while queue:
            for importer in importers.get(queue.pop(), ()):
                if importer not in found:
                    found.add(importer)
                    queue.append(importer)
        return found

    # ---- resolution ------------------------------------------------------------

    def resolve(self, value: Value | None, module: str) -> Ref | None:
        """What a symbolic value of `module` is, or None when unknown."""
        by_identity = self._by_identity.get(module)
        if by_identity is not None:
            seen = by_identity.get(id(value))
            if seen is not None and seen[0] is value:
                return seen[1]
        if value is None or isinstance(value, (Const, DictLiteral, Opaque, Sequence, Computed)):
            return None
        if by_identity is None:
            by_identity = self._by_identity[module] = {}
            self._memo[module] = {}
        memo = self._memo[module]
        # One lookup finds what is known of the value or marks it as under way (hashing a
        # value hashes everything it holds).
        under_way = _Mark()
        known = memo.setdefault(value, under_way)
        if known is not under_way:
            if not isinstance(known, _Mark):
                by_identity[id(value)] = (value, known)
                return known
            # A cycle: cut here. What was being resolved then depends on where the walk
            # started, so it is not kept (here, or for a later run): asked again, it is
            # worked out again, and every run gets the same answer for the same question.
            self._cuts += 1
            return None
        cuts = self._cuts
        try:
            result = self._resolve(value, module)
        except BaseException:
            del memo[value]
            raise
        if self._cuts == cuts:
            memo[value] = result
            by_identity[id(value)] = (value, result)
        else:
            del memo[value]
        return result

    def _resolve(self, value: Value, module: str) -> Ref | None:
        if isinstance(value, Imported):
            return self.resolve_dotted(self.absolute(value.dotted, module))
        if isinstance(value, Global):
            found = self._member(module, value.name)
            return found if found is not None else ExtName(f"builtins.{value.name}")
        if isinstance(value, Attr):
            base = self.resolve(value.base, module)
            found = self._attribute(base, value.attr)
            if found is None and value.attr in self.knowledge.attributes and _names_a_class(value.base, base):
                return KindRef(self.knowledge.attributes[value.attr])
            return found
        if isinstance(value, CallResult):
            return self._call(self.resolve(value.callee, module))
        if isinstance(value, Instance):
            return self._instance(self.resolve(value.of, module))
        if isinstance(value, Slice):
            # `qs[:20]` is still a queryset (with a LIMIT); a sliced list is still a list.
            return self.resolve(value.of, module)
        if isinstance(value, Item):
            base = self.resolve(value.of, module)
            if isinstance(base, (ClassRef, ExtName)) and isinstance(value.of, (Global, Imported, Attr)):
                return base  # `BaseRepo[int]`, `Generic[T]`: a subscripted class is the class
            if isinstance(base, KindRef):
                # `db["users"]` when the kind says what a subscript gives; else an element.
                spec = self.knowledge.methods.get(base.kind, {}).get("__getitem__")
                spec = spec or self.knowledge.method(base.kind, "__iter__")
                if spec is not None and spec.returns:
                    return KindRef(spec.returns)
        return None

    def resolve_dotted(self, dotted: str) -> Ref | None:
        if dotted in self.knowledge.calls:
            return ExtName(dotted)
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in self.modules:
                # Facts are keyed by one canonical name per file, whichever name the import used.
                ref: Ref | None = ModuleRef(self._canonical[self.modules[prefix].path])
                for part in parts[cut:]:
                    ref = self._attribute(ref, part)
                return ref
        return ExtName(dotted)

    def _member(self, module: str, name: str) -> Ref | None:
        func = FuncRef(module, name)
        if func in self.functions:
            return func
        cls = ClassRef(module, name)
        if cls in self.classes:
            return cls
        members = self._members.get(module, {})
        if f"var:{name}" in members:
            value = members[f"var:{name}"]
            return self.resolve(value, module)  # type: ignore[arg-type]
        if f"import:{name}" in members:
            return self.resolve(members[f"import:{name}"], module)  # type: ignore[arg-type]
        self._missed(module, name)
        submodule = f"{module}.{name}"
        if submodule in self.modules:
            return ModuleRef(self._canonical[self.modules[submodule].path])
        return None

    def _class_member(self, cls: ClassRef, name: str) -> Ref | None:
        """A class's member `name`: its own method or attribute, else its bases' (worked
        out once per class and name; a base that leads back to a class being searched is
        a cycle, cut as in `resolve`)."""
        return self._once(self._class_members, (cls, name), lambda: self._find_class_member(cls, name), None)

    def _find_class_member(self, cls: ClassRef, name: str) -> Ref | None:
        facts = self.classes[cls]
        if name in facts.methods:
            return FuncRef(cls.module, f"{cls.qualname}.{name}")
        for attr_name, value in facts.attributes:
            if attr_name == name:
                return self.resolve(value, cls.module)
        for base in facts.bases:
            ref = self.resolve(base, cls.module)
            if isinstance(ref, ClassRef) and ref != cls:  # `class Model(Model)` shadowing an import
                found = self._class_member(ref, name)
                if found is not None:
                    return found
        return None

    def _attribute(self, base: Ref | None, name: str) -> Ref | None:
        found: Ref | None = None
        if isinstance(base, ExtName):
            return self.resolve_dotted(f"{base.qualname}.{name}")
        if isinstance(base, ModuleRef):
            return self._member(base.name, name)
        if isinstance(base, ClassRef):
            found = self._class_member(base, name)
        elif isinstance(base, ObjRef):
            found = self._class_member(base.cls, name)
        elif isinstance(base, KindRef):
            spec = self.knowledge.method(base.kind, name)
            if spec is not None and spec.property is not None:
                return KindRef(spec.property)
            if spec is not None:
                return MethodRef(base.kind, name, spec)
        elif isinstance(base, FuncRef):
            # A decorated function is what its decorator makes of it: `@shared_task`
            # gives `send_report.delay(...)`.
            # aiocache's `fn.cache.clear()`: an attribute of the decorated object.
            kind = self._decorated_kind(base)
            if kind is not None:
                return self._attribute(KindRef(kind), name)
        if found is None and name in self.knowledge.attributes and isinstance(base, (ClassRef, ExtName)):
            return KindRef(self.knowledge.attributes[name])  # `Invoice.objects`
        return found

    def _decorated_kind(self, function: FuncRef) -> str | None:
        fn = self.functions.get(function)
        for decorator in fn.decorators if fn else ():
            spec = self.spec_of(decorator.callee, function.module)
            if spec is not None and spec.returns:
                return spec.returns
        return None

    def _call(self, callee: Ref | None) -> Ref | None:
        if isinstance(callee, ExtName):
            spec = self.knowledge.calls.get(callee.qualname)
            return KindRef(spec.returns) if spec is not None and spec.returns else None
        if isinstance(callee, MethodRef):
            returns = callee.spec.returns
            if returns is None:
                return None
            return KindRef(callee.kind if returns == "self" else returns)
        if isinstance(callee, ClassRef):
            return ObjRef(callee)
        if isinstance(callee, FuncRef):
            fn = self.functions.get(callee)
            for value in fn.returns if fn else ():
                ref = self.resolve(value, callee.module)
                if ref is not None:
                    return ref
            return None
        if isinstance(callee, KindRef):
            spec = self.knowledge.method(callee.kind, "__call__")
            return KindRef(spec.returns) if spec is not None and spec.returns else None
        return None

    def _instance(self, of: Ref | None) -> Ref | None:
        if isinstance(of, ExtName):
            spec = self.knowledge.calls.get(of.qualname)
            kind = spec and (spec.instance or spec.returns)
            return KindRef(kind) if kind else None
        if isinstance(of, ClassRef):
            return ObjRef(of)
        return None

    def spec_of(self, callee: Value, module: str) -> ApiSpec | None:
        """The knowledge entry for calling `callee`, if any."""
        ref = self.resolve(callee, module)
        if isinstance(ref, ExtName):
            return self.knowledge.calls.get(ref.qualname)
        if isinstance(ref, MethodRef):
            return ref.spec
        return None

    # ---- operations and the call graph ------------------------------------------

    def classify(self, site: CallSite, function: FuncRef) -> Operation | None:
        ref = self.resolve(site.callee, function.module)
        spec: ApiSpec | None = None
        api = ""
        if isinstance(ref, ExtName):
            spec = self.knowledge.calls.get(ref.qualname)
            api = ref.qualname
        elif isinstance(ref, MethodRef):
            spec = ref.spec
            api = f"{ref.kind}.{ref.name}"
        elif isinstance(ref, KindRef):
            # Calling an object: `classifier(text)` on a transformers pipeline.
            spec = self.knowledge.method(ref.kind, "__call__")
            api = f"{ref.kind}.__call__"
        if spec is not None and spec.op:
            statements = site.sql or self._sql_file_argument(site, function, spec.sql_arg)
            op = _refine(spec.op, statements)
            if op == "db.execute" and isinstance(spec.sql_arg, int) and len(site.args) > spec.sql_arg:
                kind = self._kind_of(site.args[spec.sql_arg], function.module)
                op = STATEMENT_KINDS.get(kind or "", op)
            return Operation(op, site, function, spec, statements, api=api)
        evaluated = self._evaluated(site, ref, function)
        if evaluated is not None:
            return evaluated
        if ref is None and isinstance(site.callee, Attr) and site.callee.attr in self.knowledge.sql_methods:
            statements = site.sql or self._sql_file_argument(site, function, 0)
            if statements:
                return Operation(
                    _refine("db.execute", statements), site, function, None, statements, heuristic=True
                )
        return None

    def _sql_file_argument(
        self, site: CallSite, function: FuncRef, position: int | str | None
    ) -> tuple[SqlStatement, ...]:
        """SQL read from a project file: `cur.execute(Path("queries/list.sql").read_text())`,
        `open("q.sql").read()`, or a module name holding one; the literal path is tried
        from the calling file's folder and from the project root."""
        if not isinstance(position, int) or len(site.args) <= position:
            return ()
        value = site.args[position]
        if isinstance(value, Global):  # `DEALS_SQL = Path(...).read_text()` at module level
            held = self._members.get(function.module, {}).get(f"var:{value.name}")
            value = held if isinstance(held, CallResult) else None
        if not (isinstance(value, CallResult) and isinstance(value.callee, Attr)):
            return ()
        opener = value.callee.base
        if value.callee.attr not in ("read_text", "read") or not isinstance(opener, CallResult):
            return ()
        name = opener.first_text or ""
        if not name.endswith(".sql"):
            return ()
        folder = self.path_of(function).rpartition("/")[0]
        for candidate in (f"{folder}/{name}" if folder else name, name):
            facts = self.files.get(posixpath.normpath(candidate))
            if facts is not None and facts.language == "sql":
                return facts.sql
        return ()

    def _evaluated(self, site: CallSite, ref: Ref | None, function: FuncRef) -> Operation | None:
        """`list(qs)`, `len(qs)`, `Serializer(qs, many=True)`: a lazy query run by the
        callable it is handed to, as if iterated there."""
        if not site.args:
            return None
        if isinstance(ref, ExtName):
            if ref.qualname not in self.knowledge.evaluators:
                return None
        elif isinstance(ref, ClassRef):
            spec = self.class_spec(ref, frozenset({"called-class"}))
            if spec is None or spec.framework != "drf" or site.kwarg("many") != Const(True):
                return None
        else:
            return None
        kind = self._kind_of(site.args[0], function.module)
        spec = self.knowledge.method(kind, "__iter__") if kind else None
        if kind is None or spec is None or not spec.op:
            return None
        return Operation(spec.op, site, function, spec, (), api=f"{kind}.__iter__")

    def _kind_of(self, value: Value | None, module: str) -> str | None:
        ref = self.resolve(value, module)
        return ref.kind if isinstance(ref, KindRef) else None

    @cached_property
    def operations(self) -> dict[FuncRef, tuple[Operation, ...]]:
        """Every classified call site, by the function it is in."""

        def classified(ref: FuncRef, fn: FunctionFacts) -> tuple[Operation, ...]:
            return tuple(op for site in fn.calls if (op := self.classify(site, ref)) is not None)

        return self._by_function("operations", classified)

    @cached_property
    def known_calls(self) -> dict[FuncRef, tuple[tuple[CallSite, ApiSpec], ...]]:
        """For each function, its call sites the knowledge has an entry for (`spec_of`): what
        passes over every call looking for one role (routes, mounts) walk instead."""

        def known(ref: FuncRef, fn: FunctionFacts) -> tuple[tuple[CallSite, ApiSpec], ...]:
            module = ref.module
            return tuple(
                (site, spec) for site in fn.calls if (spec := self.spec_of(site.callee, module)) is not None
            )

        return self._by_function("known_calls", known)

    def _by_function(
        self, name: str, compute: Callable[[FuncRef, FunctionFacts], tuple[_T, ...]]
    ) -> dict[FuncRef, tuple[_T, ...]]:
        """`compute` for every function that gives something, in function order; a model that
        inherits takes the previous model's table `name` for functions of unchanged modules."""
        kept = self._inherited(name)
        result: dict[FuncRef, tuple[_T, ...]] = {}
        for ref, fn in self.functions.items():
            if kept is not None and ref.module not in self._stale:
                found = kept.get(ref, ())
            else:
                found = compute(ref, fn)
            if found:
                result[ref] = found
        return result

    def all_operations(self) -> Iterator[Operation]:
        for ops in self.operations.values():
            yield from ops

    @cached_property
    def call_edges(self) -> dict[FuncRef, tuple[tuple[CallSite, FuncRef], ...]]:
        """For each function, the project functions it runs and where.

        Besides direct calls: instantiating a class runs `__init__` and the methods a
        framework calls on it (a DRF serializer's `get_*`); a FastAPI `Depends(provider)`
        in a parameter runs the provider on every call.
        """

        functions, resolve = self.functions, self.resolve

        def runs(ref: FuncRef, fn: FunctionFacts) -> tuple[tuple[CallSite, FuncRef], ...]:
            found: list[tuple[CallSite, FuncRef]] = []
            for site in fn.calls:
                # `callees`, spelled out for the common cases (most calls reach no project code).
                target = resolve(site.callee, ref.module)
                if isinstance(target, FuncRef):
                    if target in functions:
                        found.append((site, target))
                elif isinstance(target, ClassRef):
                    found.extend((site, callee) for callee in self.callees(target))
            for site, module in self._dependency_calls(ref, fn):
                spec = self.spec_of(site.callee, module)
                if spec is not None and spec.role == "dependency" and site.args:
                    provider = self.resolve(site.args[0], module)
                    found.extend((site, target) for target in self.callees(provider))
            return tuple(found)

        return self._by_function("call_edges", runs)

    @cached_property
    def callers(self) -> dict[FuncRef, frozenset[FuncRef]]:
        """For each function, the functions that call it (the call graph reversed)."""
        found: dict[FuncRef, set[FuncRef]] = {}
        for caller, edges in self.call_edges.items():
            for _, target in edges:
                found.setdefault(target, set()).add(caller)
        return {target: frozenset(callers) for target, callers in found.items()}

    def reachable_from(self, start: FuncRef, skip: frozenset[FuncRef] = frozenset()) -> list[FuncRef]:
        """`start` and every function it calls, transitively, breadth-first; functions in
        `skip` (e.g. memoized ones) are not entered."""
        order = [start]
        seen = {start}
        for current in order:  # grows while iterating
            for _, target in self.call_edges.get(current, ()):
                if target not in seen and target not in skip:
                    seen.add(target)
                    order.append(target)
        return order

    def _dependency_calls(self, ref: FuncRef, fn: FunctionFacts) -> Iterator[tuple[CallSite, str]]:
        """Calls made when `fn` is invoked by a framework: in its parameters and decorators,
        and in module-level aliases its annotations name (`conn: Conn`)."""
        for site in fn.param_calls:
            yield site, ref.module
        for param in fn.params:
            alias = param.annotation
            if isinstance(alias, (Global, Imported)):
                found = self._definition(alias, ref.module)
                if found is not None:
                    module, name = found
                    defining = self._module_definitions(module).get(name, ())
                    if not defining:
                        self._missed(module, name)
                    for site in defining:
                        yield site, module

    def step_path(self, step: ChainStep) -> str:
        """The file of a chain step's call: the caller's, or for a `Depends(provider)` in an
        annotation alias (`conn: Conn`), the module that defines the alias."""
        fn = self.functions.get(step.caller)
        if fn is not None and any(site is step.site for site in (*fn.calls, *fn.param_calls)):
            return self.path_of(step.caller)
        by_identity, by_value = self._defining_sites
        # A call edge kept from the last run (the daemon) holds the site of the file as it
        # was then: an equal site of the file as it is (kept only while the site is equal).
        path = by_identity.get(id(step.site)) or by_value.get(step.site)
        return path or self.path_of(step.caller)

    @cached_property
    def _defining_sites(self) -> tuple[dict[int, str], dict[CallSite, str]]:
        """The files of module-level sites that define a name, by site object and by value."""
        by_identity: dict[int, str] = {}
        by_value: dict[CallSite, str] = {}
        for facts in self.files.values():
            for site in facts.module_calls:
                if site.defines:
                    by_identity[id(site)] = facts.path
                    by_value.setdefault(site, facts.path)
        return by_identity, by_value

    def _module_definitions(self, module: str) -> dict[str, list[CallSite]]:
        """A module's module-level calls that define a name (`Conn = Annotated[..., Depends(f)]`),
        by that name; read once per module and run."""
        table = self._definitions.get(module)
        if table is None:
            table = self._definitions[module] = {}
            for site in self.modules[module].module_calls:
                if site.defines:
                    table.setdefault(site.defines, []).append(site)
        return table

    def _definition(self, alias: Global | Imported, module: str) -> tuple[str, str] | None:
        if isinstance(alias, Global):
            return (module, alias.name)
        owner, _, name = self.absolute(alias.dotted, module).rpartition(".")
        facts = self.modules.get(owner)
        # By the module's canonical name, whichever name the import used (`src.deps`).
        return (self._canonical[facts.path], name) if facts is not None else None

    def callees(self, target: Ref | None) -> tuple[FuncRef, ...]:
        """The project functions calling `target` runs: a function, or for a class its
        `__init__` and the methods a framework calls on it (once per class and run)."""
        if isinstance(target, FuncRef):
            return (target,) if target in self.functions else ()
        if not isinstance(target, ClassRef):
            return ()
        known = self._class_callees.get(target)
        if known is not None:
            return known
        cuts = self._cuts
        methods = self.class_methods(target)
        names = ["__init__"]
        spec = self.class_spec(target, frozenset({"called-class"}))
        if spec is not None:
            names += [n for n in methods if any(fnmatch(n, p) for p in spec.handler_methods)]
        functions = self.functions
        found = tuple(methods[n] for n in dict.fromkeys(names) if n in methods and methods[n] in functions)
        if self._cuts == cuts:  # met no cycle of bases (see `_once`)
            self._class_callees[target] = found
        return found

    @cached_property
    def imported_roots(self) -> frozenset[str]:
        """Top-level packages the project imports (`celery`, `rq`, `supabase`)."""
        return frozenset(
            target.split(".")[0]
            for facts in self.files.values()
            for _, target in facts.imports
            if target[:1] != "."
        )

    # ---- deployment: worker counts, server limits, poolers ------------------------------

    @cached_property
    def deployment(self) -> dict[str, tuple[tuple[str, Setting], ...]]:
        """Settings from config files by normalised key, with the file they are in.

        A gunicorn config module's `workers = N` counts as `app.workers`.
        """
        found: dict[str, list[tuple[str, Setting]]] = {}
        for facts in self.files.values():
            for setting in facts.settings:
                found.setdefault(setting.key, []).append((facts.path, setting))
            if facts.language == "python" and facts.path.rsplit("/", 1)[-1].startswith("gunicorn"):
                for name, value in facts.module_vars:
                    if name == "workers" and isinstance(value, Const) and isinstance(value.value, int):
                        found.setdefault("app.workers", []).append(
                            (facts.path, Setting("app.workers", str(value.value), 1))
                        )
        return {key: tuple(values) for key, values in found.items()}

    def deployment_number(self, key: str) -> tuple[int, str, int] | None:
        """The largest numeric value of a setting, with its file and line."""
        numbers = [
            (int(setting.value), path, setting.line)
            for path, setting in self.deployment.get(key, ())
            if re.fullmatch(r"[0-9]+", setting.value)
        ]
        return max(numbers) if numbers else None

    @cached_property
    def transaction_pooler(self) -> str | None:
        """Why the app talks to a transaction-mode pooler, or None when nothing says so."""
        for path, setting in self.deployment.get("pgbouncer.pool_mode", ()):
            if setting.value.lower() == "transaction":
                return f"pool_mode = transaction in {path}:{setting.line}"
        for facts in self.files.values():
            if facts.pooler is not None:
                return facts.pooler
        return None

    # ---- what a call may do, transitively -------------------------------------------

    def reaches(self, kinds: frozenset[str]) -> dict[FuncRef, tuple[tuple[ChainStep, ...], Operation]]:
        """For each function that may perform an operation of these kinds (itself or through
        the functions it calls), the shortest chain of calls to one such operation.

        A breadth-first walk back from the functions that perform one, over the call graph
        reversed: each function is reached once, however recursive the code. Among equally
        short chains, a function's first call (in its own order) is taken; functions whose
        result is memoized are not entered.
        """
        if kinds in self._reaches:
            return self._reaches[kinds]
        memoized = self.routing.memoized
        found: dict[FuncRef, tuple[tuple[ChainStep, ...], Operation]] = {}
        for function, ops in self.operations.items():
            op = next((op for op in ops if op.op in kinds and op.round_trip), None)
            if op is not None:
                found[function] = ((), op)
        frontier = sorted(found, key=self._function_order.__getitem__)
        while frontier:
            callers = {
                caller
                for target in frontier
                if target not in memoized
                for caller in self.callers.get(target, ())
                if caller not in found
            }
            frontier = sorted(callers, key=self._function_order.__getitem__)
            reached_now = set(frontier)
            for caller in frontier:
                # The first call, in the caller's order, to a function one step nearer.
                site, target = next(
                    (site, target)
                    for site, target in self.call_edges[caller]
                    if target in found and target not in reached_now and target not in memoized
                )
                below = found[target]
                found[caller] = ((ChainStep(caller, site), *below[0]), below[1])
        self._reaches[kinds] = found
        return found

    @cached_property
    def _function_order(self) -> dict[FuncRef, int]:
        return {function: index for index, function in enumerate(self.functions)}

    # ---- the request path (computed in request_path.py) ----------------------------

    @cached_property
    def routing(self) -> RequestPath:
        """Handlers, background code, and what runs per request."""
        from scalelint.request_path import RequestPath

        return RequestPath(self, self.settings)

    @property
    def handlers(self) -> dict[FuncRef, Handler]:
        return self.routing.handlers

    @property
    def request_path(self) -> dict[FuncRef, tuple[Handler, tuple[ChainStep, ...]]]:
        return self.routing.reached

    def class_spec(self, cls: ClassRef, roles: frozenset[str]) -> ApiSpec | None:
        """The knowledge entry of the first base (transitively) whose role is in `roles`."""
        return next((spec for spec in self._base_specs(cls) if spec.role in roles), None)

    def _base_specs(self, cls: ClassRef) -> tuple[ApiSpec, ...]:
        """The knowledge entries of a class's bases, transitively, depth first in the order
        the bases are written: worked out once per class for every `class_spec` asked."""
        return self._once(self._class_specs, cls, lambda: self._find_base_specs(cls), ())

    def _find_base_specs(self, cls: ClassRef) -> tuple[ApiSpec, ...]:
        found: list[ApiSpec] = []
        for base in self.classes[cls].bases:
            ref = self.resolve(base, cls.module)
            if isinstance(ref, ExtName):
                spec = self.knowledge.calls.get(ref.qualname)
                if spec is not None:
                    found.append(spec)
            elif isinstance(ref, ClassRef):
                found.extend(self._base_specs(ref))
        return tuple(found)

    def class_methods(self, cls: ClassRef) -> dict[str, FuncRef]:
        """Every method of a project class, inherited ones from project bases included."""
        return self._once(self._class_methods, cls, lambda: self._find_class_methods(cls), {})

    def _find_class_methods(self, cls: ClassRef) -> dict[str, FuncRef]:
        found: dict[str, FuncRef] = {}
        for base in reversed(self.classes[cls].bases):
            ref = self.resolve(base, cls.module)
            if isinstance(ref, ClassRef):
                found.update(self.class_methods(ref))
        facts = self.classes[cls]
        found.update({name: FuncRef(cls.module, f"{cls.qualname}.{name}") for name in facts.methods})
        return found

    def _once(self, table: dict[_K, _T], key: _K, compute: Callable[[], _T], on_cycle: _T) -> _T:
        """`compute()` for `key`, kept in `table` unless it met a cycle (as in `resolve`): a
        class whose bases lead back to it gets `on_cycle` there, and the answer is not kept."""
        if key in table:
            return table[key]
        active = (id(table), key)
        if active in self._active_keys:
            self._cuts += 1
            return on_cycle
        self._active_keys.add(active)
        cuts = self._cuts
        try:
            value = compute()
        finally:
            self._active_keys.discard(active)
        if self._cuts == cuts:
            table[key] = value
        return value


CLASS_NAME = re.compile(r"(^|_)(model|cls|class|klass)$", re.I)


def _outline(facts: FileFacts) -> tuple[object, ...]:
    """What resolving a name in another module can read of this file; no line numbers,
    so an edit that only moves code leaves the outline as it was."""
    return tuple(tuple(part) for part in _outline_parts(facts))


MODULE_VARS_PART = 1  # the place of module variables in `_outline_parts`


def _outline_parts(facts: FileFacts) -> tuple[list[tuple[str, object]], ...]:
    """The outline as (name, element) pairs: imports, module variables, functions, classes,
    and module-level sites that define a name (whole, line and text included: call edges
    of other modules hold these, e.g. the `Depends(provider)` of an annotation alias)."""
    return (
        [(local, (local, target)) for local, target in facts.imports],
        [(name, (name, value)) for name, value in facts.module_vars],
        [(fn.qualname, (fn.returns, tuple(d.callee for d in fn.decorators))) for fn in facts.functions],
        [(c.qualname, (c.bases, c.attributes, c.methods)) for c in facts.classes],
        [(s.defines, s) for s in facts.module_calls if s.defines],
    )


def _literals_rebound(old: FileFacts, new: FileFacts) -> bool:
    """Whether the edit only gave module variables other literal values (`PAGE_SIZE = 50`
    to `100`): a literal resolves to nothing, so what other modules' names resolve to,
    and what their functions call, cannot depend on its value (checks, which may read
    it, run anew every time)."""
    old_parts, new_parts = _outline_parts(old), _outline_parts(new)
    others_same = all(
        before == after
        for index, (before, after) in enumerate(zip(old_parts, new_parts, strict=True))
        if index != MODULE_VARS_PART
    )
    if not others_same or [n for n, _ in old.module_vars] != [n for n, _ in new.module_vars]:
        return False
    return all(
        was == now or (isinstance(was, Const) and isinstance(now, Const))
        for (_, was), (_, now) in zip(old.module_vars, new.module_vars, strict=True)
    )


def _added_names(old: FileFacts, new: FileFacts) -> set[str] | None:
    """The names an edit added to a module's outline, when adding them is all it did to
    it (every old element still there, no old name bound anew); otherwise None."""
    old_parts, new_parts = _outline_parts(old), _outline_parts(new)
    old_names = {name for part in old_parts for name, _ in part}
    added: set[str] = set()
    for old_part, new_part in zip(old_parts, new_parts, strict=True):
        before = set(old_part)
        if not before <= set(new_part):
            return None
        added.update(name for name, element in new_part if (name, element) not in before)
    return None if added & old_names else added


def _names_a_class(value: Value, ref: Ref | None) -> bool:
    """Evidence that `value` is a class (`Invoice.objects`, `self.model.objects`), not any
    object that happens to have an attribute of a known name (`condition.objects`)."""
    if isinstance(ref, (ClassRef, ExtName)):
        return True
    if isinstance(value, Global):
        name = value.name
    elif isinstance(value, Imported):
        name = value.dotted.rsplit(".", 1)[-1]
    elif isinstance(value, Opaque):
        name = value.text.removesuffix(" (computed)")
    elif isinstance(value, Attr):
        name = value.attr
    else:
        return False
    return name[:1].isupper() or bool(CLASS_NAME.search(name))


@record
class Link:
    """One step of a method chain: `.filter(pk=...)`, `[:20]`."""

    name: str
    keywords: tuple[str, ...] = ()
    args: int = 0
    first_text: str | None = None
    literal: bool = False
    first_value: Value | None = None


def method_chain(value: Value | None) -> list[Link]:
    """The calls and slices that built a value, innermost first:
    `session.query(User).filter(...).limit(10)` -> query, filter, limit."""
    links: list[Link] = []
    while value is not None:
        if isinstance(value, CallResult):
            if isinstance(value.callee, Attr):
                links.append(
                    Link(
                        value.callee.attr,
                        value.keywords,
                        value.args,
                        value.first_text,
                        value.literal,
                        value.first_value,
                    )
                )
                value = value.callee.base
                continue
            call = Link(name_of(value.callee), value.keywords, value.args, value.first_text, value.literal)
            links.append(call)
            if isinstance(value.callee, Imported):  # `request.args.get`, folded in phase 1
                links.extend(Link(part) for part in reversed(value.callee.dotted.split(".")[1:-1]))
            value = None
        elif isinstance(value, Slice):
            links.append(Link("[:]" if value.upper is not None else "[a:]"))
            value = value.of
        elif isinstance(value, Item):
            links.append(Link("[]"))
            value = value.of
        elif isinstance(value, Attr):
            links.append(Link(value.attr))
            value = value.base
        elif isinstance(value, Imported):
            # `request.args` from flask was folded into one dotted name in phase 1.
            links.extend(Link(part) for part in reversed(value.dotted.split(".")[1:]))
            value = None
        else:
            value = None
    links.reverse()
    return links


def name_of(value: Value) -> str:
    """The last name of a callee or attribute: `Product` of `models.Product`, `add` of `db.add`."""
    if isinstance(value, Imported):
        return value.dotted.rsplit(".", 1)[-1]
    if isinstance(value, Global):
        return value.name
    if isinstance(value, Attr):
        return value.attr
    return ""


def _refine(op: str, statements: tuple[SqlStatement, ...]) -> str:
    """`db.execute` runs whatever SQL it is given: a query, a write or DDL, or unknown."""
    if op != "db.execute" or not statements:
        return op
    kinds = {s.kind for s in statements}
    if kinds & WRITE_SQL:
        return "db.write"
    if kinds == {"ddl"}:
        return "db.ddl"
    return "db.query"
