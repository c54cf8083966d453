"""Shared by the tests: the annotated fixture projects and how to run scalelint on one."""

from __future__ import annotations

import re
from pathlib import Path

from scalelint.config import load_config
from scalelint.engine import RunResult, run
from scalelint.facts.deploy import is_config_file

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
EXPECT = re.compile(r"(?:#|--)\s*expect:\s*(SL\d{3}(?:\s*,\s*SL\d{3})*)")

Expectation = tuple[str, int, str]


def fixture_projects() -> list[Path]:
    """Every fixture project: a folder two levels below fixtures/ (group/scenario)."""
    return sorted(p for p in FIXTURES.glob("*/*") if p.is_dir())


def expectations(project: Path) -> set[Expectation]:
    """(path, line, rule) for every `# expect:` / `-- expect:` annotation in a project."""
    found: set[Expectation] = set()
    for path in sorted(project.rglob("*")):
        if path.suffix not in (".py", ".sql") and not is_config_file(path.name):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            match = EXPECT.search(line)
            if match:
                for rule in match.group(1).split(","):
                    found.add((path.relative_to(project).as_posix(), number, rule.strip()))
    return found


def check_project(project: Path, **overrides: object) -> RunResult:
    config = load_config(project)
    for key, value in overrides.items():
        setattr(config, key, value)
    return run([project], config, cwd=project)


def found(result: RunResult) -> set[Expectation]:
    return {(f.path, f.span.line, f.rule) for f in result.findings}
