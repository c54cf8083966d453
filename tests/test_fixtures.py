"""Every fixture project yields exactly the findings its `# expect:` comments name."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixture_projects import FIXTURES, check_project, expectations, fixture_projects, found


@pytest.mark.parametrize("project", fixture_projects(), ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_fixture_findings_match_annotations(project: Path) -> None:
    expected = expectations(project)
    actual = found(check_project(project))
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected)
    assert not missing and not unexpected, f"missing: {missing}\nunexpected: {unexpected}"


def test_every_implemented_rule_has_positive_fixtures() -> None:
    from scalelint.checks import load_checks

    annotated = {rule for p in fixture_projects() for _, _, rule in expectations(p)}
    assert set(load_checks()) - {"SL000"} <= annotated


def test_loop_messages_say_hoist_fan_out_and_the_chain() -> None:
    result = check_project(FIXTURES / "n_plus_one" / "loop_shapes")
    by_line = {f.span.line: f.message for f in result.findings if f.rule == "SL601"}
    assert "hoist it above the loop" in by_line[79]  # current_settings() with no loop input
    assert "hoist it above the loop" in by_line[88]  # constant SQL
    assert "hoist" not in by_line[38] and "fetch them in one query" in by_line[38]
    assert "(through load_customer: `cur.execute(...)` at reports.py:18)" in by_line[38]
    assert "all at once" in by_line[54] and "holding N connections" in by_line[54]
