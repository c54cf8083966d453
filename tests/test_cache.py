"""The facts cache: warm runs give the same findings, bad cache files are rebuilt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sample_projects import HANDLER, make_project
from scalelint.cache import FactsCache, cache_salt
from scalelint.config import load_config
from scalelint.engine import run


def _run(project: Path):
    return run([project], load_config(project), cwd=project, use_cache=True)


def _found(result) -> list[tuple[str, int, str]]:
    return [(f.path, f.span.line, f.rule) for f in result.findings]


def test_warm_run_reads_every_file_from_the_cache_and_finds_the_same(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "other.py": "x = 1\n"})
    cold = _run(tmp_path)
    os.utime(tmp_path / "other.py", ns=(1, 1))  # a new stat: the kept run result is not reused
    warm = _run(tmp_path)
    assert _found(warm) == _found(cold) != []
    assert "2 of 2 files from the cache" in warm.debug
    assert (tmp_path / ".scalelint_cache" / ".gitignore").read_text().strip().endswith("*")


def test_changed_file_is_parsed_again_and_touched_file_is_not(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "other.py": "x = 1\n"})
    _run(tmp_path)
    other = tmp_path / "other.py"
    os.utime(other, ns=(2, 2))  # same bytes, new mtime: found by content hash
    assert "2 of 2 files from the cache" in _run(tmp_path).debug
    (tmp_path / "main.py").write_text(HANDLER.replace('psycopg2.connect("dbname=app")', "None"))
    result = _run(tmp_path)
    assert "1 of 2 files from the cache" in result.debug
    assert [rule for _, _, rule in _found(result)] == ["SL601"]


def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    cold = _run(tmp_path)
    database = tmp_path / ".scalelint_cache" / "facts.sqlite"
    database.write_bytes(b"this is not a database" * 100)
    result = _run(tmp_path)
    assert _found(result) == _found(cold)
    assert any("cache rebuilt" in note for note in result.debug)
    os.utime(tmp_path / "main.py", ns=(1, 1))
    assert "1 of 1 files from the cache" in _run(tmp_path).debug


def test_entries_from_another_version_are_ignored(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    _run(tmp_path)
    cache = FactsCache(tmp_path / ".scalelint_cache", cache_salt("mysql"))
    stat = (tmp_path / "main.py").stat()
    assert cache.by_stat("main.py", stat.st_mtime_ns, stat.st_size) is None
    cache.close()


def test_warm_run_does_not_import_libcst_or_sqlglot(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "schema.sql": "CREATE TABLE t (id int);\n"})
    _run(tmp_path)
    probe = (
        "import sys; from scalelint.cli import main\n"
        "try:\n    main(['check', '.'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('libcst', 'sqlglot') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_no_cache_flag_and_clean_command(tmp_path: Path, cli) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    cli("check", "--no-cache")
    assert not (tmp_path / ".scalelint_cache").exists()
    cli("check")
    assert (tmp_path / ".scalelint_cache").is_dir()
    result = cli("clean")
    assert result.exit_code == 0 and "removed" in result.output
    assert not (tmp_path / ".scalelint_cache").exists()


def test_nothing_changed_reuses_the_kept_result_and_a_change_does_not(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    first = _run(tmp_path)
    again = _run(tmp_path)
    assert "nothing changed since a kept run: its result is reused" in again.debug
    assert _found(again) == _found(first)
    (tmp_path / "main.py").write_text(HANDLER + "\n# edited\n")
    edited = _run(tmp_path)
    assert not any("reused" in note for note in edited.debug)
    assert _found(edited) == _found(first)
    config = load_config(tmp_path)
    config.ignore = ("SL601",)
    narrowed = run([tmp_path], config, cwd=tmp_path, use_cache=True)
    assert [rule for _, _, rule in _found(narrowed)] == ["SL101"]
