"""A string fact that keeps what was interpolated into it.

Kept apart from `python.py` so that reading cached facts (and the checks that look at
holes) never imports libcst.
"""

from __future__ import annotations

from scalelint.facts.model import Const, Value
from scalelint.record import record


@record(eq=False)
class FormattedText(Const):
    """A string built from parts (f-string, `+`, `%`): a `Const` of its text, holes
    replaced by the placeholder, that also keeps the values in the holes, in order (None
    for one phase 1 cannot describe). Compares and hashes as the plain `Const`."""

    holes: tuple[Value | None, ...] = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Const) and self.value == other.value

    def __hash__(self) -> int:
        return hash((self.value,))
