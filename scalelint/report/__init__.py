"""Reporters: each turns a RunResult into text. They format; they never decide."""

from __future__ import annotations

import io
from collections.abc import Callable

from rich.console import Console

from scalelint.engine import RunResult

Reporter = Callable[[RunResult, bool], str]


def reporters() -> dict[str, Reporter]:
    """Format name -> render(result, color)."""
    from scalelint.report import checklist, github, json, sarif, text

    return {
        "text": text.render,
        "json": json.render,
        "sarif": sarif.render,
        "github": github.render,
        "checklist": checklist.render,
    }


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def recording_console(color: bool) -> Console:
    """A console that only records; `export_text(styles=color)` gives the report."""
    return Console(
        record=True,
        force_terminal=color,
        no_color=not color,
        width=200,
        file=io.StringIO(),
        highlight=False,
        soft_wrap=True,
    )
