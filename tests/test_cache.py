"""The facts cache: warm runs give the same findings, bad cache files are rebuilt."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_projects import FIXTURES
from sample_projects import HANDLER, make_project
from scalelint import engine
from scalelint.cache import FactsCache, cache_salt, content_digest, dump_facts, load_facts
from scalelint.config import load_config
from scalelint.engine import PARALLEL_MIN_FILES, load_file, run
from scalelint.facts.model import FileFacts
from scalelint.files import discover, report_scope
from scalelint.report.json import render


def _run(project: Path):
    return run([project], load_config(project), cwd=project, use_cache=True)


def _found(result) -> list[tuple[str, int, str]]:
    return [(f.path, f.span.line, f.rule) for f in result.findings]


def _forget_results(project: Path) -> None:
    """Drop the kept run results, so the next run analyses the cached facts again."""
    with sqlite3.connect(project / ".scalelint_cache" / "facts.sqlite") as db:
        db.execute("DELETE FROM runs")


def test_warm_run_reads_every_file_from_the_cache_and_finds_the_same(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "other.py": "x = 1\n"})
    cold = _run(tmp_path)
    os.utime(tmp_path / "other.py", ns=(1, 1))  # a new stat: the kept run result is not reused
    _forget_results(tmp_path)  # nor the one kept under the files' facts
    warm = _run(tmp_path)
    assert _found(warm) == _found(cold) != []
    assert "2 of 2 files from the cache" in warm.debug
    assert (tmp_path / ".scalelint_cache" / ".gitignore").read_text().strip().endswith("*")


def test_changed_file_is_parsed_again_and_touched_file_is_not(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "other.py": "x = 1\n"})
    _run(tmp_path)
    other = tmp_path / "other.py"
    os.utime(other, ns=(2, 2))  # same bytes, new mtime: found by content hash
    _forget_results(tmp_path)
    assert "2 of 2 files from the cache" in _run(tmp_path).debug
    (tmp_path / "main.py").write_text(HANDLER.replace('psycopg2.connect("dbname=app")', "None"))
    result = _run(tmp_path)
    assert "1 of 2 files from the cache" in result.debug
    assert [rule for _, _, rule in _found(result)] == ["SL601"]


def test_edit_that_changes_no_facts_reuses_the_kept_result_and_a_real_edit_does_not(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "other.py": "x = 1\n"})
    cold = _run(tmp_path)
    main = tmp_path / "main.py"
    main.write_text(HANDLER + "\n# a comment at the end moves nothing\n")
    commented = _run(tmp_path)
    assert "the files' facts are those of a kept run: its result is reused" in commented.debug
    assert _found(commented) == _found(cold) != []
    main.write_text("# a comment on top moves every line\n" + HANDLER)
    moved = _run(tmp_path)
    assert "1 of 2 files from the cache" in moved.debug
    assert _found(moved) == [(path, line + 1, rule) for path, line, rule in _found(cold)]
    main.write_text(HANDLER + "\n# a comment at the end moves nothing\n")
    assert "the files' facts are those of a kept run: its result is reused" in _run(tmp_path).debug


def test_cache_of_another_schema_version_is_rebuilt(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    database = tmp_path / ".scalelint_cache" / "facts.sqlite"
    database.parent.mkdir()
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE facts (path TEXT PRIMARY KEY, facts BLOB)")
        db.execute("INSERT INTO facts VALUES ('main.py', x'00')")
    cold = _run(tmp_path)
    assert _found(cold) != [] and "1 of 1 files from the cache" in _run_without_kept(tmp_path).debug


def _run_without_kept(project: Path):
    _forget_results(project)
    os.utime(project / "main.py", ns=(3, 3))
    return _run(project)


def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    cold = _run(tmp_path)
    database = tmp_path / ".scalelint_cache" / "facts.sqlite"
    database.write_bytes(b"this is not a database" * 100)
    result = _run(tmp_path)
    assert _found(result) == _found(cold)
    assert any("cache rebuilt" in note for note in result.debug)
    assert "1 of 1 files from the cache" in _run_without_kept(tmp_path).debug


def test_entries_from_another_version_are_ignored(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    _run(tmp_path)
    same = FactsCache(tmp_path / ".scalelint_cache", cache_salt(load_config(tmp_path).dialect))
    assert list(same.entries()) == ["main.py"] and list(same.facts(["main.py"])) == ["main.py"]
    same.close()
    other = FactsCache(tmp_path / ".scalelint_cache", cache_salt("mysql"))
    assert other.entries() == {} and other.facts(["main.py"]) == {}
    other.close()


def _parsers_imported(project: Path) -> list[str]:
    """Which parsers a `scalelint check` of `project` imported."""
    probe = (
        "import sys; from scalelint.cli import main\n"
        "try:\n    main(['check', '.'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('libcst', 'sqlglot') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip(), out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("config", ["", 'dialect = "mysql"\n'])
def test_warm_run_does_not_import_libcst_or_sqlglot(tmp_path: Path, config: str) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "schema.sql": "CREATE TABLE t (id int);\n"}, config)
    _run(tmp_path)
    assert _parsers_imported(tmp_path) == []


def test_editing_a_file_without_sql_does_not_import_sqlglot(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "helpers.py": "def double(x):\n    return 2 * x\n"})
    _run(tmp_path)
    (tmp_path / "helpers.py").write_text("def double(x):\n    return x + x\n")
    assert _parsers_imported(tmp_path) == ["libcst"]
    (tmp_path / "helpers.py").write_text(
        'QUERY = "SELECT id FROM t"\ndef run(cur):\n    cur.execute(QUERY)\n'
    )
    assert _parsers_imported(tmp_path) == ["libcst", "sqlglot"]


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
    (tmp_path / "main.py").write_text(HANDLER + "\nVERSION = 2\n")  # new facts, same findings
    edited = _run(tmp_path)
    assert not any("reused" in note for note in edited.debug)
    assert _found(edited) == _found(first)
    config = load_config(tmp_path)
    config.ignore = ("SL601",)
    narrowed = run([tmp_path], config, cwd=tmp_path, use_cache=True)
    assert [rule for _, _, rule in _found(narrowed)] == ["SL101"]


def _every_fixture(tmp_path: Path) -> Path:
    """All fixtures as one project: a few hundred files, findings across modules, SQL, configs."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURES, root)
    (root / "pyproject.toml").write_text('[tool.scalelint]\nselect = ["ALL"]\n')
    return root


