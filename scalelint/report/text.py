"""ruff-like text: `path:line:col: SL601 message`, a code frame on a terminal, a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelint.engine import RunResult
from scalelint.findings import Severity
from scalelint.report import plural, recording_console

if TYPE_CHECKING:
    from rich.console import Console

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def summary(result: RunResult) -> str:
    checked = f"({plural(result.files_checked, 'file')} checked)"
    if not result.findings:
        return f"No findings {checked}"
    files = len({f.path for f in result.findings})
    return f"{plural(len(result.findings), 'finding')} in {plural(files, 'file')} {checked}"


def render(result: RunResult, color: bool) -> str:
    if not color:
        return _plain(result)
    from rich.markup import escape

    console = recording_console(color)
    for item in result.findings:
        where = f"{item.path}:{item.span.line}:{item.span.column}:"
        console.print(
            f"[bold]{escape(where)}[/bold] [{STYLE[item.severity]}]{item.rule}[/] {escape(item.message)}"
        )
        if color:
            _code_frame(
                console,
                result,
                item.path,
                item.span.line,
                item.span.column,
                item.span.end_column if item.span.end_line == item.span.line else None,
            )
        for related in item.related:
            console.print(f"  [dim]-> {escape(related.path)}:{related.line}: {escape(related.message)}[/dim]")
    console.print(summary(result))
    return console.export_text(styles=color)


def _plain(result: RunResult) -> str:
    """The report without colours or code frames: no console needed, messages as written."""
    lines = []
    for item in result.findings:
        lines.append(f"{item.path}:{item.span.line}:{item.span.column}: {item.rule} {item.message}")
        lines.extend(f"  -> {related.path}:{related.line}: {related.message}" for related in item.related)
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def _code_frame(
    console: Console, result: RunResult, path: str, line: int, column: int, end: int | None
) -> None:
    from rich.markup import escape

    text = result.source_line(path, line)
    if text is None:
        return
    gutter = f"{line:>5} | "
    console.print(f"[dim]{gutter}[/dim]{escape(text)}")
    width = max(1, (end or len(text) + 1) - column)
    console.print(" " * (len(gutter) + column - 1) + f"[red]{'^' * min(width, 120)}[/red]")
