"""Phase 1 for Python: ONE libcst traversal per file into FileFacts.

No libcst metadata providers: names are resolved with an import-alias table built
in the same pass, loops with a stack kept by the visitor, and positions only for
the nodes that become facts (see positions.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeGuard, TypeVar

import libcst as cst

from scalelint.facts.deploy import pooler_evidence
from scalelint.facts.formatted import FormattedText
from scalelint.facts.loops import (
    changed_names,
    dict_keys,
    fetched_rows,
    fills_once,
    literal_guard,
    mapped_call,
    read_names,
    retries_or_chunks,
    started_coroutine,
    started_function,
)
from scalelint.facts.model import (
    Attr,
    CallResult,
    CallSite,
    ClassFacts,
    Compare,
    Computed,
    Const,
    Decorator,
    DictLiteral,
    FileFacts,
    FunctionFacts,
    Global,
    Imported,
    Instance,
    Item,
    ItemRead,
    Loop,
    Opaque,
    Param,
    ParseError,
    Sequence,
    Slice,
    SqlStatement,
    Value,
)
from scalelint.facts.positions import AstPositions, MetadataPositions, PositionMismatch
from scalelint.facts.sql_text import DEFAULT_DIALECT, looks_like_sql
from scalelint.facts.suppressions import python_suppressions
from scalelint.facts.walk import walk
from scalelint.findings import Span

_V = TypeVar("_V", Imported, Global, Attr, CallResult)  # the values `_shared` makes one of

# A loop over at most this many literal items, or range(k) with k at most this, runs
# a fixed, small number of times: a retry loop, not a per-row loop.
SMALL_LOOP = 10
HOLE = "__scalelint_hole__"
FORMAT_FIELD = re.compile(r"\{[^{}]*\}")  # a replacement field of a `.format` template
CONTEXT_WRAPPERS = {"closing", "aclosing", "enter_context", "enter_async_context"}
AWAITING_WRAPPERS = {"gather", "wait_for", "create_task", "ensure_future", "shield", "wait", "as_completed"}
# Parameters of these types are plain data: their name tells more than their type.
PLAIN_TYPES = {"str", "int", "float", "bool", "bytes", "dict", "list"}
CONVERSIONS = {"int", "float", "str", "abs"}
ARITHMETIC: dict[type, Callable[[int, int], int]] = {
    cst.Multiply: lambda a, b: a * b,
    cst.Add: lambda a, b: a + b,
    cst.Subtract: lambda a, b: a - b,
}
NUMERIC = {*ARITHMETIC, cst.FloorDivide, cst.Divide}
COMPARE_OPS: dict[type, str] = {
    cst.Equal: "eq",
    cst.NotEqual: "ne",
    cst.LessThan: "range",
    cst.LessThanEqual: "range",
    cst.GreaterThan: "range",
    cst.GreaterThanEqual: "range",
    cst.In: "in",
    cst.Is: "null",
}
# Loops that run until a condition, like `while`: retries and `itertools.count()` pagers.
RETRY_LOOP = re.compile(r"retr(y|ies|ying)|attempts|Retrying|\bcount\(", re.I)
# Configuration the code itself declares (`settings.INSTALLED_APPS`, `CURRENCIES`): as
# many items as someone wrote down, not as many as the table holds.
CONFIG_LOOP = re.compile(
    r"^(?:(?:\w+\.)*(?:settings|conf|config)\.)?[A-Z][A-Z0-9_]+(?:\.(?:items|keys|values)\(\))?$"
)

Positions = AstPositions | MetadataPositions


@dataclass
class _Scope:
    """A function body being visited (or the module body)."""

    qualname: str
    env: dict[str, Value | None] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    calls: list[CallSite] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    returns: list[Value] = field(default_factory=list)
    returned_names: set[str] = field(default_factory=set)
    item_stores: list[tuple[str, Span]] = field(default_factory=list)
    item_deletes: list[str] = field(default_factory=list)
    item_reads: list[ItemRead] = field(default_factory=list)
    slices: list[tuple[Slice, Span]] = field(default_factory=list)


@dataclass
class _PendingFunction:
    node: cst.FunctionDef
    qualname: str
    span: Span
    class_name: str | None
    params: tuple[Param, ...]
    decorators: list[Decorator]
    param_calls: list[CallSite] = field(default_factory=list)


@dataclass
class _PendingClass:
    qualname: str
    span: Span
    bases: tuple[Value, ...]
    attributes: dict[str, Value] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    attribute_lines: dict[str, int] = field(default_factory=dict)


_HOOKS: dict[tuple[type, str, type], Callable[..., object] | None] = {}


def _hook(visitor: type, kind: str, node_type: type) -> Callable[..., object] | None:
    """`visit_Call` / `leave_Call` of a visitor class, looked up once per node type."""
    key = (visitor, kind, node_type)
    if key not in _HOOKS:
        _HOOKS[key] = getattr(visitor, f"{kind}_{node_type.__name__}", None)
    return _HOOKS[key]


def _number(text: str, kind: type[int] | type[float]) -> int | float | str:
    """A numeric literal's value without `evaluated_value` (which compiles it)."""
    digits = text.replace("_", "")
    try:
        return int(digits, 0) if kind is int else float(digits)
    except ValueError:
        return text


def _simple_string(node: cst.SimpleString) -> str | None:
    """The value of a string literal; literal_eval (a compile) only for escapes and bytes."""
    raw = node.value
    prefix = node.prefix.lower()
    if "b" in prefix:
        return None
    body = raw[len(prefix) :]
    quote = 3 if body[:3] in ('"""', "'''") else 1
    inner = body[quote:-quote]
    if "\\" not in inner or "r" in prefix:
        return inner
    value = node.evaluated_value
    return value if isinstance(value, str) else None


