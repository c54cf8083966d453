"""scalelint lints itself (its own source is a Python project like any other)."""

from __future__ import annotations

from fixture_projects import REPO
from scalelint.config import load_config
from scalelint.engine import run


def test_scalelint_source_is_clean_under_scalelint() -> None:
    config = load_config(REPO)
    result = run([REPO / "scalelint"], config, cwd=REPO)
    assert result.files_checked >= 20
    assert result.findings == []
    assert result.warnings == []
