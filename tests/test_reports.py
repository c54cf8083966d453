"""The report formats: the JSON contract, SARIF 2.1.0, GitHub annotations, the checklist.

Each test writes a small project to tmp_path and runs `scalelint check --format ...`
in-process (click's CliRunner) with the project as the current directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from sample_projects import CLEAN, DB_HELPER, HANDLER, MAIN_VIA_HELPER, make_project
from scalelint import __version__
from scalelint.report.github import escape_data, escape_property
from scalelint.rulebook import all_rules, checklist

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-schema-2.1.0.json"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "scale-patterns.md"

# A second handler module, so findings span files and lines for the sort order.
ORDERS = """\
import psycopg2
from fastapi import APIRouter

from app.db import get_conn

router = APIRouter()


@router.get("/orders")
def list_orders():
    conn = get_conn()
    cur = conn.cursor()
    cur.execute("SELECT id FROM orders LIMIT 50")
    for (oid,) in cur.fetchall():
        cur.execute("SELECT * FROM items WHERE order_id = %s LIMIT 20", (oid,))
    return []


@router.get("/orders/count")
def count_orders():
    conn = psycopg2.connect("dbname=app")
    return 0
"""

EIGHT_ITEMS = [
    "Single DB call per request?",
    "Using connection pool (not per-request)?",
    "Hot reads cached with TTL?",
    "Cache invalidated on writes?",
    "LIMIT + OFFSET on all lists?",
    "Indexes exist for query columns?",
    "AI/heavy processing via PGMQ?",
    "Response time < 100ms expected?",
]
POOL_ITEM = "Using connection pool (not per-request)?"
CACHE_ITEM = "Hot reads cached with TTL?"


@pytest.fixture
def cli(cli):
    """The shared `cli` fixture, checking that no run prints a traceback."""

    def invoke(*args: str) -> Result:
        result = cli(*args)
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def multi_file(tmp_path: Path) -> Path:
    return make_project(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/db.py": DB_HELPER,
            "app/main.py": MAIN_VIA_HELPER,
            "app/orders.py": ORDERS,
            "single.py": HANDLER,
        },
    )


def run_json(cli, *args: str) -> tuple[Result, dict[str, Any]]:
    result = cli("check", "--format", "json", *args)
    return result, json.loads(result.stdout)


# ---- json ----------------------------------------------------------------------------------

FINDING_KEYS = {
    "rule",
    "name",
    "severity",
    "path",
    "line",
    "column",
    "end_line",
    "end_column",
    "message",
    "checklist",
    "related",
}


def test_json_contract_keys_and_values(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result, data = run_json(cli)
    assert result.exit_code == 1
    assert set(data) == {"tool", "version", "findings", "summary"}
    assert data["tool"] == "scalelint"
    assert data["version"] == __version__
    assert set(data["summary"]) == {"files", "findings", "by_rule"}
    assert data["summary"] == {"files": 1, "findings": 2, "by_rule": {"SL101": 1, "SL601": 1}}
    for finding in data["findings"]:
        assert set(finding) == FINDING_KEYS
        for entry in finding["related"]:
            assert set(entry) == {"path", "line", "message"}
    sl101, sl601 = data["findings"]
    assert sl101["rule"] == "SL101"
    assert sl101["name"] == "per-request-connection"
    assert sl101["severity"] == "error"
    assert sl101["checklist"] == POOL_ITEM
    assert (sl101["path"], sl101["line"], sl101["column"], sl101["end_line"]) == ("main.py", 7, 12, 7)
    assert sl101["end_column"] == 12 + len('psycopg2.connect("dbname=app")')
    assert "psycopg2.connect" in sl101["message"]
    assert sl601["rule"] == "SL601"
    assert sl601["name"] == "n-plus-one"
    assert sl601["severity"] == "error"  # on a request path
    assert sl601["checklist"] == "Single DB call per request?"
    assert (sl601["path"], sl601["line"], sl601["column"]) == ("main.py", 11, 9)
    assert any(r["line"] == 10 for r in sl601["related"]), "the loop is a related location"


def test_json_findings_are_sorted_with_relative_posix_paths(multi_file: Path, cli) -> None:
    _, data = run_json(cli)
    found = data["findings"]
    keys = [(f["path"], f["line"], f["column"], f["rule"]) for f in found]
    assert keys == sorted(keys)
    assert {f["path"] for f in found} == {"app/db.py", "app/orders.py", "single.py"}
    for f in found:
        assert "\\" not in f["path"] and not f["path"].startswith(("/", "./"))
        assert f["line"] >= 1 and f["column"] >= 1
        assert (f["end_line"], f["end_column"]) >= (f["line"], f["column"])
        for r in f["related"]:
            assert "\\" not in r["path"] and not r["path"].startswith("/")
            assert r["line"] >= 1
            assert (multi_file / r["path"]).is_file()
    assert data["summary"]["files"] == 5
    assert data["summary"]["findings"] == len(found)
    assert sum(data["summary"]["by_rule"].values()) == len(found)
    assert list(data["summary"]["by_rule"]) == sorted(data["summary"]["by_rule"])


def test_json_related_carries_the_chain_across_files(multi_file: Path, cli) -> None:
    _, data = run_json(cli, "app/db.py")
    [finding] = data["findings"]
    assert (finding["rule"], finding["path"], finding["line"], finding["column"]) == (
        "SL101",
        "app/db.py",
        5,
        12,
    )
    # handler -> the get_conn() call site, through main.py's or orders.py's route.
    chains = {
        (("app/main.py", 9), ("app/main.py", 10)),
        (("app/orders.py", 10), ("app/orders.py", 11)),
    }
    assert tuple((r["path"], r["line"]) for r in finding["related"]) in chains
    assert all(r["message"] for r in finding["related"])


def test_json_column_is_one_based(tmp_path: Path, cli) -> None:
    # The connect call starts the line: column 1, not 0.
    source = HANDLER.replace(
        '    conn = psycopg2.connect("dbname=app")', '    psycopg2.connect("dbname=app")'
    )
    make_project(tmp_path, {"main.py": source})
    _, data = run_json(cli, "--select", "SL101")
    [finding] = data["findings"]
    assert (finding["line"], finding["column"]) == (7, 5)


def test_json_clean_project(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": CLEAN})
    result, data = run_json(cli)
    assert result.exit_code == 0
    assert data["findings"] == []
    assert data["summary"] == {"files": 1, "findings": 0, "by_rule": {}}


# ---- sarif ---------------------------------------------------------------------------------


def _sarif(cli, *args: str) -> dict[str, Any]:
    result = cli("check", "--format", "sarif", *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_sarif_validates_against_the_schema(multi_file: Path, cli) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    log = _sarif(cli)
    assert log["runs"][0]["results"], "validate a log that has results"
    jsonschema.validate(log, schema)
    make_project(multi_file / "clean", {"main.py": CLEAN})
    jsonschema.validate(_sarif(cli, "clean"), schema)


def test_sarif_locations_are_relative_to_srcroot(multi_file: Path, cli) -> None:
    log = _sarif(cli)
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert "%SRCROOT%" in run["originalUriBaseIds"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")
    for result in run["results"]:
        locations = result["locations"] + result.get("relatedLocations", [])
        for location in locations:
            artifact = location["physicalLocation"]["artifactLocation"]
            assert artifact["uriBaseId"] == "%SRCROOT%"
            assert not artifact["uri"].startswith(("/", "file:")) and "\\" not in artifact["uri"]
            assert (multi_file / artifact["uri"]).is_file()
    first = next(r for r in run["results"] if r["ruleId"] == "SL101")
    region = first["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] >= 1 and region["startColumn"] >= 1


def test_sarif_matches_the_json_findings(multi_file: Path, cli) -> None:
    _, data = run_json(cli)
    results = _sarif(cli)["runs"][0]["results"]
    as_sarif = [
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["locations"][0]["physicalLocation"]["region"]["startColumn"],
        )
        for r in results
    ]
    assert as_sarif == [(f["rule"], f["path"], f["line"], f["column"]) for f in data["findings"]]


def test_sarif_fingerprints_are_present_unique_and_stable(multi_file: Path, cli) -> None:
    first = _sarif(cli)["runs"][0]["results"]
    second = _sarif(cli)["runs"][0]["results"]
    prints = [r["partialFingerprints"] for r in first]
    assert all(p and all(isinstance(v, str) and v for v in p.values()) for p in prints)
    assert prints == [r["partialFingerprints"] for r in second]
    flat = [json.dumps(p, sort_keys=True) for p in prints]
    assert len(set(flat)) == len(flat), "two findings share a fingerprint"


def _fingerprints(
    cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, tuple[int, dict[str, str]]]:
    monkeypatch.chdir(project)
    return {
        r["ruleId"]: (r["locations"][0]["physicalLocation"]["region"]["startLine"], r["partialFingerprints"])
        for r in _sarif(cli)["runs"][0]["results"]
    }


def test_sarif_fingerprint_survives_moving_the_code(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same file before and after two lines are inserted above the code (two
    # checkouts of one repository): the lines move, the fingerprints do not.
    before = make_project(tmp_path / "before", {"main.py": HANDLER})
    after = make_project(tmp_path / "after", {"main.py": "# a comment that shifts every line\n\n" + HANDLER})
    old = _fingerprints(cli, before, monkeypatch)
    new = _fingerprints(cli, after, monkeypatch)
    assert old["SL101"][0] == 7 and new["SL101"][0] == 9
    assert {rule: prints for rule, (_, prints) in new.items()} == {
        rule: prints for rule, (_, prints) in old.items()
    }


def test_sarif_fingerprint_changes_with_the_code(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = make_project(tmp_path / "before", {"main.py": HANDLER})
    after = make_project(tmp_path / "after", {"main.py": HANDLER.replace("dbname=app", "dbname=crm")})
    old = _fingerprints(cli, before, monkeypatch)
    new = _fingerprints(cli, after, monkeypatch)
    assert old["SL101"][1] != new["SL101"][1]
    assert old["SL601"][1] == new["SL601"][1]


def test_second_run_in_one_process_sees_the_edited_file(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: source lines were once cached per process by path, so a second run
    # after an edit fingerprinted the old text.
    fresh = make_project(tmp_path / "fresh", {"main.py": "# a comment that shifts every line\n\n" + HANDLER})
    project = make_project(tmp_path / "edited", {"main.py": HANDLER})
    _fingerprints(cli, project, monkeypatch)
    (project / "main.py").write_text("# a comment that shifts every line\n\n" + HANDLER, encoding="utf-8")
    assert _fingerprints(cli, project, monkeypatch) == _fingerprints(cli, fresh, monkeypatch)


def test_sarif_driver_rules_cover_every_rule_with_help(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    listed = cli("rules")
    assert listed.exit_code == 0
    ids = [line.split()[0] for line in listed.stdout.splitlines()[1:] if line.strip()]
    assert "SL101" in ids and "SL601" in ids
    run = _sarif(cli)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    by_id = {rule["id"]: rule for rule in rules}
    assert set(ids) <= set(by_id)
    for rule_id in ids:
        help_ = by_id[rule_id].get("help", {})
        assert help_.get("text", "").strip(), f"{rule_id} has no help text"
    assert "Why it hurts at scale" in by_id["SL101"]["help"]["text"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


# ---- github --------------------------------------------------------------------------------

ANNOTATION = re.compile(
    r"^::(?P<level>error|warning|notice) file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+)"
    r"(?:,[A-Za-z]+=[^,:]*)*::(?P<message>.+)$"
)


def test_github_one_annotation_per_finding(multi_file: Path, cli) -> None:
    _, data = run_json(cli)
    result = cli("check", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(data["findings"])
    for line, finding in zip(lines, data["findings"], strict=True):
        match = ANNOTATION.match(line)
        assert match, line
        assert (
            match["level"] == {"error": "error", "warning": "warning", "info": "notice"}[finding["severity"]]
        )
        assert (match["file"], int(match["line"]), int(match["col"])) == (
            finding["path"],
            finding["line"],
            finding["column"],
        )
        assert finding["rule"] in line


def test_github_exact_first_annotation(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    line = cli("check", "--format", "github", "--select", "SL101").stdout.splitlines()[0]
    assert line.startswith("::error file=main.py,line=7,col=12,")
    assert "::`psycopg2.connect(...)`" in line


def test_github_clean_project_prints_nothing(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": CLEAN})
    result = cli("check", "--format", "github")
    assert result.exit_code == 0
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain text", "plain text"),
        ("100%", "100%25"),
        ("a\rb", "a%0Db"),
        ("a\nb", "a%0Ab"),
        ("a\r\nb", "a%0D%0Ab"),
        ("%0A", "%250A"),
        ("key: a, b", "key: a, b"),  # data keeps ':' and ','
    ],
)
def test_github_escape_data(text: str, escaped: str) -> None:
    assert escape_data(text) == escaped


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("app/views.py", "app/views.py"),
        ("C:\\a,b.py", "C%3A\\a%2Cb.py"),
        ("50%", "50%25"),
        ("a\r\nb", "a%0D%0Ab"),
        ("%3A:", "%253A%3A"),
        ("x,y:z%", "x%2Cy%3Az%25"),
    ],
)
def test_github_escape_property(text: str, escaped: str) -> None:
    assert escape_property(text) == escaped


def test_github_annotation_escapes_file_property(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"we,ird%dir/main.py": HANDLER})
    lines = cli("check", "--format", "github", "--select", "SL101").stdout.splitlines()
    assert lines and lines[0].startswith("::error file=we%2Cird%25dir/main.py,line=7,col=12,")


# ---- checklist -----------------------------------------------------------------------------

# The mark of each status; "not checked" is spelled NOT CHECKED (older builds: ----).
MARKS = {
    "FAIL": "FAIL",
    "PASS": "PASS",
    "PART": "PART",
    "PARTIAL": "PART",
    "NOT CHECKED": "NOT CHECKED",
    "----": "NOT CHECKED",
}
ROW = re.compile(r"^\s+(?P<mark>FAIL|PASS|PARTIAL|PART|NOT CHECKED|----)\s+(?P<rest>.+)$")


def checklist_rows(output: str) -> dict[str, tuple[str, str]]:
    """item text -> (normalised mark, detail) from the checklist report."""
    rows: dict[str, tuple[str, str]] = {}
    for line in output.splitlines()[1:]:
        match = ROW.match(line)
        assert match, line
        rest = match["rest"]
        item = next((i for i in EIGHT_ITEMS if rest.startswith(i)), None)
        assert item is not None, line
        rows[item] = (MARKS[match["mark"]], rest[len(item) :].strip())
    return rows


def _implemented(item_text: str) -> tuple[set[str], set[str]]:
    """(checked by default, not checked) rules of a checklist item: a rule without a
    page is planned, and one that is off by default does not check anything either."""
    item = next(i for i in checklist() if i.text == item_text)
    rules = set(item.rules or item.derived_from)
    on = {rule for rule in rules & set(all_rules()) if all_rules()[rule].default_enabled}
    return on, rules - on


def test_checklist_has_the_eight_items_in_the_seeds_order(tmp_path: Path, cli) -> None:
    if SEED.is_file():
        seed = re.findall(
            r"^- \[ \] (.+)$", SEED.read_text(encoding="utf-8").split("Scale Checklist", 1)[1], re.M
        )
        assert seed[:8] == EIGHT_ITEMS
    assert [item.text for item in checklist()] == EIGHT_ITEMS
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", "--format", "checklist")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "Scale Checklist (1 file checked)"
    assert list(checklist_rows(result.stdout)) == EIGHT_ITEMS


def test_checklist_fails_the_pool_item_with_a_count(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    rows = checklist_rows(cli("check", "--format", "checklist").stdout)
    mark, detail = rows[POOL_ITEM]
    assert mark == "FAIL"
    assert detail.startswith("1 finding") and "SL101" in detail
    assert rows["Single DB call per request?"][0] == "FAIL"
    assert "SL601" in rows["Single DB call per request?"][1]
    assert rows["Response time < 100ms expected?"][0] == "FAIL"  # derived from SL601


def test_checklist_never_passes_an_item_without_an_implemented_rule(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    rows = checklist_rows(cli("check", "--format", "checklist").stdout)
    unchecked = [text for text in EIGHT_ITEMS if not _implemented(text)[0]]
    for text in unchecked:
        assert rows[text][0] == "NOT CHECKED", text
    if CACHE_ITEM in unchecked:  # until SL202-SL206 exist
        assert "no rule" in rows[CACHE_ITEM][1]
    assert {rows[text][0] for text in unchecked} <= {"NOT CHECKED"}


def test_checklist_clean_project_is_partial_not_pass(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": CLEAN})
    result = cli("check", "--format", "checklist")
    assert result.exit_code == 0
    rows = checklist_rows(result.stdout)
    assert list(rows) == EIGHT_ITEMS
    assert "FAIL" not in {mark for mark, _ in rows.values()}
    implemented, planned = _implemented(POOL_ITEM)
    assert "SL101" in implemented
    if planned:  # SL102-SL106 are not implemented yet
        mark, detail = rows[POOL_ITEM]
        assert mark == "PART"
        assert "SL101" in detail and all(rule in detail for rule in planned)
    for text in EIGHT_ITEMS:
        implemented, planned = _implemented(text)
        expected = "NOT CHECKED" if not implemented else "PART" if planned else "PASS"
        assert rows[text][0] == expected, text


def test_checklist_respects_selection(tmp_path: Path, cli) -> None:
    # With SL1 ignored, the pool item has nothing enabled: not checked, not PASS.
    make_project(tmp_path, {"main.py": CLEAN})
    rows = checklist_rows(cli("check", "--format", "checklist", "--ignore", "SL1").stdout)
    assert rows[POOL_ITEM][0] == "NOT CHECKED"


@pytest.mark.parametrize("color", [False, True])
def test_text_prints_messages_as_written(tmp_path: Path, color: bool) -> None:
    # `:id:` is an emoji name to rich; a quoted query must not turn into a picture.
    from scalelint.engine import RunResult
    from scalelint.findings import Finding, Related, Severity, Span
    from scalelint.report.text import render

    message = "`db.execute('SELECT * FROM t WHERE id = :id:')` [bold]runs per row[/bold]"
    item = Finding(
        "SL601",
        "app.py",
        Span(3, 5, 3, 9),
        message,
        Severity.ERROR,
        (Related("repo.py", 7, "called :smile: here"),),
    )
    result = RunResult([item], 1, tmp_path, frozenset({"SL601"}), cwd=tmp_path)
    text = re.sub(r"\x1b\[[0-9;]*m", "", render(result, color=color))
    assert f"app.py:3:5: SL601 {message}\n" in text
    assert "  -> repo.py:7: called :smile: here\n" in text
    assert text.endswith("1 finding in 1 file (1 file checked)\n")
