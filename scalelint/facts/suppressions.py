"""Suppression comments: `# noqa`, `# noqa: SL601`, `# scalelint: ignore[SL601]`, `-- noqa`."""

from __future__ import annotations

import re

from scalelint.facts.model import Suppression

_PY = re.compile(
    r"#\s*(?:noqa(?P<noqa>\s*:\s*[A-Za-z0-9_, ]+)?|scalelint:\s*ignore\[(?P<ids>[^\]]*)\])",
    re.I,
)
_SQL = re.compile(r"--\s*noqa(?P<noqa>\s*:\s*[A-Za-z0-9_, ]+)?", re.I)
_CONFIG = re.compile(r"[#;]\s*noqa(?P<noqa>\s*:\s*[A-Za-z0-9_, ]+)?", re.I)


def _codes(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    return frozenset(c.strip().upper() for c in re.split(r"[,\s]+", text.lstrip(" :")) if c.strip())


def _scan(source: str, pattern: re.Pattern[str], marker: str) -> tuple[Suppression, ...]:
    if marker not in source.lower() and "scalelint" not in source:
        return ()
    found: list[Suppression] = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in pattern.finditer(line):
            ids = match.groupdict().get("ids")
            codes = _codes(ids if ids is not None else match.group("noqa"))
            if ids is not None and not codes:
                continue  # `scalelint: ignore[]` names nothing
            found.append((number, codes))
    return tuple(found)


def python_suppressions(source: str) -> tuple[Suppression, ...]:
    """Suppressions in a Python file, by line."""
    return _scan(source, _PY, "noqa")


def sql_suppressions(source: str) -> tuple[Suppression, ...]:
    """Suppressions in an SQL file, by line."""
    return _scan(source, _SQL, "noqa")


def is_suppressed(rule: str, codes: frozenset[str]) -> bool:
    """True when a suppression's codes (empty: all) cover `rule` (ids or prefixes)."""
    return not codes or any(rule.startswith(code) for code in codes)


def config_suppressions(source: str) -> tuple[Suppression, ...]:
    """Suppressions in a config file (`# noqa` or `; noqa`), by line."""
    return _scan(source, _CONFIG, "noqa")
