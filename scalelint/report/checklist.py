"""The seed's Scale Checklist: each item pass / fail / partial / not checked."""

from __future__ import annotations

from collections import Counter

from rich.markup import escape

from scalelint.engine import RunResult
from scalelint.record import record
from scalelint.report import plural, recording_console
from scalelint.rulebook import ChecklistItem, checklist


@record
class ItemVerdict:
    item: ChecklistItem
    status: str  # fail | pass | partial | not checked
    findings: int
    checked_by: tuple[str, ...]
    planned: tuple[str, ...]


def verdicts(result: RunResult) -> list[ItemVerdict]:
    counts = Counter(f.rule for f in result.findings)
    out = []
    for item in checklist():
        rules = item.rules or item.derived_from
        checked = tuple(r for r in rules if r in result.enabled)
        planned = tuple(r for r in rules if r not in result.enabled)
        found = sum(counts[r] for r in rules)
        if found:
            status = "fail"
        elif not checked:
            status = "not checked"
        elif planned:
            status = "partial"
        else:
            status = "pass"
        out.append(ItemVerdict(item, status, found, checked, planned))
    return out


MARK = {
    "fail": "[red]FAIL       [/red]",
    "pass": "[green]PASS       [/green]",
    "partial": "[yellow]PARTIAL    [/yellow]",
    "not checked": "[dim]NOT CHECKED[/dim]",
}


def render(result: RunResult, color: bool) -> str:
    console = recording_console(color)
    console.print(f"Scale Checklist ({plural(result.files_checked, 'file')} checked)")
    for v in verdicts(result):
        if v.status == "fail":
            by_rule = Counter(
                f.rule for f in result.findings if f.rule in (v.item.rules or v.item.derived_from)
            )
            detail = (
                plural(v.findings, "finding")
                + " ("
                + ", ".join(f"{r} x{n}" for r, n in sorted(by_rule.items()))
                + ")"
            )
        elif v.status == "not checked":
            detail = "no rule for it is implemented or enabled yet"
        elif v.status == "partial":
            detail = f"no findings from {', '.join(v.checked_by)}; not checked yet: {', '.join(v.planned)}"
        else:
            detail = f"no findings from {', '.join(v.checked_by)}"
        console.print(f"  {MARK[v.status]}  {escape(v.item.text):<42} {escape(detail)}")
    return console.export_text(styles=color)
