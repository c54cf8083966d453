"""Rule pages are the single source of rule docs: well-formed, and their examples true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fixture_projects import check_project
from scalelint.checks import load_checks
from scalelint.rulebook import all_rules, checklist

SECTIONS = ("What it does", "Why it hurts at scale", "Example", "Use instead")
RULES_WITH_EXAMPLES = [r for r in all_rules().values() if r.id != "SL000"]


# A code block becomes a file of the kind its fence names.
FILE_FOR = {"python": "app.py", "ini": "pgbouncer.ini", "sql": "schema.sql"}


# A block whose first line is `-- file: migrations/002_index.sql` (or `# file: ...`) is a
# file of one project made of every such block of its section: the way to show an
# example that needs two files (a migration after the one that created the table).
FILE_MARKER = re.compile(r"^(?:--|#)\s*file:\s*(\S+)\s*\n")


def _projects(blocks: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The projects a section's blocks make: one per plain block, one for all marked blocks."""
    projects: list[dict[str, str]] = []
    together: dict[str, str] = {}
    for lang, code in blocks:
        marker = FILE_MARKER.match(code)
        if marker:
            together[marker.group(1)] = code[marker.end() :]
        else:
            projects.append({FILE_FOR[lang]: code})
    if together:
        projects.append(together)
    return projects


def _findings_for(tmp_path: Path, rule_id: str, files: dict[str, str], name: str) -> list[str]:
    project = tmp_path / name
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.scalelint]\n")
    for relative, code in files.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(code)
    result = check_project(project, select=(rule_id,))
    return [f"{f.path}:{f.span.line} {f.rule}" for f in result.findings]


@pytest.mark.parametrize("rule", list(all_rules().values()), ids=lambda r: r.id)
def test_page_is_complete(rule) -> None:
    assert rule.page_path.stem == rule.id
    assert rule.name == rule.name.lower() and " " not in rule.name
    assert rule.summary
    assert rule.section("What it does")
    if rule.id != "SL000":
        for heading in SECTIONS:
            assert rule.section(heading), f"{rule.id} lacks '## {heading}'"
        items = {item.text for item in checklist()}
        assert rule.checklist in items


@pytest.mark.parametrize("rule", RULES_WITH_EXAMPLES, ids=lambda r: r.id)
def test_example_triggers_the_rule(rule, tmp_path: Path) -> None:
    blocks = [(lang, code) for lang, code in rule.code_blocks("Example") if lang in FILE_FOR]
    assert blocks
    for index, files in enumerate(_projects(blocks)):
        assert _findings_for(tmp_path, rule.id, files, f"example{index}"), files


@pytest.mark.parametrize("rule", RULES_WITH_EXAMPLES, ids=lambda r: r.id)
def test_use_instead_does_not_trigger(rule, tmp_path: Path) -> None:
    blocks = [(lang, code) for lang, code in rule.code_blocks("Use instead") if lang in FILE_FOR]
    assert blocks
    for index, files in enumerate(_projects(blocks)):
        assert _findings_for(tmp_path, rule.id, files, f"fixed{index}") == [], files


def test_every_check_has_a_page_and_every_stable_page_a_check() -> None:
    checks = set(load_checks())
    pages = {r.id for r in all_rules().values() if r.status == "stable"}
    assert checks == pages


def test_readme_rules_table_lists_every_rule() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for rule in all_rules().values():
        assert f"| {rule.id} | {rule.name} |" in readme
