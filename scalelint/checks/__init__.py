"""Checks: small queries over the ProjectModel, registered by rule id."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from scalelint.config import Config
from scalelint.facts.model import Attr, CallResult, Const, Global, Imported, Opaque, Value
from scalelint.findings import Edit, Finding, Related, Severity, Span
from scalelint.project import Operation, ProjectModel
from scalelint.request_path_types import FuncRef
from scalelint.rulebook import all_rules

CheckFunction = Callable[[ProjectModel, Config], Iterator[Finding]]
CHECKS: dict[str, CheckFunction] = {}


def check(rule_id: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check for a rule that has a page in rules/."""

    def register(function: CheckFunction) -> CheckFunction:
        if rule_id not in all_rules():
            raise RuntimeError(f"check {function.__name__} names {rule_id}, which has no rule page")
        CHECKS[rule_id] = function
        return function

    return register


def finding(
    rule_id: str,
    path: str,
    span: Span,
    message: str,
    related: tuple[Related, ...] = (),
    severity: Severity | None = None,
    fixes: tuple[Edit, ...] = (),
) -> Finding:
    """A finding with the rule's default severity unless one is given."""
    return Finding(
        rule=rule_id,
        path=path,
        span=span,
        message=message,
        severity=severity or all_rules()[rule_id].severity,
        related=related,
        fixes=fixes,
    )


def at_operation(
    rule_id: str,
    project: ProjectModel,
    op: Operation,
    message: str,
    related: tuple[Related, ...] | None = None,
    severity: Severity | None = None,
) -> Finding:
    """A finding at an operation's call; `related` defaults to its request chain, if any."""
    if related is None:
        related = request_chain(project, op.function) if op.function in project.request_path else ()
    return finding(rule_id, project.path_of(op.function), op.site.span, message, related, severity)


def request_chain(project: ProjectModel, function: FuncRef) -> tuple[Related, ...]:
    """Related locations from the handler down to `function`: how a request gets there."""
    handler, chain = project.request_path[function]
    start = project.functions[handler.function]
    steps = [
        Related(
            project.path_of(handler.function),
            start.span.line,
            f"{handler.label} is handled by `{handler.function.qualname}`",
        )
    ]
    for step in chain:
        steps.append(Related(project.step_path(step), step.site.span.line, f"calls `{step.site.text}`"))
    return tuple(steps)


def reached_from(project: ProjectModel, function: FuncRef) -> str:
    """` (reached from GET /x → handler → helper)`, or '' for a handler itself."""
    handler, chain = project.request_path[function]
    if not chain:
        return ""
    names = [step.caller.qualname for step in chain] + [function.qualname]
    if f"`{names[0]}`" in handler.label:
        names = names[1:]  # a view label already names its method
    return f" (reached from {handler.label} → " + " → ".join(names) + ")"


def value_text(value: Value | None) -> str:
    """A short name for a value, to read a URL's origin: `settings.WEBHOOK_URL`."""
    if isinstance(value, Const):
        return f"{value.origin} = {value.value}" if value.origin else str(value.value)
    if isinstance(value, (Global, Opaque)):
        return value.name if isinstance(value, Global) else value.text
    if isinstance(value, Imported):
        return value.dotted
    if isinstance(value, Attr):
        return f"{value_text(value.base)}.{value.attr}"
    if isinstance(value, CallResult):
        return f"{value_text(value.callee)}()"
    return ""


def load_checks() -> dict[str, CheckFunction]:
    """Import every family module so that its checks register themselves."""
    from scalelint.checks import (  # noqa: F401
        caching,
        connections,
        hot_reads,
        indexes,
        pagination,
        parse_errors,
        query_budget,
        rls,
        sync_work,
    )

    return CHECKS