def dotted_text(node: cst.CSTNode) -> str:
    """Short source-like text of an expression, without libcst code generation."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{dotted_text(node.value)}.{node.attr.value}"
    if isinstance(node, cst.Call):
        simple = all(
            isinstance(a.value, (cst.Name, cst.Integer, cst.Attribute)) and not a.keyword for a in node.args
        )
        inner = ", ".join(dotted_text(a.value) for a in node.args) if simple else "..."
        return f"{dotted_text(node.func)}({inner if len(inner) <= 30 else '...'})"
    if isinstance(node, cst.Subscript):
        return f"{dotted_text(node.value)}[]"
    if isinstance(node, cst.Await):
        return f"await {dotted_text(node.expression)}"
    if isinstance(node, (cst.SimpleString, cst.Integer)):
        return node.value
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        return "[...]"
    return "..."


def _string_text(node: cst.BaseExpression) -> str | None:
    """The text of a string expression, f-string holes replaced by a placeholder."""
    if isinstance(node, cst.SimpleString):
        return _simple_string(node)
    if isinstance(node, cst.ConcatenatedString):
        left, right = _string_text(node.left), _string_text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, cst.FormattedString):
        parts: list[str] = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(part.value)
            else:
                parts.append(HOLE)
        return "".join(parts)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        left, right = _string_text(node.left), _string_text(node.right)
        if left is not None or right is not None:
            return (left or HOLE) + (right or HOLE)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
        return _string_text(node.left)
    joined = _joined(node)
    if joined is not None:
        separator, items = joined
        texts = [_string_text(item) if item is not None else None for item in items]
        return separator.join(HOLE if text is None else text for text in texts)
    return None


def _joined(node: cst.BaseExpression) -> tuple[str, list[cst.BaseExpression | None]] | None:
    """`":".join(["user", str(uid)])`: the separator and the items (None for `*rest`)."""
    if not (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "join"
        and isinstance(node.func.value, cst.SimpleString)
        and len(node.args) == 1
        and isinstance(node.args[0].value, (cst.List, cst.Tuple))
    ):
        return None
    separator = _simple_string(node.func.value)
    if separator is None:
        return None
    elements = node.args[0].value.elements
    return separator, [None if isinstance(e, cst.StarredElement) else e.value for e in elements]


def _held_sql_text(value: CallResult) -> str | None:
    """The SQL a variable holds when it was built by a call: `sql.SQL("...").format(...)`,
    `"...".format(...)`, `cur.mogrify("...", params)`, `text("...")`."""
    callee = value.callee
    if isinstance(callee, Attr) and callee.attr == "format":
        base = callee.base
        if isinstance(base, Const) and isinstance(base.value, str):
            template: str | None = base.value
        else:
            template = base.first_text if isinstance(base, CallResult) else None
        return FORMAT_FIELD.sub(HOLE, template) if template is not None else None
    return value.first_text


class FactsVisitor(cst.CSTVisitor):
    """Collects imports, module values, classes, functions and their call sites."""

    def __init__(self, positions: Positions, dialect: str) -> None:
        super().__init__()
        self.positions = positions
        self.dialect = dialect
        self.imports: dict[str, str] = {}
        self.earlier_imports: list[tuple[str, str]] = []
        self.module_vars: dict[str, Value] = {}
        # One object for each name, attribute read or call result the file spells more
        # than once (`_shared`).
        self._values: dict[tuple[object, ...], Value] = {}
        self.functions: list[FunctionFacts] = []
        self.classes: list[ClassFacts] = []
        self.module = _Scope("<module>")
        self.scopes: list[_Scope] = [self.module]
        self.class_stack: list[_PendingClass] = []
        self.function_stack: list[_PendingFunction] = []
        # Node ids whose visit changes context: function bodies, loop bodies,
        # comprehension iterables that run outside the comprehension.
        self._enter_function: dict[int, _PendingFunction] = {}
        self._enter_loop: dict[int, Loop] = {}
        self._escape_loop: set[int] = set()
        self._saved_loops: list[list[Loop]] = []
        self._global_stores: dict[int, str] = {}
        self._assigned_to: dict[int, str] = {}
        self._context_calls: set[int] = set()
        self._returned: set[int] = set()
        self._param_roots: dict[int, _PendingFunction] = {}
        self._param_stack: list[_PendingFunction] = []
        self._finally_depth = 0
        self._defining: dict[int, str] = {}
        self._awaited: set[int] = set()
        self._consumers: dict[int, str] = {}
        self._lambda_depth = 0
        self._definition_stack: list[str] = []
        self._dict_lines: dict[int, int] = {}
        self._store_targets: dict[int, str] = {}
        self._decorator_lines: dict[int, int] = {}
        self.sql_failures = 0
        self._attribute_count = 0
        self._fan_out: set[int] = set()
        # Loops: the node whose assignments make a call vary per item, the loop's target
        # names, `if` blocks that run once whatever the loop, calls started as tasks.
        self._loop_nodes: dict[int, cst.CSTNode] = {}
        self._loops_made: list[Loop] = []  # keeps every Loop alive, so no id is reused
        self._changed: dict[int, frozenset[str]] = {}
        self._loop_targets: dict[int, frozenset[str]] = {}
        self._once: dict[int, list[Loop]] = {}
        self._spawned: set[int] = set()
        self._assign_count = 0

    # ---- context switching on arbitrary nodes -------------------------------

    def on_visit(self, node: cst.CSTNode) -> bool:
        key = id(node)
        if key in self._enter_function:
            pending = self._enter_function[key]
            scope = _Scope(pending.qualname)
            for param in pending.params:
                annotation = param.annotation
                if annotation is None or (isinstance(annotation, Global) and annotation.name in PLAIN_TYPES):
                    scope.env[param.name] = Opaque(param.name)
                else:
                    scope.env[param.name] = Instance(annotation)
            if pending.class_name and pending.params:
                first = pending.params[0].name
                if first in ("self", "cls"):
                    scope.env[first] = Instance(Global(pending.class_name))
            self.scopes.append(scope)
        if key in self._enter_loop:
            self.scopes[-1].loops.append(self._enter_loop[key])
        if key in self._escape_loop:
            scope = self.scopes[-1]
            self._saved_loops.append(scope.loops)
            scope.loops = scope.loops[:-1]
        if key in self._once:
            scope = self.scopes[-1]
            self._saved_loops.append(scope.loops)
            scope.loops = list(self._once[key])
        if key in self._param_roots:
            self._param_stack.append(self._param_roots[key])
        if key in self._defining:
            self._definition_stack.append(self._defining[key])
        if type(node) is cst.Finally:
            self._finally_depth += 1
        elif type(node) is cst.Lambda:
            self._lambda_depth += 1
        elif type(node) is cst.Await:
            self._awaited.add(id(node.expression))
        visit = _hook(type(self), "visit", type(node))
        return visit is None or visit(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        leave = _hook(type(self), "leave", type(original_node))
        if leave is not None:
            leave(self, original_node)
        key = id(original_node)
        if type(original_node) is cst.Finally:
            self._finally_depth -= 1
        elif type(original_node) is cst.Lambda:
            self._lambda_depth -= 1
        if key in self._param_roots:
            self._param_stack.pop()
        if key in self._defining:
            self._definition_stack.pop()
        if key in self._escape_loop or key in self._once:
            self.scopes[-1].loops = self._saved_loops.pop()
        if key in self._enter_loop:
            self.scopes[-1].loops.pop()
        if key in self._enter_function:
            self._finish_function(self._enter_function.pop(key), self.scopes.pop())

    # ---- values ------------------------------------------------------------

    def lookup(self, name: str) -> Value | None:
        for scope in reversed(self.scopes[1:]):
            if name in scope.global_names:
                break
            if name in scope.env:
                found = scope.env[name]
                if isinstance(found, Const) and found.origin is None:
                    return replace(found, origin=name)
                return found
        if name in self.imports:
            dotted = self.imports[name]
            return self._shared(Imported(dotted), (Imported, dotted))
        if name in self.module_vars:
            value = self.module_vars[name]
            if isinstance(value, Const):
                return replace(value, origin=name) if value.origin is None else value
        return self._shared(Global(name), (Global, name))

    def _shared(self, value: _V, key: tuple[object, ...]) -> _V:
        """The object this file already built for `value`, else `value`.

        The project model remembers what a value resolves to by the object first (the
        same object, the same answer); one object for `self.session.execute` however
        often a file spells it turns most lookups into that cheap case, and the facts
        blob writes it once. `key` names a value whole: its type, its strings and numbers,
        and the objects it holds by id (the object kept here holds them, so no other
        object can be given their ids while the key is in use).
        """
        return self._values.setdefault(key, value)  # type: ignore[return-value]

    def value_of(self, node: cst.BaseExpression) -> Value | None:
        if isinstance(node, cst.Name):
            if node.value in ("True", "False", "None"):
                return Const({"True": True, "False": False, "None": None}[node.value])
            return self.lookup(node.value)
        if isinstance(node, cst.Attribute):
            base = self.value_of(node.value)
            if base is None:
                return None
            attr = node.attr.value
            if isinstance(base, Imported):
                dotted = f"{base.dotted}.{attr}"
                return self._shared(Imported(dotted), (Imported, dotted))
            return self._shared(Attr(base, attr), (Attr, id(base), attr))
        if isinstance(node, cst.Call) and _joined(node) is None:
            callee = self.value_of(node.func)
            if callee is None:
                return None
            keywords = tuple(a.keyword.value for a in node.args if a.keyword is not None)
            positional = [a.value for a in node.args if a.keyword is None and not a.star]
            if isinstance(callee, Global) and callee.name in CONVERSIONS and len(positional) == 1:
                return self.value_of(positional[0])  # `int(limit)` carries `limit` through
            first = _string_text(positional[0]) if positional else None
            literal = bool(positional) and all(
                isinstance(a, (cst.Integer, cst.SimpleString)) for a in positional
            )
            # The first argument, when a name or an attribute: `.limit(size)` keeps `size`,
            # `select(User)` its model, `func.lower(User.email)` its column.
            first_value = (
                self.value_of(positional[0])
                if positional and isinstance(positional[0], (cst.Name, cst.Attribute))
                else None
            )
            count = len(positional)
            key = (CallResult, id(callee), keywords, count, first, literal, id(first_value))
            return self._shared(CallResult(callee, keywords, count, first, literal, first_value), key)
        if isinstance(node, cst.Await):
            return self.value_of(node.expression)
        if isinstance(node, cst.Integer):
            return Const(_number(node.value, int))
        if isinstance(node, cst.Float):
            return Const(_number(node.value, float))
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
            inner = self.value_of(node.expression)
            if isinstance(inner, Const) and isinstance(inner.value, (int, float)):
                return Const(-inner.value)
        if isinstance(node, cst.Subscript):
            base = self.value_of(node.value)
            if base is None:
                return None
            if isinstance(base, Imported) and base.dotted.endswith(".Annotated"):
                # `Annotated[Session, Depends(get_db)]` is a Session.
                annotated = node.slice[0].slice
                return self.value_of(annotated.value) if isinstance(annotated, cst.Index) else None
            index = node.slice[0].slice if len(node.slice) == 1 else None
            if isinstance(index, cst.Slice):
                # A bound phase 1 cannot describe (`offset + 20`) is still a bound.
                upper = self._bound(index.upper)
                lower = self._bound(index.lower)
                return Slice(base, upper, lower)
            return Item(base)
        text = _string_text(node)
        if text is not None:
            holes = self._holes(node)
            return FormattedText(text, holes=holes) if holes else Const(text)
        if isinstance(node, cst.BinaryOperation) and type(node.operator) in NUMERIC:
            left, right = self.value_of(node.left), self.value_of(node.right)
            a, b = _int_of(left), _int_of(right)
            if a is not None and b is not None and type(node.operator) in ARITHMETIC:
                # `60 * 15`, `PAGE_TTL * 2`: timeouts are written as products of constants.
                folded = ARITHMETIC[type(node.operator)](a, b)
                return Const(folded) if abs(folded) < 2**63 else None  # no bignum folding
            # `offset + limit - 1`: a page's end still depends on the page size.
            operands = tuple(v for v in (left, right) if v is not None)
            return Computed(operands) if operands else None
        if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
            op = COMPARE_OPS.get(type(node.comparisons[0].operator))
            left = self.value_of(node.left)
            return Compare(left, op) if op is not None and left is not None else None
        if isinstance(node, (cst.Tuple, cst.List)) and (len(self.scopes) > 1 or self.class_stack):
            items = tuple(self.value_of(e.value) for e in node.elements if isinstance(e, cst.Element))
            return Sequence(tuple(v for v in items if v is not None))
        return None

    def _holes(self, node: cst.BaseExpression) -> tuple[Value | None, ...]:
        """The values a string expression interpolates, in order (cache keys name them)."""
        if isinstance(node, cst.FormattedString):
            return tuple(
                self.value_of(part.expression)
                for part in node.parts
                if isinstance(part, cst.FormattedStringExpression)
            )
        if isinstance(node, cst.ConcatenatedString):
            return self._holes(node.left) + self._holes(node.right)
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            return tuple(
                hole
                for side in (node.left, node.right)
                for hole in (self._holes(side) if _string_text(side) is not None else (self.value_of(side),))
            )
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
            right = node.right
            if isinstance(right, cst.Tuple):
                return tuple(self.value_of(e.value) for e in right.elements)
            return (self.value_of(right),)
        joined = _joined(node)
        if joined is not None:
            return tuple(
                hole
                for item in joined[1]
                for hole in (
                    (None,)
                    if item is None
                    else self._holes(item)
                    if _string_text(item) is not None
                    else (self.value_of(item),)
                )
            )
        return ()

    def _bound(self, node: cst.BaseExpression | None) -> Value | None:
        if node is None:
            return None
        return self.value_of(node) or Opaque(dotted_text(node))

    def _sql_text(self, node: cst.BaseExpression) -> str | None:
        """SQL passed as an argument: a string, a variable holding one, text("..."), a
        `.format` template (`"...{}".format(t)`, psycopg `sql.SQL("...{}").format(...)`,
        its fields become holes), `cur.mogrify("...", params)`, or a variable holding any
        of these calls."""
        value = self.value_of(node)
        if isinstance(value, Const) and isinstance(value.value, str):
            return value.value
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "format":
                template = _string_text(func.value) or self._sql_text(func.value)
                return FORMAT_FIELD.sub(HOLE, template) if template is not None else None
            if node.args:
                return self._sql_text(node.args[0].value)
        if isinstance(node, cst.Name) and isinstance(value, CallResult):
            return _held_sql_text(value)
        return None

    def _sql_of_args(self, node: cst.Call) -> tuple[SqlStatement, ...]:
        for arg in node.args:
            text = self._sql_text(arg.value)
            if text is None or not looks_like_sql(text):
                continue
            from scalelint.facts import sql  # sqlglot, only for files that hold SQL

            parsed = sql.analyse(text, self.dialect)
            if parsed is None and FORMAT_FIELD.search(text):
                # A template for `.format` (`sql.SQL("... FROM {}")`): its fields are holes.
                parsed = sql.analyse(FORMAT_FIELD.sub(HOLE, text), self.dialect)
            if parsed is None:
                self.sql_failures += 1
                return ()
            return parsed
        return ()

    # ---- imports -----------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> bool:
        self._import_names(node)
        return False  # no children to visit: dotted names here are not attribute reads (nor in `ast`)

    def _import_names(self, node: cst.Import) -> None:
        for alias in node.names:
            dotted = cst.helpers.get_full_name_for_node(alias.name) or ""
            if alias.asname and isinstance(alias.asname.name, cst.Name):
                self._import(alias.asname.name.value, dotted)
            else:
                head = dotted.split(".")[0]
                self._import(head, head)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        self._import_from_names(node)
        return False

    def _import_from_names(self, node: cst.ImportFrom) -> None:
        module = cst.helpers.get_full_name_for_node(node.module) if node.module else ""
        base = "." * len(node.relative) + (module or "")
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            local = name
            if alias.asname and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            joined = f"{base}.{name}" if base and not base.endswith(".") else f"{base}{name}"
            self._import(local, joined)

    def _import(self, local: str, dotted: str) -> None:
        """Bind `local` to `dotted`, keeping what it was bound to before (see
        `FileFacts.earlier_imports`)."""
        earlier = self.imports.get(local)
        if earlier is not None and earlier != dotted:
            self.earlier_imports.append((local, earlier))
        self.imports[local] = dotted

    # ---- definitions -------------------------------------------------------

    def _qualname(self, name: str) -> str:
        if self.function_stack and self.scopes[-1] is not self.module:
            return f"{self.function_stack[-1].qualname}.<locals>.{name}"
        if self.class_stack:
            return f"{self.class_stack[-1].qualname}.{name}"
        return name

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        bases = tuple(v for v in (self.value_of(a.value) for a in node.bases) if v is not None)
        qualname = self._qualname(node.name.value)
        self.class_stack.append(_PendingClass(qualname, self.positions.take(node), bases))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        pending = self.class_stack.pop()
        self.classes.append(
            ClassFacts(
                qualname=pending.qualname,
                span=pending.span,
                bases=pending.bases,
                attributes=tuple(pending.attributes.items()),
                methods=tuple(pending.methods),
                calls=tuple(pending.calls),
                attribute_lines=tuple(pending.attribute_lines.items()),
            )
        )
        if not self.class_stack and len(self.scopes) == 1:
            self.module_vars.setdefault(pending.qualname, Global(pending.qualname))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        span = self.positions.take(node)
        in_class = bool(self.class_stack) and (not self.function_stack or self.scopes[-1] is self.module)
        class_name = self.class_stack[-1].qualname if in_class else None
        if in_class:
            self.class_stack[-1].methods.append(node.name.value)
        params: list[Param] = []
        all_params = [
            *node.params.posonly_params,
            *node.params.params,
            *node.params.kwonly_params,
        ]
        pending = _PendingFunction(node, self._qualname(node.name.value), span, class_name, (), [])
        for p in all_params:
            annotation = self.value_of(p.annotation.annotation) if p.annotation else None
            default = self.value_of(p.default) if p.default else None
            params.append(Param(p.name.value, annotation, default))
            # Calls in defaults and annotations (FastAPI's Depends) are noted per function.
            for root in (p.annotation, p.default):
                if root is not None:
                    self._param_roots[id(root)] = pending
        # ...and so are those in its decorators (`@app.get("/", dependencies=[Depends(auth)])`).
        for decorator in node.decorators:
            self._param_roots[id(decorator)] = pending
        pending.params = tuple(params)
        self.function_stack.append(pending)
        self._enter_function[id(node.body)] = pending

    def visit_Decorator(self, node: cst.Decorator) -> None:
        span = self.positions.take(node)
        expr = node.decorator
        callee = self.value_of(expr.func if isinstance(expr, cst.Call) else expr)
        if callee is None or not self.function_stack:
            return
        pending = self.function_stack[-1]
        if pending.node.decorators and any(d is node for d in pending.node.decorators):
            # The call form's CallSite is filled in when the call itself is visited.
            self._decorator_lines[id(expr)] = len(pending.decorators)
            pending.decorators.append(Decorator(callee=callee, text=dotted_text(expr), line=span.line))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.function_stack.pop()

    def _finish_function(self, pending: _PendingFunction, scope: _Scope) -> None:
        self.functions.append(
            FunctionFacts(
                qualname=pending.qualname,
                span=pending.span,
                is_async=pending.node.asynchronous is not None,
                class_name=pending.class_name,
                decorators=tuple(pending.decorators),
                params=pending.params,
                calls=tuple(scope.calls),
                returns=tuple(scope.returns),
                returned_names=tuple(sorted(scope.returned_names)),
                param_calls=tuple(pending.param_calls),
                item_stores=tuple(scope.item_stores),
                item_deletes=tuple(scope.item_deletes),
                item_reads=tuple(scope.item_reads),
                slices=tuple(scope.slices),
            )
        )

    def visit_Return(self, node: cst.Return) -> None:
        self._note_return(node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        if isinstance(node.value, cst.BaseExpression):
            self._note_return(node.value)

    def _note_return(self, node: cst.BaseExpression | None) -> None:
        if node is not None:
            self._returned.add(id(self._unwrap(node)))
            if isinstance(node, cst.Name) and len(self.scopes) > 1:
                self.scopes[-1].returned_names.add(node.value)
        value = self.value_of(node) if node is not None else None
        if value is not None and len(self.scopes) > 1:
            self.scopes[-1].returns.append(value)

    # ---- assignments and bindings -----------------------------------------

    def visit_Global(self, node: cst.Global) -> None:
        self.scopes[-1].global_names.update(n.name.value for n in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.scopes[-1].global_names.update(n.name.value for n in node.names)

    def _bind(self, target: cst.BaseExpression, value: Value | None, value_node: cst.CSTNode | None) -> None:
        scope = self.scopes[-1]
        if value is None and isinstance(target, cst.Name):
            # Not the parameter of the same name any more: `limit = min(limit, 100) if ...`.
            value = Opaque(f"{target.value} (computed)")
        if isinstance(target, cst.Name):
            name = target.value
            if scope is self.module:
                if self.class_stack and not self.function_stack:
                    if value is not None:
                        self.class_stack[-1].attributes[name] = value
                elif value is not None:
                    self.module_vars[name] = value
                return
            if name in scope.global_names:
                self._note_store(value_node, name)
                scope.item_deletes.append(name)  # rebinding a module dict empties it too
                return
            scope.env[name] = value
            return
        if isinstance(target, (cst.Attribute, cst.Subscript)):
            root = target.value
            while isinstance(root, (cst.Attribute, cst.Subscript)):
                root = root.value
            if not isinstance(root, cst.Name):
                return
            if root.value == "self":
                if isinstance(target, cst.Attribute) and value_node is not None:
                    self._assigned_to[id(value_node)] = f"self.{target.attr.value}"
                if (
                    isinstance(target, cst.Attribute)
                    and isinstance(target.value, cst.Name)
                    and self.function_stack
                ):
                    owner = self.function_stack[-1].class_name
                    cls = next((c for c in self.class_stack if c.qualname == owner), None)
                    if cls is not None and value is not None:
                        cls.attributes[target.attr.value] = value
                return
            # A store into something that outlives the call: `cls._pool`, `app.state.db`,
            # `_engines[tenant]`. Phase 2 knows which roots are per request (`flask.g`).
            looked_up = self.lookup(root.value)
            if root.value == "cls":
                self._note_store(value_node, "cls")
            elif isinstance(looked_up, Imported):
                self._note_store(value_node, looked_up.dotted)
            elif isinstance(looked_up, Global):
                self._note_store(value_node, looked_up.name)
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value, None, None)

    def _note_store(self, value_node: cst.CSTNode | None, root: str) -> None:
        if value_node is not None:
            self._global_stores[id(value_node)] = root

    @staticmethod
    def _unwrap(node: cst.BaseExpression) -> cst.BaseExpression:
        return node.expression if isinstance(node, cst.Await) else node

    def visit_Assign(self, node: cst.Assign) -> None:
        index = self._assign_count
        self._assign_count += 1
        if self.class_stack and self.scopes[-1] is self.module:
            names = [t.target.value for t in node.targets if isinstance(t.target, cst.Name)]
            if names:
                line = self.positions.assign(node, index).line
                self.class_stack[-1].attribute_lines.update((name, line) for name in names)
        value = self.value_of(node.value)
        first = node.targets[0].target
        if len(node.targets) == 1 and isinstance(first, cst.Name):
            self._assigned_to[id(self._unwrap(node.value))] = first.value
            if len(self.scopes) == 1 and not self.class_stack:
                # `Conn = Annotated[Connection, Depends(get_conn)]`: calls inside a
                # module-level definition are kept with the name they define.
                self._defining[id(node.value)] = first.value
        for target in node.targets:
            self._bind(target.target, value, self._unwrap(node.value))
            self._note_item_store(target.target)

    def _note_item_store(self, target: cst.BaseExpression) -> None:
        """`CACHE[key] = value` in a function, where CACHE is a module-level name and the
        key is not a literal (`CACHE["settings"] = ...` is one entry, however often set)."""
        if (
            len(self.scopes) > 1
            and isinstance(target, cst.Subscript)
            and isinstance(target.value, cst.Name)
            and isinstance(self.lookup(target.value.value), Global)
        ):
            index = target.slice[0].slice if len(target.slice) == 1 else None
            key = self.value_of(index.value) if isinstance(index, cst.Index) else None
            if isinstance(key, Const) and HOLE not in str(key.value):
                return
            self._store_targets[id(target)] = target.value.value

    def visit_Attribute(self, node: cst.Attribute) -> None:
        """`row.customer` in a loop body, where `row` is a loop's element (lazy relations)."""
        index = self._attribute_count
        self._attribute_count += 1
        scope = self.scopes[-1]
        if scope.loops and isinstance(node.value, cst.Name) and scope is not self.module:
            item = scope.env.get(node.value.value)
            if isinstance(item, Item):
                span = self.positions.attribute(node, index)
                read = ItemRead(item, node.attr.value, span, tuple(scope.loops), node.value.value)
                scope.item_reads.append(read)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        span = self.positions.take(node)
        if len(self.scopes) > 1 and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Slice):
            # Where a query is sliced (`qs[offset:offset + 50]`): SL403/SL404 point there.
            value = self.value_of(node)
            where = self.positions.slice_of(node)
            if isinstance(value, Slice) and where is not None:
                self.scopes[-1].slices.append((value, where))
        name = self._store_targets.pop(id(node), None)
        if name is not None:
            self.scopes[-1].item_stores.append((name, span))

    def visit_Del(self, node: cst.Del) -> None:
        target = node.target
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and len(self.scopes) > 1:
            self.scopes[-1].item_deletes.append(target.value.value)

    def visit_Dict(self, node: cst.Dict) -> None:
        self._dict_lines[id(node)] = self.positions.take(node).line

    def leave_Assign(self, original_node: cst.Assign) -> None:
        # Module-level dict displays (settings) are kept flattened, with their line.
        value = original_node.value
        if isinstance(value, cst.Dict) and len(self.scopes) == 1 and not self.class_stack:
            literal = _dict_literal(value, self._dict_lines.get(id(value), 1))
            for target in original_node.targets:
                if isinstance(target.target, cst.Name):
                    self.module_vars[target.target.value] = literal

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        value = original_node.value
        target = original_node.target
        module_level = len(self.scopes) == 1 and not self.class_stack
        if isinstance(value, cst.Dict) and isinstance(target, cst.Name) and module_level:
            self.module_vars[target.value] = _dict_literal(value, self._dict_lines.get(id(value), 1))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and isinstance(node.target, cst.Name):
            self._assigned_to[id(self._unwrap(node.value))] = node.target.value
        value = self.value_of(node.value) if node.value is not None else None
        if value is None:
            annotation = self.value_of(node.annotation.annotation)
            value = Instance(annotation) if annotation is not None else None
        self._bind(node.target, value, self._unwrap(node.value) if node.value else None)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target, self.value_of(node.value), self._unwrap(node.value))

    def visit_With(self, node: cst.With) -> None:
        if node.asynchronous is not None:
            self._awaited.update(id(self._unwrap(item.item)) for item in node.items)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        self._context_calls.add(id(self._unwrap(node.item)))
        if node.asname is not None:
            self._bind(node.asname.name, self.value_of(node.item), None)

    # ---- loops -------------------------------------------------------------

    def _constant_int(self, node: cst.BaseExpression) -> int | None:
        """An integer literal, or a name bound to one at module level (`MAX_RETRIES`)."""
        value = self.value_of(node)
        if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
            return value.value
        return None

    def _register(self, loop: Loop, node: cst.CSTNode) -> None:
        """The node whose assignments decide what varies per item of `loop`."""
        self._loops_made.append(loop)
        self._loop_nodes[id(loop)] = node

    def _loop(
        self,
        kind: str,
        span: Span,
        iterable: cst.BaseExpression | None,
        target: cst.BaseExpression | None = None,
    ) -> Loop:
        return Loop(
            kind=kind,
            line=span.line,
            iterable=self.value_of(iterable) if iterable is not None else None,
            iter_text=dotted_text(iterable) if iterable is not None else "",
            bounded=iterable is not None
            and (_is_small(iterable, self._constant_int) or retries_or_chunks(iterable, target)),
        )

    def visit_For(self, node: cst.For) -> None:
        span = self.positions.take(node)
        kind = "async for" if node.asynchronous else "for"
        loop = self._loop(kind, span, node.iter, node.target)
        self._enter_loop[id(node.body)] = loop
        self._register(loop, node)
        self._loop_targets[id(loop)] = dict_keys(node)
        iterable = self.value_of(node.iter)
        self._note_iteration(iterable, node.iter, span, node.asynchronous is not None)
        self._bind(node.target, Item(iterable) if iterable else None, None)

    def _note_iteration(
        self, iterable: Value | None, node: cst.BaseExpression, span: Span, awaited: bool = False
    ) -> None:
        """Iterating a lazy query (a Django queryset) runs it: a call to `__iter__`; `async for`
        awaits each step of it."""
        if iterable is None or isinstance(iterable, Const):
            return
        scope = self.scopes[-1]
        scope.calls.append(
            CallSite(
                callee=Attr(iterable, "__iter__"),
                text=f"for ... in {dotted_text(node)}",
                span=span,
                loops=tuple(scope.loops),
                awaited=awaited,
            )
        )

    def leave_For(self, original_node: cst.For) -> None:
        self._enter_loop.pop(id(original_node.body), None)

    def visit_While(self, node: cst.While) -> None:
        span = self.positions.take(node)
        walked = fetched_rows(node)
        loop = Loop("while", span.line, None, walked or "", bounded=False, walks_rows=walked is not None)
        self._register(loop, node)
        self._enter_loop[id(node.test)] = loop
        self._enter_loop[id(node.body)] = loop

    def leave_While(self, original_node: cst.While) -> None:
        self._enter_loop.pop(id(original_node.test), None)
        self._enter_loop.pop(id(original_node.body), None)

    def visit_If(self, node: cst.If) -> None:
        loops = self.scopes[-1].loops
        if not loops:
            return
        filled = fills_once(node)
        if filled is not None:
            # Once per pass of the loops that change the filled name nowhere else.
            kept = list(loops)
            while kept and (loop_node := self._loop_nodes.get(id(kept[-1]))) is not None:
                if filled in changed_names(loop_node, skip=node):
                    break
                kept.pop()
            if len(kept) < len(loops):
                self._once[id(node.body)] = kept
            return
        targets = self._loop_targets.get(id(loops[-1]))
        if targets and literal_guard(node, targets):
            self._escape_loop.add(id(node.body))

    def leave_If(self, original_node: cst.If) -> None:
        self._once.pop(id(original_node.body), None)
        self._escape_loop.discard(id(original_node.body))

    def _hoistable(self, node: cst.Call, loops: tuple[Loop, ...]) -> bool:
        """The call reads no name its innermost per-item loop changes: it is the same call
        on every iteration."""
        loop = next((loop for loop in reversed(loops) if loop.per_item), None)
        loop_node = self._loop_nodes.get(id(loop)) if loop is not None else None
        if loop_node is None:
            return False
        changed = self._changed.get(id(loop))
        if changed is None:
            changed = self._changed[id(loop)] = changed_names(loop_node)
        return not (read_names(node) & changed)

    def _per_item_call(
        self, node: cst.Call, span: Span, function: cst.BaseExpression, loops: tuple[Loop, ...]
    ) -> None:
        """`map(load, ids)`, `executor.submit(load, i)`: `load` is called once per item, at
        the mapping call (a lambda's body gets the loop when it is visited)."""
        if isinstance(function, cst.Lambda):
            self._enter_loop[id(function.body)] = loops[-1]
            self._register(loops[-1], function)
            return
        scope = self.scopes[-1]
        scope.calls.append(
            CallSite(
                callee=self.value_of(function) or Opaque(dotted_text(function)),
                text=dotted_text(node),
                span=span,
                loops=loops,
            )
        )

    def _visit_comprehension(self, node: cst.BaseComp) -> None:
        span = self.positions.take(node)
        for_in = node.for_in
        kind = "concurrent fan-out" if id(node) in self._fan_out else "comprehension"
        loop = self._loop(kind, span, for_in.iter, for_in.target)
        self._register(loop, node)
        # The outer iterable is evaluated once, outside the comprehension's own loop.
        self._note_iteration(self.value_of(for_in.iter), for_in.iter, span, for_in.asynchronous is not None)
        self.scopes[-1].loops.append(loop)
        self._escape_loop.add(id(for_in.iter))
        inner: cst.CompFor | None = for_in
        while inner is not None:
            iterable = self.value_of(inner.iter)
            if inner is not for_in:
                self._note_iteration(iterable, inner.iter, span, inner.asynchronous is not None)
            self._bind(inner.target, Item(iterable) if iterable else None, None)
            inner = inner.inner_for_in

    def _leave_comprehension(self, node: cst.BaseComp) -> None:
        self._escape_loop.discard(id(node.for_in.iter))
        self.scopes[-1].loops.pop()

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._visit_comprehension(node)

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self._leave_comprehension(original_node)

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._visit_comprehension(node)

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self._leave_comprehension(original_node)

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._visit_comprehension(node)

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self._leave_comprehension(original_node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._visit_comprehension(node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._leave_comprehension(original_node)

    # ---- calls -------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        span = self.positions.take(node)
        method_span = self.positions.method_name(node)
        if isinstance(node.func, cst.Attribute):
            inner = self._unwrap(node.func.value)
            if isinstance(inner, cst.Call):
                self._consumers[id(inner)] = node.func.attr.value
        # `closing(engine.connect())`, `stack.enter_context(pool.acquire())` manage the inner call.
        name = node.func.attr.value if isinstance(node.func, cst.Attribute) else dotted_text(node.func)
        if name in CONTEXT_WRAPPERS and node.args:
            self._context_calls.add(id(self._unwrap(node.args[0].value)))
        if name in AWAITING_WRAPPERS:
            # `gather(a(), b())`, `wait_for(a(), 5)`, `create_task(a())` await their coroutines.
            self._awaited.update(id(self._unwrap(arg.value)) for arg in node.args if not arg.keyword)
            # `gather(*(fetch(x) for x in xs))` starts one coroutine per item, all at once.
            self._fan_out.update(id(arg.value) for arg in node.args if arg.star == "*")
        func_text = dotted_text(node.func)
        coroutine = started_coroutine(node, func_text)
        if coroutine is not None:
            self._spawned.add(id(coroutine))
        callee = self.value_of(node.func) or Opaque(func_text)
        scope = self.scopes[-1]
        loops = tuple(scope.loops)
        if id(node) in self._spawned:
            loops = _fanned_out(loops)
        args: list[Value | None] = []
        kwargs: list[tuple[str, Value | None]] = []
        for arg in node.args:
            if arg.keyword is not None:
                value = arg.value
                # A dict display passed by keyword (`postgresql_ops={"name": "gin_trgm_ops"}`).
                literal = _dict_literal(value, 0) if isinstance(value, cst.Dict) else None
                kwargs.append((arg.keyword.value, literal or self.value_of(value)))
            elif arg.star == "**":
                kwargs.append(("**", None))
            elif not arg.star:
                # A dict display with literal keys only is kept: a query document
                # (`find({"_id": x})`), a cache fill (`CACHE.update({"a": 1})`).
                literal = _dict_literal(arg.value, 0) if _literal_keys(arg.value) else None
                args.append(literal or self.value_of(arg.value))
        site = CallSite(
            callee=callee,
            text=dotted_text(node),
            span=span,
            loops=loops,
            args=tuple(args),
            kwargs=tuple(kwargs),
            sql=self._sql_of_args(node),
            stored_in=self._global_stores.get(id(node)),
            assigned_to=self._assigned_to.get(id(node)),
            as_context=id(node) in self._context_calls,
            in_finally=self._finally_depth > 0,
            returned=id(node) in self._returned,
            defines=self._definition_stack[-1] if self._definition_stack else None,
            awaited=id(node) in self._awaited,
            consumed_by=self._consumers.get(id(node)),
            in_lambda=self._lambda_depth > 0,
            hoistable=bool(loops) and self._hoistable(node, loops),
            method_span=method_span,
        )
        if self._param_stack:
            self._param_stack[-1].param_calls.append(site)
        decorator_index = self._decorator_lines.pop(id(node), None)
        if decorator_index is not None and self.function_stack:
            decorators = self.function_stack[-1].decorators
            old = decorators[decorator_index]
            decorators[decorator_index] = Decorator(old.callee, old.text, old.line, site)
        scope.calls.append(site)
        if self.class_stack and scope is self.module:
            self.class_stack[-1].calls.append(site)
        mapped = mapped_call(node, func_text)
        if mapped is not None:
            loop = self._loop(mapped.kind, span, mapped.iterable)
            self._per_item_call(node, span, mapped.function, (*loops, loop))
        started = started_function(node)
        if started is not None and loops:
            self._per_item_call(node, span, started, _fanned_out(loops))


def _literal_keys(node: cst.BaseExpression) -> TypeGuard[cst.Dict]:
    """A dict display whose keys are all plain string literals."""
    return isinstance(node, cst.Dict) and all(
        isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString) for e in node.elements
    )


def _dict_literal(node: cst.Dict, line: int) -> DictLiteral:
    keys: set[str] = set()
    strings: set[str] = set()
    pending: list[cst.BaseExpression] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, cst.Dict):
            for element in current.elements:
                if isinstance(element, cst.DictElement):
                    key = _string_text(element.key)
                    if key is not None:
                        keys.add(key)
                    pending.append(element.value)
        else:
            text = _string_text(current)
            if text is not None:
                strings.add(text)
    return DictLiteral(frozenset(keys), frozenset(strings), line)


