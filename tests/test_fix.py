"""`scalelint check --fix` / `--diff`: safe, idempotent, and never a broken file."""

from __future__ import annotations

import shutil
from pathlib import Path

from scalelint.findings import Edit, Finding, Severity, Span
from scalelint.fix import apply_fixes

PAIRS = Path(__file__).resolve().parent / "fix_pairs"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Each expected diff (paths relative to the project) belongs to a fixture project.
PAIR_FIXTURES = {
    "django_lazy_relations.diff": "n_plus_one/django_lazy_relations",
    "fixable_policies.diff": "rls/fixable_policies",
}
POLICY = "create table t (id int primary key, user_id int);\ncreate index on t (user_id);\n"
POLICY += "create policy p on t using (auth.uid() = user_id);\n"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".scalelint_cache" not in p.parts
    }


def test_every_expected_diff_names_its_fixture() -> None:
    assert {p.name for p in PAIRS.glob("*.diff")} == set(PAIR_FIXTURES)


def test_fix_applies_each_expected_diff_and_a_second_run_changes_nothing(
    tmp_path: Path, cli, monkeypatch
) -> None:
    for name, fixture in PAIR_FIXTURES.items():
        project = tmp_path / name.removesuffix(".diff")
        shutil.copytree(FIXTURES / fixture, project)
        monkeypatch.chdir(project)
        shown = cli("check", "--diff", "--no-cache")
        assert (shown.exit_code, shown.output) == (1, (PAIRS / name).read_text()), name
        before = _tree(project)
        result = cli("check", "--fix", "--no-cache")
        assert "fixed" in result.output, result.output
        changed = {path for path, data in _tree(project).items() if before.get(path) != data}
        assert changed == {
            line[6:].strip() for line in shown.output.splitlines() if line.startswith("+++ b/")
        }
        again = cli("check", "--diff", "--no-cache")
        assert (again.exit_code, again.output) == (0, ""), again.output


def test_diff_shows_the_fix_and_writes_nothing(tmp_path: Path, cli) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.scalelint]\n")
    schema = tmp_path / "schema.sql"
    schema.write_text(POLICY)
    result = cli("check", "--diff", "--no-cache")
    assert result.exit_code == 1
    assert "-create policy p on t using (auth.uid() = user_id);" in result.output
    assert "+create policy p on t using ((select auth.uid()) = user_id);" in result.output
    assert schema.read_text() == POLICY


def test_fix_keeps_byte_order_mark_and_line_endings(tmp_path: Path, cli) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.scalelint]\n")
    schema = tmp_path / "schema.sql"
    schema.write_bytes(b"\xef\xbb\xbf" + POLICY.replace("\n", "\r\n").encode())
    cli("check", "--fix", "--no-cache")
    fixed = schema.read_bytes()
    assert fixed.startswith(b"\xef\xbb\xbf")
    assert b"using ((select auth.uid()) = user_id);\r\n" in fixed
    assert fixed.count(b"\r\n") == POLICY.count("\n")


def _finding(*edits: Edit) -> Finding:
    return Finding("SL604", edits[0].path, Span(1, 1, 1, 1), "m", Severity.WARNING, fixes=edits)


def test_overlapping_edits_keep_the_first_and_a_fix_that_breaks_parsing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("select 1;\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    first = Edit("a.sql", 7, 8, "2")
    overlapping = Edit("a.sql", 7, 9, "3;")
    breaking = Edit("b.py", 4, 5, "(")
    report = apply_fixes([_finding(first, overlapping), _finding(breaking)], tmp_path, "postgres", write=True)
    assert (tmp_path / "a.sql").read_text() == "select 2;\n"
    assert (tmp_path / "b.py").read_text() == "x = 1\n"
    assert report.fixed_files == ["a.sql"]
    assert report.skipped == ["b.py: the fixed text would not parse; left unchanged"]