def _every_field(value: object) -> object:
    """A value with its dataclasses spelled out: `==` on facts skips fields (`Const.origin`)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return type(value), tuple(_every_field(getattr(value, f.name)) for f in fields)
    if isinstance(value, (tuple, list)):
        return tuple(_every_field(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_every_field(item) for item in value)
    return value


def test_blobs_give_back_every_field_of_the_facts(tmp_path: Path) -> None:
    root = _every_fixture(tmp_path)
    files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".sql"))
    for path in files:
        facts, _ = load_file(path, path.relative_to(root).as_posix(), "postgres")
        assert _every_field(load_facts(dump_facts(facts))) == _every_field(facts), path
    assert load_facts(b"not a pickle") is None
    assert load_facts(dump_facts(("a tuple", "not facts"))) is None


def test_unreadable_entry_is_parsed_again(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER, "other.py": "x = 1\n"})
    cold = _run(tmp_path)
    with sqlite3.connect(tmp_path / ".scalelint_cache" / "facts.sqlite") as db:
        db.execute("UPDATE facts SET facts = ? WHERE path = 'main.py'", (b"\x80\x05garbage",))
        db.execute("DELETE FROM runs")
    result = _run(tmp_path)
    assert "1 of 2 files from the cache" in result.debug
    assert _found(result) == _found(cold)
    _forget_results(tmp_path)
    os.utime(tmp_path / "other.py", ns=(3, 3))  # not the kept result: the rewritten entry is read
    assert "2 of 2 files from the cache" in _run(tmp_path).debug


def test_touched_file_gets_its_new_stat_recorded(tmp_path: Path) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    _run(tmp_path)
    os.utime(tmp_path / "main.py", ns=(5_000_000_000, 5_000_000_000))
    _forget_results(tmp_path)
    assert "1 of 1 files from the cache" in _run(tmp_path).debug
    cache = FactsCache(tmp_path / ".scalelint_cache", cache_salt(load_config(tmp_path).dialect))
    assert cache.entries()["main.py"].mtime_ns == 5_000_000_000
    cache.close()


def test_workers_and_the_cache_change_nothing_in_the_report(tmp_path: Path) -> None:
    root = _every_fixture(tmp_path)
    config = load_config(root)
    listed = discover(config)
    assert len(listed) > 2 * PARALLEL_MIN_FILES  # enough for worker processes to be used

    def report(jobs: int, use_cache: bool) -> str:
        return render(run([root], config, cwd=root, jobs=jobs, use_cache=use_cache), color=False)

    one_process = report(1, False)
    assert one_process.count('"rule"') > 20
    assert report(2, False) == one_process
    assert report(2, True) == one_process  # cold: the workers' facts go into the cache
    edited = root / "apps" / "demo" / "app" / "repo.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")  # new facts, same findings
    warm = run([root], config, cwd=root, jobs=2, use_cache=True)
    cached = [re.fullmatch(r"(\d+) of (\d+) files from the cache", note) for note in warm.debug]
    assert [(int(m[1]) + 1, int(m[2])) for m in cached if m] == [(len(listed), len(listed))]
    assert f"1 of {len(listed)} files handed to a worker while the cache was read" in warm.debug
    assert render(warm, color=False) == one_process


def test_edit_read_while_a_worker_parses_it_reuses_or_reads_on(tmp_path: Path) -> None:
    root = _every_fixture(tmp_path)
    config = load_config(root)
    first = run([root], config, cwd=root, jobs=2, use_cache=True)
    edited = root / "apps" / "demo" / "app" / "repo.py"
    source = edited.read_text()
    edited.write_text(source + "\n# a comment changes no facts\n")
    commented = run([root], config, cwd=root, jobs=2, use_cache=True)
    assert "the files' facts are those of a kept run: its result is reused" in commented.debug
    edited.write_text(source + "\nEDITED = True\n")
    changed = run([root], config, cwd=root, jobs=2, use_cache=True)
    assert any(note.endswith("while the cache was read") for note in changed.debug)
    assert render(changed, color=False) == render(commented, color=False) == render(first, color=False)


def test_a_reading_outlives_the_cache_rebuilt_under_it(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    salt = cache_salt("postgres")
    cache = FactsCache(directory, salt)
    for index in range(300):
        blob = dump_facts(FileFacts(f"m{index}.py", "python"))
        cache.put(f"m{index}.py", 1, 1, "digest", blob, content_digest(blob))
    cache.put_run_result("kept", ["a result"])
    cache.close()
    with sqlite3.connect(directory / "facts.sqlite") as db:  # break the table of kept results
        roots = [root for (root,) in db.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'runs'")]
        page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(directory / "facts.sqlite", "r+b") as raw:
        for root in roots:
            raw.seek((root - 1) * page)
            raw.write(b"\xff" * page)
    cache = FactsCache(directory, salt)
    reading = cache.reading(f"m{index}.py" for index in range(300))
    assert reading.step() and reading.step()
    read = len(reading.found)
    assert cache.run_result("another") is None  # the broken table: the cache is rebuilt
    assert len(reading.finish()) == read  # what was read stays; the rest is parsed again
    assert len([note for note in cache.notes if note.startswith("cache rebuilt")]) == 1
    cache.close()


def _worker_dies(chunk, dialect):
    os._exit(9)  # as if killed for memory


def test_a_worker_that_dies_costs_nothing_but_time(tmp_path: Path, monkeypatch) -> None:
    root = _every_fixture(tmp_path)
    config = load_config(root)
    expected = render(run([root], config, cwd=root, jobs=1), color=False)
    monkeypatch.setattr(engine, "_load_chunk", _worker_dies)  # forked workers see it too
    assert render(run([root], config, cwd=root, jobs=2), color=False) == expected
    run([root], config, cwd=root, jobs=1, use_cache=True)  # fill the cache, then edit a file:
    edited = root / "apps" / "demo" / "app" / "repo.py"  # a worker parses it (the overlap)
    edited.write_text(edited.read_text() + "\nEDITED = True\n")
    warm = run([root], config, cwd=root, jobs=2, use_cache=True)
    assert render(warm, color=False) == expected
    assert any(note.endswith("while the cache was read") for note in warm.debug)


def test_kept_result_is_not_reused_by_other_scalelint_code(tmp_path: Path, monkeypatch) -> None:
    make_project(tmp_path, {"main.py": HANDLER})
    _run(tmp_path)
    assert any("reused" in note for note in _run(tmp_path).debug)
    monkeypatch.setattr(engine, "code_digest", lambda: "a check was edited")
    assert not any("reused" in note for note in _run(tmp_path).debug)


def test_checking_the_root_reports_what_report_scope_finds(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {"app/main.py": HANDLER, "build/gen.py": HANDLER, "vendor/lib.py": HANDLER, ".gitignore": "build/\n"},
        'exclude = ["vendor"]\n',
    )
    config = load_config(tmp_path)
    scope, _ = report_scope([tmp_path], config)
    assert [p.relative_to(tmp_path).as_posix() for p in scope] == ["app/main.py"]
    result = run([tmp_path / "."], config, cwd=tmp_path)  # the root, walked once
    assert result.files_checked == 1 and {f.path for f in result.findings} == {"app/main.py"}


def test_equal_facts_give_equal_bytes_in_every_process() -> None:
    # A dict display and the codes of a suppression become frozensets: their order follows
    # string hashes, which differ between processes; the blob (and the facts' name, its
    # digest) must not.
    probe = (
        "from scalelint.cache import dump_facts, content_digest\n"
        "from scalelint.facts.python import python_facts\n"
        'source = \'DATABASES = {"default": {"ENGINE": "x", "HOST": "db", "PORT": "5432"}}\\n\'\n'
        "source += 'x = 1  # noqa: SL101, SL102, SL203, SL601, SL602\\n'\n"
        "print(content_digest(dump_facts(python_facts('settings.py', source))))"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1 and "" not in digests


def test_workers_start_during_the_walk_of_a_run_that_parses_every_file(tmp_path: Path, monkeypatch) -> None:
    root = _every_fixture(tmp_path)
    config = load_config(root)
    expected = render(run([root], config, cwd=root, jobs=1), color=False)
    started: list[bool] = []  # per pool started during the walk: whether phase 1 took it
    real_start, real_take = engine.EarlyWorkers.start, engine.EarlyWorkers.take

    def start(self: engine.EarlyWorkers) -> None:
        real_start(self)
        started.append(False)

    def take(self: engine.EarlyWorkers):
        pool = real_take(self)
        if pool is not None:
            started[-1] = True
        return pool

    monkeypatch.setattr(engine.EarlyWorkers, "start", start)
    monkeypatch.setattr(engine.EarlyWorkers, "take", take)
    assert render(run([root], config, cwd=root, jobs=2), color=False) == expected
    assert render(run([root], config, cwd=root, jobs=2, use_cache=True), color=False) == expected
    assert started == [True, True]  # without the cache, and before it held anything
    assert render(run([root], config, cwd=root, jobs=2, use_cache=True), color=False) == expected
    assert started == [True, True]  # a warm run starts none
