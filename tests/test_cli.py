"""The command line as users and CI see it: exit codes, output, config errors, bad input.

Every test builds a small project in tmp_path (a pyproject.toml with [tool.scalelint]
and a few Python files) and runs `scalelint` in-process through click's CliRunner
with the project as the current directory; one smoke test runs `python -m scalelint`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from sample_projects import CLEAN, DB_HELPER, HANDLER, MAIN_VIA_HELPER, SL101_AT, SL601_AT, make_project
from scalelint import __version__

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FINDING_LINE = re.compile(
    r"^(?P<path>[^:\s]+):(?P<line>\d+):(?P<col>\d+): (?P<rule>SL\d{3}) (?P<message>.+)$"
)

# The loop of HANDLER in a nightly job that no handler reaches: SL601 at warning severity.
JOB = """\
import psycopg2


def export_notes():
    conn = psycopg2.connect("dbname=app")
    cur = conn.cursor()
    cur.execute("SELECT id FROM contacts LIMIT 50")
    for (cid,) in cur.fetchall():
        cur.execute("SELECT * FROM notes WHERE contact_id = %s LIMIT 20", (cid,))
"""


def findings(output: str) -> list[tuple[str, int, int, str]]:
    """(path, line, column, rule) of every finding line of the text format."""
    return [
        (m["path"], int(m["line"]), int(m["col"]), m["rule"])
        for m in map(FINDING_LINE.match, output.splitlines())
        if m
    ]


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def assert_usage_error(result: Result, *fragments: str) -> None:
    """Exit 2, one `scalelint: error:` line on stderr naming the fragments, no traceback."""
    assert result.exit_code == EXIT_ERROR, result.output
    assert_no_traceback(result)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("scalelint: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---- text format and exit codes -------------------------------------------------------


def test_text_format_lists_findings_and_summary(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check")
    assert result.exit_code == EXIT_FINDINGS, result.output
    assert findings(result.stdout) == [
        ("main.py", *SL101_AT, "SL101"),
        ("main.py", *SL601_AT, "SL601"),
    ]
    first = next(line for line in result.stdout.splitlines() if FINDING_LINE.match(line))
    assert first.startswith("main.py:7:12: SL101 `psycopg2.connect")
    assert result.stdout.splitlines()[-1] == "2 findings in 1 file (1 file checked)"
    assert result.stderr == ""


def test_default_path_is_current_folder(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    assert cli("check").stdout == cli("check", ".").stdout


def test_clean_project_prints_only_the_summary(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": CLEAN, "util.py": "def add(a, b):\n    return a + b\n"})
    result = cli("check")
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout == "No findings (2 files checked)\n"
    assert result.stderr == ""


def test_no_ansi_escapes_when_not_a_tty(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    for fmt in ("text", "checklist"):
        result = cli("check", "--format", fmt)
        assert result.exit_code == EXIT_FINDINGS
        assert not ANSI.search(result.stdout), fmt


def test_no_color_env_wins_over_force_color(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    forced = cli("check", env={"FORCE_COLOR": "1"})
    assert ANSI.search(forced.stdout), "FORCE_COLOR should colour (else this test proves nothing)"
    result = cli("check", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert result.exit_code == EXIT_FINDINGS
    assert not ANSI.search(result.stdout)
    assert findings(result.stdout) == findings(cli("check").stdout)


# ---- selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "rules"),
    [
        (("--select", "SL1"), ["SL101"]),
        (("--select", "SL101"), ["SL101"]),
        (("--select", "SL6"), ["SL601"]),
        (("--ignore", "SL601"), ["SL101"]),
        (("--ignore", "SL6"), ["SL101"]),
        (("--select", "SL1", "--extend-select", "SL601"), ["SL101", "SL601"]),
        (("--select", "SL1,SL6"), ["SL101", "SL601"]),
        (("--select", "SL1, SL6", "--ignore", "SL101"), ["SL601"]),
        (("--select", "SL1", "--select", "SL6"), ["SL101", "SL601"]),
        (("--ignore", "SL101,SL601"), []),
    ],
)
def test_selectors(tmp_path: Path, cli, args: tuple[str, ...], rules: list[str]) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", *args)
    assert [f[3] for f in findings(result.stdout)] == rules
    assert result.exit_code == (EXIT_FINDINGS if rules else EXIT_CLEAN)


def test_config_select_is_replaced_by_cli_select(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER}, 'select = ["SL6"]\n')
    assert [f[3] for f in findings(cli("check").stdout)] == ["SL601"]
    assert [f[3] for f in findings(cli("check", "--select", "SL1").stdout)] == ["SL101"]
    assert [f[3] for f in findings(cli("check", "--extend-select", "SL1").stdout)] == ["SL101", "SL601"]


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_selector_is_a_usage_error(tmp_path: Path, cli, option: str) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    assert_usage_error(cli("check", option, "SL999"), "SL999")


def test_unknown_selector_in_a_comma_list_is_named(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    assert_usage_error(cli("check", "--select", "SL1,SL999"), "SL999")


# ---- fail-on and exit-zero -----------------------------------------------------------------


def test_fail_on_error_ignores_warnings(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"jobs.py": JOB})
    default = cli("check")
    assert default.exit_code == EXIT_FINDINGS
    assert findings(default.stdout) == [("jobs.py", 9, 9, "SL601")]

    result = cli("check", "--fail-on", "error")
    assert result.exit_code == EXIT_CLEAN
    assert findings(result.stdout) == [("jobs.py", 9, 9, "SL601")], "still reported, just not failing"
    assert cli("check", "--fail-on", "warning").exit_code == EXIT_FINDINGS
    assert cli("check", "--fail-on", "info").exit_code == EXIT_FINDINGS


def test_sl601_on_request_path_is_an_error(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", "--select", "SL601", "--fail-on", "error")
    assert result.exit_code == EXIT_FINDINGS


def test_fail_on_from_config(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"jobs.py": JOB}, 'fail-on = "error"\n')
    assert cli("check").exit_code == EXIT_CLEAN
    assert cli("check", "--fail-on", "warning").exit_code == EXIT_FINDINGS


def test_invalid_fail_on_option_is_a_usage_error(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", "--fail-on", "fatal")
    assert result.exit_code == EXIT_ERROR
    assert_no_traceback(result)


def test_exit_zero_reports_without_failing(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", "--exit-zero")
    assert result.exit_code == EXIT_CLEAN
    assert len(findings(result.stdout)) == 2
    assert result.stdout.splitlines()[-1] == "2 findings in 1 file (1 file checked)"


@pytest.mark.parametrize("args", [("--no-cache",), ("--jobs", "2"), ("--jobs", "1", "--no-cache")])
def test_contract_options_no_cache_and_jobs_are_accepted(tmp_path: Path, cli, args: tuple[str, ...]) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", *args)
    assert result.exit_code == EXIT_FINDINGS, result.output
    assert findings(result.stdout) == findings(cli("check").stdout)


# ---- --output ------------------------------------------------------------------------------


def test_output_writes_the_report_to_a_file(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    stdout_report = cli("check", "--format", "json").stdout
    result = cli("check", "--format", "json", "--output", "report.json")
    assert result.exit_code == EXIT_FINDINGS
    assert result.stdout.strip() == ""
    assert (tmp_path / "report.json").read_text(encoding="utf-8") == stdout_report


def test_output_text_report_has_no_ansi(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    result = cli("check", "-o", "report.txt", env={"FORCE_COLOR": "1"})
    assert result.exit_code == EXIT_FINDINGS
    assert result.stdout.strip() == ""
    text = (tmp_path / "report.txt").read_text(encoding="utf-8")
    assert not ANSI.search(text)
    assert text.splitlines()[-1] == "2 findings in 1 file (1 file checked)"


def test_output_to_a_missing_folder_is_a_usage_error(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    assert_usage_error(cli("check", "--output", "nowhere/report.json"), "nowhere")


# ---- configuration errors --------------------------------------------------------------------


def test_unknown_config_key_names_key_and_file(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER}, "selekt = ['SL1']\n")
    assert_usage_error(cli("check"), "selekt", "pyproject.toml")


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ("fail-on = 3\n", "fail-on"),
        ('fail-on = "fatal"\n', "fail-on"),
        ('select = "SL1"\n', "select"),
        ("max-pool-size = 0\n", "max-pool-size"),
        ("respect-gitignore = 1\n", "respect-gitignore"),
        ('per-file-ignores = ["SL1"]\n', "per-file-ignores"),
        ('dialect = "oracle-ish"\n', "dialect"),
        ("dialect = 5\n", "dialect"),
    ],
)
def test_bad_config_value_is_a_usage_error(tmp_path: Path, cli, config: str, key: str) -> None:
    make_project(tmp_path, {"main.py": HANDLER}, config)
    assert_usage_error(cli("check"), key, "pyproject.toml")


def test_unknown_dialect_is_a_usage_error_with_no_file_to_parse(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {}, 'dialect = "oracle-ish"\n')
    assert_usage_error(cli("check"), "dialect", "oracle-ish")


def test_invalid_toml_is_a_usage_error(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER}, "select = [\n")
    assert_usage_error(cli("check"), "pyproject.toml", "TOML")


def test_unknown_selector_in_config_is_a_usage_error(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER}, 'ignore = ["SL999"]\n')
    assert_usage_error(cli("check"), "SL999")


def test_explicit_config_file(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    (tmp_path / "strict.toml").write_text('select = ["SL6"]\n', encoding="utf-8")
    result = cli("check", "--config", "strict.toml")
    assert [f[3] for f in findings(result.stdout)] == ["SL601"]
    assert_usage_error(cli("check", "--config", "missing.toml"), "missing.toml")


# ---- suppressions ------------------------------------------------------------------------------


def _with_comment(line: int, comment: str) -> str:
    lines = HANDLER.splitlines()
    lines[line - 1] += f"  {comment}"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "comment",
    [
        "# noqa: SL101",
        "# noqa",
        "# scalelint: ignore[SL101]",
        "# noqa: SL1",
        "# noqa: E501, SL101",
        "# NOQA:SL101",
    ],
)
def test_suppression_on_the_finding_line_silences_it(tmp_path: Path, cli, comment: str) -> None:
    make_project(tmp_path, {"main.py": _with_comment(SL101_AT[0], comment)})
    result = cli("check")
    assert [f[3] for f in findings(result.stdout)] == ["SL601"]


@pytest.mark.parametrize(
    "comment", ["# noqa: E501", "# noqa: SL601", "# scalelint: ignore[SL6]", "# scalelint: ignore[]"]
)
def test_suppression_of_other_codes_does_not_silence(tmp_path: Path, cli, comment: str) -> None:
    make_project(tmp_path, {"main.py": _with_comment(SL101_AT[0], comment)})
    assert [f[3] for f in findings(cli("check").stdout)] == ["SL101", "SL601"]


def test_suppression_on_another_line_does_not_silence(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": _with_comment(SL101_AT[0] + 1, "# noqa: SL101")})
    assert [f[3] for f in findings(cli("check").stdout)] == ["SL101", "SL601"]


def test_suppressing_every_finding_exits_clean(tmp_path: Path, cli) -> None:
    source = _with_comment(SL101_AT[0], "# noqa: SL101")
    lines = source.splitlines()
    lines[SL601_AT[0] - 1] += "  # scalelint: ignore[SL601]"
    make_project(tmp_path, {"main.py": "\n".join(lines) + "\n"})
    result = cli("check")
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout == "No findings (1 file checked)\n"


@pytest.mark.parametrize(
    ("config", "left"),
    [
        ('[tool.scalelint.per-file-ignores]\n"main.py" = ["SL101"]\n', ["SL601"]),
        ('per-file-ignores = { "*.py" = ["SL6"] }\n', ["SL101"]),
        ('per-file-ignores = { "app/*.py" = ["SL101"] }\n', ["SL101", "SL601"]),
    ],
)
def test_per_file_ignores(tmp_path: Path, cli, config: str, left: list[str]) -> None:
    make_project(tmp_path, {"main.py": HANDLER}, config)
    assert [f[3] for f in findings(cli("check").stdout)] == left


def test_per_file_ignores_in_a_subfolder(tmp_path: Path, cli) -> None:
    make_project(
        tmp_path,
        {"app/__init__.py": "", "app/main.py": HANDLER, "jobs/__init__.py": "", "jobs/export.py": JOB},
        'per-file-ignores = { "jobs/*" = ["SL601"] }\n',
    )
    assert findings(cli("check").stdout) == [
        ("app/main.py", *SL101_AT, "SL101"),
        ("app/main.py", *SL601_AT, "SL601"),
    ]


# ---- report scope vs analysis scope -------------------------------------------------------


@pytest.fixture
def helper_project(tmp_path: Path) -> Path:
    return make_project(
        tmp_path, {"app/__init__.py": "", "app/db.py": DB_HELPER, "app/main.py": MAIN_VIA_HELPER}
    )


def test_checking_the_helper_alone_still_sees_the_handler(helper_project: Path, cli) -> None:
    result = cli("check", "app/db.py")
    assert result.exit_code == EXIT_FINDINGS, result.output
    assert findings(result.stdout) == [("app/db.py", 5, 12, "SL101")]
    # The chain handler -> helper is shown as related locations.
    assert "  -> app/main.py:" in result.stdout
    assert result.stdout.splitlines()[-1] == "1 finding in 1 file (1 file checked)"


def test_checking_the_handler_alone_reports_nothing_for_the_helper(helper_project: Path, cli) -> None:
    result = cli("check", "app/main.py")
    assert result.exit_code == EXIT_CLEAN, result.output
    assert result.stdout == "No findings (1 file checked)\n"


def test_same_findings_for_a_file_whichever_batch_it_is_in(helper_project: Path, cli) -> None:
    alone = findings(cli("check", "app/db.py").stdout)
    together = findings(cli("check", "app/main.py", "app/db.py").stdout)
    folder = findings(cli("check", "app").stdout)
    assert alone == together == folder == [("app/db.py", 5, 12, "SL101")]


def test_paths_are_relative_to_the_current_folder(
    helper_project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(helper_project / "app")
    result = cli("check", "db.py")
    assert findings(result.stdout) == [("db.py", 5, 12, "SL101")]
    assert "  -> main.py:" in result.stdout


def test_folder_without_init_reports_each_finding_once(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"app/main.py": HANDLER})
    result = cli("check")
    assert findings(result.stdout) == [
        ("app/main.py", *SL101_AT, "SL101"),
        ("app/main.py", *SL601_AT, "SL601"),
    ]
    assert result.stdout.splitlines()[-1] == "2 findings in 1 file (1 file checked)"


@pytest.mark.parametrize("path", ["missing.py", "missing_dir"])
def test_path_not_found_is_a_usage_error(tmp_path: Path, cli, path: str) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    assert_usage_error(cli("check", path), path)


def test_one_missing_path_among_good_ones_is_a_usage_error(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    assert_usage_error(cli("check", "main.py", "missing.py"), "missing.py")


# ---- bad input ---------------------------------------------------------------------------


def test_syntax_error_is_sl000_and_other_files_are_still_checked(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"broken.py": "def broken(:\n    pass\n", "main.py": HANDLER})
    result = cli("check")
    assert result.exit_code == EXIT_FINDINGS
    assert_no_traceback(result)
    found = findings(result.stdout)
    assert [(f[0], f[3]) for f in found if f[3] == "SL000"] == [("broken.py", "SL000")]
    assert ("main.py", *SL101_AT, "SL101") in found
    assert ("main.py", *SL601_AT, "SL601") in found
    assert result.stdout.splitlines()[-1] == "3 findings in 2 files (2 files checked)"


def test_invalid_utf8_after_line_two_is_sl000_with_a_clear_message(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"latin.py": b'a = 1\nb = 2\nc = 3\nname = "caf\xe9"\n', "main.py": HANDLER})
    result = cli("check")
    assert_no_traceback(result)
    line = next(line for line in result.stdout.splitlines() if " SL000 " in line)
    assert line.startswith("latin.py:4:")
    assert "utf-8" in line.lower() and "0xe9" in line
    assert ("main.py", *SL101_AT, "SL101") in findings(result.stdout)


def test_invalid_utf8_on_line_one_is_sl000_with_a_clear_message(tmp_path: Path, cli) -> None:
    # Regression: tokenize.detect_encoding fails on such a byte in the first two lines,
    # which was once reported as a "bad encoding declaration" the file does not have.
    make_project(tmp_path, {"latin.py": b'name = "caf\xe9"\n'})
    result = cli("check")
    assert_no_traceback(result)
    assert result.exit_code == EXIT_FINDINGS
    line = next(line for line in result.stdout.splitlines() if " SL000 " in line)
    assert line.startswith("latin.py:1:")
    assert "utf-8" in line.lower() and "0xe9" in line, line


def test_declared_latin1_file_is_fine(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"latin.py": b'# -*- coding: latin-1 -*-\nname = "caf\xe9"\n'})
    result = cli("check")
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout == "No findings (1 file checked)\n"


def test_binary_file_named_py_is_skipped_with_a_warning(tmp_path: Path, cli) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4
    make_project(tmp_path, {"logo.py": png, "main.py": HANDLER})
    result = cli("check")
    assert_no_traceback(result)
    assert result.exit_code == EXIT_FINDINGS
    assert re.fullmatch(r"scalelint: warning: logo\.py: [^\n]*binary[^\n]*\n", result.stderr), result.stderr
    assert "logo.py" not in result.stdout
    assert findings(result.stdout) == [("main.py", *SL101_AT, "SL101"), ("main.py", *SL601_AT, "SL601")]


def test_empty_file_is_fine(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"empty.py": "", "main.py": CLEAN})
    result = cli("check")
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout == "No findings (2 files checked)\n"
    assert result.stderr == ""


def test_fifty_thousand_line_generated_file_completes(tmp_path: Path, cli) -> None:
    parts = ["import psycopg2\n\n\n"]
    for i in range(5000):
        parts.append(
            f'def f{i}(x):\n    """Generated.\n\n    a\n    b\n    c\n    """\n    return x + {i}\n\n\n'
        )
    parts.append('def load():\n    return psycopg2.connect("dbname=app")\n')
    source = "".join(parts)
    assert source.count("\n") >= 50_000
    make_project(tmp_path, {"generated.py": source})
    result = cli("check")
    assert_no_traceback(result)
    assert result.exit_code in (EXIT_CLEAN, EXIT_FINDINGS)
    assert result.stdout.splitlines()[-1].endswith("(1 file checked)")


def test_sql_file_sqlglot_cannot_parse(tmp_path: Path, cli) -> None:
    sql = "SELEC FROM WHERE (((;\nCREATE TABLE broken (;\nSELECT 'unterminated\n"
    make_project(tmp_path, {"schema.sql": sql, "main.py": CLEAN})
    result = cli("check")
    assert_no_traceback(result)
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout == "No findings (2 files checked)\n"
    assert result.stderr == ""
    debug = cli("check", "--debug")
    assert debug.exit_code == EXIT_CLEAN
    assert "schema.sql" in debug.stderr and "sqlglot" in debug.stderr


def test_statistics_counts_sql_sqlglot_cannot_parse(tmp_path: Path, cli) -> None:
    broken_query = (
        "import psycopg2\n\n\ndef report():\n"
        "    cur = psycopg2.connect('dbname=app').cursor()\n"
        "    cur.execute('SELECT id FROM FROM contacts WHERE')\n"
    )
    make_project(tmp_path, {"schema.sql": "SELEC FROM WHERE (((;\n", "report.py": broken_query})
    result = cli("check", "--statistics")
    assert_no_traceback(result)
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout.splitlines() == [
        "0 findings (2 files checked)",
        "2 SQL string(s) sqlglot could not parse (not checked; --debug names the files)",
    ]


# ---- rules and explain ---------------------------------------------------------------------


def test_rules_lists_rules_with_checklist_items(cli) -> None:
    result = cli("rules")
    assert result.exit_code == EXIT_CLEAN
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "Using connection pool (not per-request)?" in rows["SL101"]
    assert "per-request-connection" in rows["SL101"]
    assert "Single DB call per request?" in rows["SL601"]
    assert "n-plus-one" in rows["SL601"]


def test_explain_prints_the_rule_page(cli) -> None:
    result = cli("explain", "SL101")
    assert result.exit_code == EXIT_CLEAN
    assert result.stdout.startswith("# SL101 per-request-connection\n")
    assert "## Why it hurts at scale" in result.stdout
    assert "Using connection pool (not per-request)?" in result.stdout
    assert not ANSI.search(result.stdout)
    assert cli("explain", "sl101").stdout == result.stdout


def test_explain_unknown_rule_is_a_usage_error(cli) -> None:
    assert_usage_error(cli("explain", "SL999"), "SL999")


# ---- python -m scalelint --------------------------------------------------------------------


def test_python_dash_m_smoke(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    version = subprocess.run(
        [sys.executable, "-m", "scalelint", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout
    assert "scalelint" in version.stdout
    check = subprocess.run(
        [sys.executable, "-m", "scalelint", "check", "--select", "SL1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == EXIT_FINDINGS, check.stderr
    assert not ANSI.search(check.stdout)
    assert check.stdout.startswith("main.py:7:12: SL101 ")
    assert check.stdout.splitlines()[-1] == "1 finding in 1 file (1 file checked)"


def _check_process(project: Path, *args: str, **redirect: object) -> subprocess.CompletedProcess[str]:
    """`python -m scalelint check ARGS` as a shell runs it, output buffered as usual."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["SCALELINT_NO_DAEMON"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "scalelint", "check", *args],
        cwd=project,
        env=env,
        text=True,
        timeout=120,
        **redirect,  # type: ignore[call-overload]
    )


