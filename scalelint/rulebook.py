"""The rule pages in rules/ and the Scale Checklist: rule metadata as data.

Each rule page `rules/SLnnn.md` starts with TOML front matter between `+++` lines
(id, name, family, severity, checklist, summary) followed by fixed Markdown
sections. The same page feeds `scalelint rules`, `scalelint explain`, SARIF help
and the doc-example tests.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

from scalelint.findings import Severity
from scalelint.record import record

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _find_rules_dir() -> Path:
    here = Path(__file__).resolve().parent
    # In a wheel the pages are shipped inside the package; in a source checkout
    # (including an editable install) they sit at the repository root.
    for candidate in (here / "rules", here.parent / "rules"):
        if (candidate / "checklist.toml").is_file():
            return candidate
    raise RuntimeError(f"scalelint's rules/ folder is missing (looked beside {here})")


RULES_DIR = _find_rules_dir()
FRONT_MATTER = re.compile(r"\A\+\+\+\n(.*?)\n\+\+\+\n?(.*)\Z", re.S)
SECTION = re.compile(r"^## (.+)$", re.M)


@record
class RuleMeta:
    """A rule's identity and documentation, read from its page."""

    id: str
    name: str
    family: str
    severity: Severity
    checklist: str
    summary: str
    body: str
    status: str = "stable"
    default_enabled: bool = True

    @property
    def page_path(self) -> Path:
        return RULES_DIR / f"{self.id}.md"

    def section(self, heading: str) -> str:
        """The text under `## heading` (up to the next `## `), or ''."""
        parts = SECTION.split(self.body)
        for title, text in zip(parts[1::2], parts[2::2], strict=False):
            if title.strip().lower() == heading.lower():
                return text.strip()
        return ""

    def code_blocks(self, heading: str) -> list[tuple[str, str]]:
        """(language, code) of each fenced block in a section."""
        return [
            (m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", self.section(heading), re.S)
        ]


@record
class ChecklistItem:
    """One line of the seed's Scale Checklist and the rules that check it."""

    key: str
    text: str
    rules: tuple[str, ...]
    derived_from: tuple[str, ...] = ()


def parse_page(text: str, source: str) -> RuleMeta:
    match = FRONT_MATTER.match(text)
    if not match:
        raise ValueError(f"{source}: rule page must start with +++ front matter")
    meta = tomllib.loads(match.group(1))
    return RuleMeta(
        id=meta["id"],
        name=meta["name"],
        family=meta["family"],
        severity=Severity.parse(meta["severity"]),
        checklist=meta["checklist"],
        summary=meta["summary"],
        body=match.group(2),
        status=meta.get("status", "stable"),
        default_enabled=meta.get("default", True),
    )


@cache
def all_rules() -> dict[str, RuleMeta]:
    """Every documented rule, by id, in id order."""
    pages = sorted(RULES_DIR.glob("SL*.md"))
    rules = [parse_page(p.read_text(encoding="utf-8"), p.name) for p in pages]
    return {r.id: r for r in rules}


@cache
def checklist() -> tuple[ChecklistItem, ...]:
    """The eight items of the Scale Checklist, in the seed's order."""
    data = tomllib.loads((RULES_DIR / "checklist.toml").read_text(encoding="utf-8"))
    return tuple(
        ChecklistItem(
            key=item["key"],
            text=item["text"],
            rules=tuple(item.get("rules", ())),
            derived_from=tuple(item.get("derived-from", ())),
        )
        for item in data["item"]
    )
