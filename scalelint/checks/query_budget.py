"""SL6 query budget: queries that run once per row instead of once per request."""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding, request_chain
from scalelint.config import Config
from scalelint.findings import Finding, Related, Severity
from scalelint.project import ProjectModel


@check("SL601")
def n_plus_one(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "db.query" or project.routing.one_off(op.function):
            continue
        loop = next((loop for loop in reversed(op.site.loops) if loop.per_item), None)
        if loop is None:
            continue
        message = (
            f"`{op.site.text}` runs a query on every iteration of the {loop.kind} loop over "
            f"`{loop.iter_text}` (line {loop.line}): N rows cost N database round trips; fetch "
            "them in one query before the loop (a JOIN, `WHERE id = ANY(...)`, "
            "`select_related`/`prefetch_related`, `selectinload`)"
        )
        on_request_path = op.function in project.request_path
        related: tuple[Related, ...] = (Related(project.path_of(op.function), loop.line, "the loop"),)
        if on_request_path:
            related += request_chain(project, op.function)
        yield finding(
            "SL601",
            project.path_of(op.function),
            op.site.span,
            message,
            related,
            severity=Severity.ERROR if on_request_path else None,
        )
