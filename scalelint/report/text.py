"""ruff-like text: `path:line:col: SL601 message`, a code frame on a terminal, a summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from scalelint.engine import RunResult
from scalelint.findings import Severity
from scalelint.report import plural, recording_console

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def summary(result: RunResult) -> str:
    checked = f"({plural(result.files_checked, 'file')} checked)"
    if not result.findings:
        return f"No findings {checked}"
    files = len({f.path for f in result.findings})
    return f"{plural(len(result.findings), 'finding')} in {plural(files, 'file')} {checked}"


def render(result: RunResult, color: bool) -> str:
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


def _code_frame(
    console: Console, result: RunResult, path: str, line: int, column: int, end: int | None
) -> None:
    text = result.source_line(path, line)
    if text is None:
        return
    gutter = f"{line:>5} | "
    console.print(f"[dim]{gutter}[/dim]{escape(text)}")
    width = max(1, (end or len(text) + 1) - column)
    console.print(" " * (len(gutter) + column - 1) + f"[red]{'^' * min(width, 120)}[/red]")