def _int_of(value: Value | None) -> int | None:
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return value.value
    return None


def _fanned_out(loops: tuple[Loop, ...]) -> tuple[Loop, ...]:
    """The loops of a call started as a task per item: the innermost loop runs them all at once."""
    if loops and loops[-1].kind in ("for", "async for", "comprehension"):
        return (*loops[:-1], replace(loops[-1], kind="concurrent fan-out"))
    return loops


def _is_small(node: cst.BaseExpression, constant: Callable[[cst.BaseExpression], int | None]) -> bool:
    """A literal collection, range(k) or a [:k] slice with k <= SMALL_LOOP (k may be a
    constant), a retry helper (`for attempt in run_with_retries(...)`) or configuration."""
    text = dotted_text(node)
    if RETRY_LOOP.search(text) or CONFIG_LOOP.match(text):
        return True
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        return len(node.elements) <= SMALL_LOOP
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name):
        if node.func.value == "range" and node.args:
            if len(node.args) == 3:  # `range(a, b, step)`: small only when all three are known
                a, b, step = (constant(arg.value) for arg in node.args)
                return (
                    a is not None
                    and b is not None
                    and bool(step)
                    and len(range(a, b, step or 1)) <= SMALL_LOOP
                )
            bound = constant(node.args[-1].value)
            return bound is not None and bound <= SMALL_LOOP
        if node.func.value in ("enumerate", "reversed", "sorted") and node.args:
            return _is_small(node.args[0].value, constant)
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        if isinstance(index, cst.Slice) and index.lower is None and index.upper is not None:
            bound = constant(index.upper)
            return bound is not None and bound <= SMALL_LOOP
    return False


