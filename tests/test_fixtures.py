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
