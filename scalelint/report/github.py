"""GitHub Actions workflow commands: one `::error file=...::message` line per finding."""

from __future__ import annotations

from scalelint.engine import RunResult
from scalelint.findings import Severity
from scalelint.rulebook import all_rules

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(result: RunResult, color: bool) -> str:
    rules = all_rules()
    lines = []
    for f in result.findings:
        properties = ",".join(
            f"{key}={escape_property(str(value))}"
            for key, value in (
                ("file", f.path),
                ("line", f.span.line),
                ("col", f.span.column),
                ("endLine", f.span.end_line),
                ("endColumn", f.span.end_column),
                ("title", f"{f.rule} {rules[f.rule].name}"),
            )
        )
        lines.append(f"::{LEVEL[f.severity]} {properties}::{escape_data(f.message)}")
    return "".join(line + "\n" for line in lines)