def test_a_report_that_cannot_be_written_is_an_error(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    make_project(tmp_path, {"main.py": HANDLER})
    with open("/dev/full", "w") as full:
        run = _check_process(tmp_path, "--format", "json", "--exit-zero", stdout=full, stderr=subprocess.PIPE)
    assert run.returncode == EXIT_ERROR
    assert run.stderr.strip().endswith("cannot write the report: No space left on device")


def test_a_closed_stdout_or_a_reader_that_stops_early_is_not_a_crash(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    closed = _check_process(
        tmp_path,
        *("--exit-zero", "--format", "sarif", "-o", "out.sarif"),
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == EXIT_CLEAN, closed.stderr
    assert json.loads((tmp_path / "out.sarif").read_text())["runs"]
    nowhere = _check_process(tmp_path, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert nowhere.returncode == EXIT_ERROR
    assert "standard output is closed" in nowhere.stderr and "Traceback" not in nowhere.stderr
    # SARIF carries every rule's page: far more than a pipe holds, so the writer meets EPIPE.
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    early = _check_process(tmp_path, "--format", "sarif", stdout=reader.stdin, stderr=subprocess.PIPE)
    reader.communicate()
    assert early.returncode == EXIT_FINDINGS and "Traceback" not in early.stderr, early.stderr


def test_a_dependency_alias_step_points_at_the_module_that_defines_it(tmp_path: Path, cli) -> None:
    import json
    import shutil

    from fixture_projects import FIXTURES

    shutil.copytree(FIXTURES / "connections" / "depends_alias_by_package_path", tmp_path / "p")
    result = cli("check", "p", "--format", "json")
    (finding,) = json.loads(result.stdout)["findings"]
    steps = {(r["path"], r["line"]) for r in finding["related"] if r["message"].startswith("calls")}
    assert steps == {("p/src/deps.py", 23)}  # where `Conn = Annotated[..., Depends(get_conn)]` is
