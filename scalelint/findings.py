"""What a check reports: a Finding at a location, with related locations."""

from __future__ import annotations

from dataclasses import field
from enum import IntEnum

from scalelint.record import record


class Severity(IntEnum):
    """Ordered so that `severity >= fail_on` decides the exit code."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@record
class Span:
    """A source range; lines and columns are 1-based, end column exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@record
class Related:
    """A secondary location that explains a finding (a chain step, the query)."""

    path: str
    line: int
    message: str


@record
class Edit:
    """A safe fix: replace characters `start:end` of a file's text (root-relative path),
    or, when `line` is set, insert at that line and column (1-based). `before` / `after`
    are the text that must surround the place, or the edit is dropped as stale."""

    path: str
    start: int
    end: int
    replacement: str
    line: int = 0
    column: int = 0
    before: str = ""
    after: str = ""


@record
class Finding:
    """One reported problem. `path` is relative to the project root, POSIX style."""

    rule: str
    path: str
    span: Span
    message: str
    severity: Severity
    related: tuple[Related, ...] = field(default=())
    fixes: tuple[Edit, ...] = field(default=())

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.span.line, self.span.column, self.rule)
