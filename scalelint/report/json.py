"""The JSON contract of DESIGN.md: findings and a summary, stable keys."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from scalelint import __version__
from scalelint.engine import RunResult
from scalelint.rulebook import all_rules


def as_dict(result: RunResult) -> dict[str, Any]:
    rules = all_rules()
    findings = [
        {
            "rule": f.rule,
            "name": rules[f.rule].name,
            "severity": f.severity.label,
            "path": f.path,
            "line": f.span.line,
            "column": f.span.column,
            "end_line": f.span.end_line,
            "end_column": f.span.end_column,
            "message": f.message,
            "checklist": rules[f.rule].checklist,
            "related": [{"path": r.path, "line": r.line, "message": r.message} for r in f.related],
        }
        for f in result.findings
    ]
    by_rule = Counter(f.rule for f in result.findings)
    return {
        "tool": "scalelint",
        "version": __version__,
        "findings": findings,
        "summary": {
            "files": result.files_checked,
            "findings": len(findings),
            "by_rule": dict(sorted(by_rule.items())),
        },
    }


def render(result: RunResult, color: bool) -> str:
    return json.dumps(as_dict(result), indent=2) + "\n"