def python_facts(path: str, source: str, dialect: str = DEFAULT_DIALECT) -> FileFacts:
    """Parse one Python file and return its facts (a parse error is a fact too)."""
    suppressions = python_suppressions(source)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        return FileFacts(
            path=path,
            language="python",
            parse_error=_syntax_error(source, error),
            suppressions=suppressions,
        )
    except RecursionError:
        return FileFacts(
            path=path,
            language="python",
            parse_error=ParseError("file is nested too deeply to parse"),
        )
    try:
        visitor = _visit(module, AstPositions(source), dialect)
    except (SyntaxError, ValueError, PositionMismatch):
        visitor = _visit(module, MetadataPositions(module), dialect)
    notes = (f"{visitor.sql_failures} SQL string(s) sqlglot could not parse",) if visitor.sql_failures else ()
    facts = FileFacts(
        path=path,
        language="python",
        imports=tuple(visitor.imports.items()),
        earlier_imports=tuple(visitor.earlier_imports),
        module_vars=tuple(visitor.module_vars.items()),
        functions=tuple(visitor.functions),
        classes=tuple(visitor.classes),
        module_calls=tuple(visitor.module.calls),
        suppressions=suppressions,
        unparsed_sql=visitor.sql_failures,
        notes=notes,
    )
    pooler = pooler_evidence(facts)
    return facts if pooler is None else replace(facts, pooler=pooler)


def _syntax_error(source: str, error: cst.ParserSyntaxError) -> ParseError:
    """Python's own wording and position when it agrees the file is invalid (libcst's
    position can be a line late); libcst's otherwise (e.g. a grammar this Python lacks)."""
    try:
        ast.parse(source)
    except SyntaxError as python_error:
        if python_error.lineno:
            return ParseError(python_error.msg, python_error.lineno, python_error.offset or 1)
    except (ValueError, RecursionError):
        pass
    message = str(error).splitlines()[0] if str(error) else "invalid syntax"
    return ParseError(message, error.raw_line, error.raw_column + 1)


def _visit(module: cst.Module, positions: Positions, dialect: str) -> FactsVisitor:
    visitor = FactsVisitor(positions, dialect)
    walk(module, visitor)
    return visitor
