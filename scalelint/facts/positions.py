"""Source positions for the few libcst nodes that become facts, without libcst metadata.

libcst's PositionProvider re-generates the whole module's code (about 2x the parse
on real code). The C `ast` parser is ~10x cheaper than libcst and gives every node
a position, and both trees list the nodes of a kind in source order. So the k-th
`Call` libcst visits is the k-th `ast.Call` in source order. Every match is checked
(same callee name); on any disagreement the caller falls back to libcst metadata.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from scalelint.findings import Span

# libcst node type -> category; ast node type -> category.
CST_CATEGORY: dict[type[cst.CSTNode], str] = {
    cst.Call: "call",
    cst.FunctionDef: "def",
    cst.ClassDef: "class",
    cst.Decorator: "decorator",
    cst.For: "for",
    cst.While: "while",
    cst.ListComp: "comp",
    cst.SetComp: "comp",
    cst.DictComp: "comp",
    cst.GeneratorExp: "comp",
    cst.Dict: "dict",
    cst.Subscript: "subscript",
}
AST_CATEGORY: dict[type[ast.AST], str] = {
    ast.Call: "call",
    ast.FunctionDef: "def",
    ast.AsyncFunctionDef: "def",
    ast.ClassDef: "class",
    ast.For: "for",
    ast.AsyncFor: "for",
    ast.While: "while",
    ast.ListComp: "comp",
    ast.SetComp: "comp",
    ast.DictComp: "comp",
    ast.GeneratorExp: "comp",
    ast.Dict: "dict",
    ast.Subscript: "subscript",
}


class PositionMismatch(Exception):
    """The ast and libcst trees disagree; positions must come from libcst metadata."""


def _callee_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _cst_callee_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


class AstPositions:
    """Positions by category and source order, taken from `ast.parse`."""

    def __init__(self, source: str) -> None:
        tree = ast.parse(source)  # SyntaxError: caller falls back
        # Attributes and assignments are gathered in the same walk, sorted on first use:
        # few files need their positions.
        self._gathered: dict[type[ast.AST], list[ast.AST]] = {ast.Attribute: [], ast.Assign: []}
        self._collected: dict[type[ast.AST], list[ast.AST]] = {}
        self._lines = source.splitlines()
        found: dict[str, list[ast.AST]] = {c: [] for c in set(AST_CATEGORY.values())}
        found["decorator"] = []
        for node in ast.walk(tree):
            kind = type(node)
            category = AST_CATEGORY.get(kind)
            if category is not None:
                found[category].append(node)
            if kind in self._gathered:
                self._gathered[kind].append(node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found["decorator"].extend(node.decorator_list)
        self._nodes = {c: sorted(nodes, key=_source_order) for c, nodes in found.items()}
        self._next = {c: 0 for c in self._nodes}
        self._last_call: ast.Call | None = None
        self._last_subscript: ast.Subscript | None = None

    def take(self, node: cst.CSTNode) -> Span:
        """The span of `node`, the next node of its category in source order."""
        category = CST_CATEGORY[type(node)]
        index = self._next[category]
        nodes = self._nodes[category]
        if index >= len(nodes):
            raise PositionMismatch(category)
        self._next[category] = index + 1
        found = nodes[index]
        if (
            isinstance(node, cst.Call)
            and isinstance(found, ast.Call)
            and _cst_callee_name(node.func) != _callee_name(found.func)
        ):
            raise PositionMismatch("call")
        if isinstance(found, ast.Call):
            self._last_call = found
        if isinstance(found, ast.Subscript):
            self._last_subscript = found
        return self._span(found)

    def slice_of(self, node: cst.Subscript) -> Span | None:
        """Where the brackets of the subscript just taken open (`[` of `qs[a:b]`)."""
        found = self._last_subscript
        if found is None or found.value.end_lineno is None or found.value.end_col_offset is None:
            return None
        line = found.value.end_lineno
        text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
        offset = found.value.end_col_offset
        # The `[` follows the subscripted value, after any spaces.
        raw = text.encode("utf-8")
        while offset < len(raw) and raw[offset : offset + 1] in (b" ", b"\t"):
            offset += 1
        column = self._column(line, offset)
        return Span(line, column, line, column + 1)

    def method_name(self, node: cst.Call) -> Span | None:
        """Where the method name of the call just taken starts and ends (`.offset` in
        `q.filter(...).offset(n)`): a chained call's own span starts with its chain."""
        func = self._last_call.func if self._last_call is not None else None
        if not isinstance(func, ast.Attribute) or func.end_lineno is None or func.end_col_offset is None:
            return None
        end = self._column(func.end_lineno, func.end_col_offset)
        return Span(func.end_lineno, end - len(func.attr), func.end_lineno, end)

    def attribute(self, node: cst.Attribute, index: int) -> Span:
        """The span of the `index`-th attribute access of the module (in source order).
        Collected on first use: few files need an attribute's position."""
        found = self._lazy(ast.Attribute, index)
        if not isinstance(found, ast.Attribute) or found.attr != node.attr.value:
            raise PositionMismatch("attribute")
        return self._span(found)

    def assign(self, node: cst.Assign, index: int) -> Span:
        """The span of the `index`-th assignment statement of the module (class attributes)."""
        found = self._lazy(ast.Assign, index)
        if not isinstance(found, ast.Assign) or len(found.targets) != len(node.targets):
            raise PositionMismatch("assign")
        return self._span(found)

    def _lazy(self, kind: type[ast.AST], index: int) -> ast.AST | None:
        if kind not in self._collected:
            self._collected[kind] = sorted(self._gathered[kind], key=_source_order)
        nodes = self._collected[kind]
        return nodes[index] if index < len(nodes) else None

    def _column(self, line: int, byte_offset: int) -> int:
        # ast columns are UTF-8 byte offsets; users see characters.
        text = self._lines[line - 1] if 0 < line <= len(self._lines) else ""
        if text.isascii():
            return byte_offset + 1
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1

    def _span(self, node: ast.AST) -> Span:
        line = getattr(node, "lineno", 1)
        end_line = getattr(node, "end_lineno", None) or line
        return Span(
            line,
            self._column(line, getattr(node, "col_offset", 0)),
            end_line,
            self._column(end_line, getattr(node, "end_col_offset", None) or 0),
        )


def _source_order(node: ast.AST) -> tuple[int, int, int, int]:
    return (
        getattr(node, "lineno", 0),
        getattr(node, "col_offset", 0),
        -(getattr(node, "end_lineno", 0) or 0),
        -(getattr(node, "end_col_offset", 0) or 0),
    )


class MetadataPositions:
    """Fallback: libcst's own PositionProvider (slower, always right)."""

    def __init__(self, module: cst.Module) -> None:
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self._positions = wrapper.resolve(PositionProvider)

    def attribute(self, node: cst.Attribute, index: int) -> Span:
        return self.take(node)

    def assign(self, node: cst.Assign, index: int) -> Span:
        return self.take(node)

    def method_name(self, node: cst.Call) -> Span | None:
        return self.take(node.func.attr) if isinstance(node.func, cst.Attribute) else None

    def slice_of(self, node: cst.Subscript) -> Span | None:
        start = self.take(node.lbracket)
        return Span(start.line, start.column, start.line, start.column + 1)

    def take(self, node: cst.CSTNode) -> Span:
        pos = self._positions[node]
        return Span(pos.start.line, pos.start.column + 1, pos.end.line, pos.end.column + 1)
