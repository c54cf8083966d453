"""A read-only traversal of a libcst tree, several times cheaper than `Module.visit`.

`CSTNode.visit` rebuilds every node it passes (a dataclass construction and
validation per node) so that transformers can replace children; a visitor that only
reads pays for that too. This walk calls the same `on_visit`/`on_leave` hooks in the
same order, without rebuilding anything and without descending into whitespace,
comments and punctuation.

The order of a node's children is the order libcst's own
`_visit_and_replace_children` visits them (source order), read once per node type;
facts rely on it (positions are matched to nodes in source order).
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import libcst as cst

_CHILD = re.compile(r"(\w+)=visit_")
_SKIPPED_FIELD = re.compile(
    r"^(whitespace|lpar$|rpar$|leading_lines$|lines_after|header$|footer$|comma$|semicolon$"
    r"|equal$|colon$|dot$|lbrace$|rbrace$|lbracket$|rbracket$|first_line|empty_lines|"
    r"trailing_whitespace|newline$|indent$)"
)
_ORDER: dict[type[cst.CSTNode], tuple[str, ...]] = {}


def child_fields(node_type: type[cst.CSTNode]) -> tuple[str, ...]:
    """The fields of a node type that can hold code, in the order libcst visits them."""
    fields = _ORDER.get(node_type)
    if fields is None:
        declared = [f.name for f in dataclasses.fields(node_type)]
        try:
            source = inspect.getsource(node_type._visit_and_replace_children)
            ordered = [name for name in _CHILD.findall(source) if name in declared]
        except (OSError, TypeError):
            ordered = []
        ordered += [name for name in declared if name not in ordered]
        fields = tuple(name for name in ordered if not _SKIPPED_FIELD.match(name))
        _ORDER[node_type] = fields
    return fields


_IS_NODE: dict[type, bool] = {}


def _is_node(value_type: type) -> bool:
    # CSTNode is an ABC: isinstance() on it is slow, a per-type answer is not.
    known = _IS_NODE.get(value_type)
    if known is None:
        known = _IS_NODE[value_type] = issubclass(value_type, cst.CSTNode)
    return known


def walk(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """Call `visitor.on_visit`/`on_leave` on `node` and its code-bearing descendants."""
    if visitor.on_visit(node):
        for name in child_fields(type(node)):
            value = getattr(node, name)
            value_type = type(value)
            if value_type is list or value_type is tuple:
                for item in value:
                    if _is_node(type(item)):
                        walk(item, visitor)
            elif _is_node(value_type):
                walk(value, visitor)
    visitor.on_leave(node)
