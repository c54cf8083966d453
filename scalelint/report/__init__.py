"""Reporters: each turns a RunResult into text. They format; they never decide."""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from scalelint.engine import RunResult

Reporter = Callable[["RunResult", bool], str]
FORMATS = ("text", "json", "sarif", "github", "checklist")  # each a module of this package


def reporter(name: str) -> Reporter:
    """render(result, color) of one format; only its module is imported."""
    if name not in FORMATS:
        raise KeyError(name)
    render: Reporter = importlib.import_module(f"scalelint.report.{name}").render
    return render


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def recording_console(color: bool) -> Console:
    """A console that only records; `export_text(styles=color)` gives the report."""
    from rich.console import Console

    return Console(
        record=True,
        force_terminal=color,
        no_color=not color,
        width=200,
        file=io.StringIO(),
        highlight=False,
        soft_wrap=True,
        emoji=False,  # `:id:` in a quoted query stays as written
    )
