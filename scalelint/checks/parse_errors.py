"""SL000: a file that could not be analysed is reported, never silently skipped."""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding
from scalelint.config import Config
from scalelint.findings import Finding, Span
from scalelint.project import ProjectModel


@check("SL000")
def parse_error(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for facts in project.files.values():
        error = facts.parse_error
        if error is not None:
            span = Span(error.line, error.column, error.line, error.column)
            yield finding("SL000", facts.path, span, f"could not be parsed: {error.message}")
