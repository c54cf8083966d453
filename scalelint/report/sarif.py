"""SARIF 2.1.0 for code-scanning dashboards: rules with their pages, relative URIs."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from scalelint import __version__
from scalelint.engine import RunResult
from scalelint.findings import Finding, Severity
from scalelint.rulebook import RuleMeta, all_rules

LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
BASE = "%SRCROOT%"


def _location(
    path: str,
    line: int,
    column: int | None = None,
    end_line: int | None = None,
    end_column: int | None = None,
) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": line}
    if column is not None:
        region["startColumn"] = column
    if end_line is not None:
        region["endLine"] = end_line
    if end_column is not None:
        region["endColumn"] = end_column
    return {"physicalLocation": {"artifactLocation": {"uri": path, "uriBaseId": BASE}, "region": region}}


def _rule(meta: RuleMeta) -> dict[str, Any]:
    return {
        "id": meta.id,
        "name": meta.name,
        "shortDescription": {"text": meta.summary},
        "fullDescription": {"text": meta.section("What it does") or meta.summary},
        "help": {"text": meta.body.strip(), "markdown": meta.body.strip()},
        "defaultConfiguration": {"level": LEVEL[meta.severity]},
        "properties": {"tags": ["scale", meta.family], "checklist": meta.checklist},
    }


def _fingerprint(result: RunResult, finding: Finding, occurrence: int) -> str:
    # Keyed on the line's text, not its number, so moving code does not reopen alerts.
    text = (result.source_line(finding.path, finding.span.line) or "").strip()
    raw = f"{finding.rule}\0{finding.path}\0{text}\0{occurrence}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def as_dict(result: RunResult) -> dict[str, Any]:
    rules = all_rules()
    ordered = list(rules.values())
    index = {meta.id: i for i, meta in enumerate(ordered)}
    seen: Counter[tuple[str, str, str]] = Counter()
    results = []
    for f in result.findings:
        key = (f.rule, f.path, (result.source_line(f.path, f.span.line) or "").strip())
        seen[key] += 1
        entry: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [_location(f.path, f.span.line, f.span.column, f.span.end_line, f.span.end_column)],
            "partialFingerprints": {"scalelint/v1": _fingerprint(result, f, seen[key])},
        }
        if f.related:
            entry["relatedLocations"] = [
                {**_location(r.path, r.line), "id": i, "message": {"text": r.message}}
                for i, r in enumerate(f.related)
            ]
        results.append(entry)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "scalelint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": "https://pypi.org/project/scalelint/",
                        "rules": [_rule(meta) for meta in ordered],
                    }
                },
                "originalUriBaseIds": {BASE: {"uri": result.cwd_uri}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(result: RunResult, color: bool) -> str:
    return json.dumps(as_dict(result), indent=2) + "\n"
