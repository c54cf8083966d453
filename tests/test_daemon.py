"""The daemon: a check it answers is byte for byte the check run in-process."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sample_projects import HANDLER, make_project
from scalelint import daemon

if TYPE_CHECKING:
    from scalelint.engine import RunResult
    from scalelint.project import ProjectModel

pytestmark = pytest.mark.skipif(not daemon.available(), reason="the daemon needs Unix sockets")


@pytest.fixture
def runtime() -> Iterator[dict[str, str]]:
    """An environment whose daemons listen in a folder of their own (short: socket paths
    are limited to about 100 bytes)."""
    folder = tempfile.mkdtemp(prefix="sl-")
    env = {**os.environ, "XDG_RUNTIME_DIR": folder}
    env.pop("SCALELINT_NO_DAEMON", None)
    yield env
    shutil.rmtree(folder, ignore_errors=True)


# Daemons of a test that fails before stopping them go away on their own soon.
START = ["daemon", "start", "--idle-timeout", "120"]


def _scalelint(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scalelint", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def resident() -> Iterator[Callable[[Path], None]]:
    """Runs in this process keep facts and models as the daemon does (`engine.Resident`),
    for the project given; undone after the test."""
    from scalelint import engine

    yield engine.keep_facts_in_memory
    engine._resident = None
    gc.unfreeze()


def _run(root: Path) -> RunResult:
    from scalelint.config import load_config
    from scalelint.engine import run

    return run([root], load_config(root), cwd=root, use_cache=True)


def _report(root: Path) -> str:
    """The JSON report of a run, the root's path written as ROOT."""
    from scalelint.report.json import render

    return render(_run(root), False).replace(str(root), "ROOT")


def _kept_model() -> ProjectModel:
    from scalelint import engine

    assert engine._resident is not None and engine._resident.project is not None
    return engine._resident.project


def _fresh_report(project: Path, where: Path) -> str:
    """The report of a copy of `project` at `where`, without its cache or any kept model."""
    from scalelint import engine

    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(project, where, ignore=shutil.ignore_patterns(".scalelint_cache"))
    kept, engine._resident = engine._resident, None
    try:
        return _report(where)
    finally:
        engine._resident = kept


def _runs(project: Path, env: dict[str, str]) -> int:
    out = _scalelint(["daemon", "status"], project, env).stdout
    return int(out.split("pid ")[1].split(", ")[1].split(" ")[0])


def test_checks_answered_by_the_daemon_equal_checks_run_in_process(
    tmp_path: Path, runtime: dict[str, str]
) -> None:
    project = make_project(tmp_path / "app", {"main.py": HANDLER, "helpers.py": "def f():\n    return 1\n"})
    in_process = {**runtime, "SCALELINT_NO_DAEMON": "1"}
    started = _scalelint(START, project, runtime)
    assert started.returncode == 0, started.stderr
    try:
        assert "daemon serving" in started.stdout
        for edit in (
            "",
            "def g():\n    return 2\n",
            "import psycopg2\ndef h():\n    psycopg2.connect('x')\n",
        ):
            (project / "helpers.py").write_text(f"def f():\n    return 1\n{edit}")
            for args in (
                ["check", "."],
                ["check", ".", "--format", "json"],
                ["check", "main.py", "--statistics"],
            ):
                served = _scalelint(args, project, runtime)
                local = _scalelint(args, project, in_process)
                assert (served.stdout, served.stderr, served.returncode) == (
                    local.stdout,
                    local.stderr,
                    local.returncode,
                ), args
        assert "SL101" in served.stdout + local.stdout
        assert _runs(project, runtime) == 9  # every check above went to the daemon
        # From a sub-folder: the daemon of the enclosing project answers, paths as seen from there.
        (project / "pkg").mkdir()
        sub = _scalelint(["check", "..", "--format", "json"], project / "pkg", runtime)
        assert (
            sub.stdout == _scalelint(["check", "..", "--format", "json"], project / "pkg", in_process).stdout
        )
        assert _runs(project, runtime) == 10
        # --no-cache asks for a run from scratch: it never goes to the daemon.
        _scalelint(["check", ".", "--no-cache"], project, runtime)
        assert _runs(project, runtime) == 10
    finally:
        stopped = _scalelint(["daemon", "stop"], project, runtime)
    assert "stopped" in stopped.stdout
    status = _scalelint(["daemon", "status"], project, runtime)
    assert status.returncode == 1 and "no daemon" in status.stdout


def test_a_daemon_answer_that_cannot_be_written_is_one_line(tmp_path: Path, runtime: dict[str, str]) -> None:
    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    assert _scalelint(START, project, runtime).returncode == 0
    check = [sys.executable, "-m", "scalelint", "check", ".", "--format", "sarif"]
    try:
        if Path("/dev/full").exists():
            with open("/dev/full", "w") as full:
                run = subprocess.run(
                    check, cwd=project, env=runtime, stdout=full, stderr=subprocess.PIPE, text=True
                )
            assert run.returncode == 2
            assert run.stderr.strip() == "scalelint: error: cannot write the report: No space left on device"
        # SARIF carries every rule's page: more than a pipe holds, so the client meets EPIPE.
        reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        early = subprocess.run(
            check, cwd=project, env=runtime, stdout=reader.stdin, stderr=subprocess.PIPE, text=True
        )
        reader.communicate()
        assert early.returncode == 1 and "Traceback" not in early.stderr, early.stderr
        assert _runs(project, runtime) >= 2  # the daemon answered them
    finally:
        _scalelint(["daemon", "stop"], project, runtime)


def test_a_check_runs_in_process_when_no_daemon_answers(
    tmp_path: Path, runtime: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime["XDG_RUNTIME_DIR"])
    assert daemon.forward(["check", "."]) is None
    # A socket left by a daemon that was killed: nobody listens, the check runs here.
    path = Path(daemon.socket_path(daemon.find_root(str(project))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    assert daemon.forward(["check", "."]) is None
    result = _scalelint(["check", ".", "--format", "json"], project, runtime)
    assert result.returncode == 1 and '"SL101"' in result.stdout


def test_a_second_daemon_for_the_same_project_is_refused(tmp_path: Path, runtime: dict[str, str]) -> None:
    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    assert _scalelint(START, project, runtime).returncode == 0
    try:
        again = _scalelint(START, project, runtime)
        assert "already serves" in again.stdout
        serve = _scalelint(["daemon", "serve", str(project.resolve())], project, runtime)
        assert serve.returncode == 1 and "already serves" in serve.stderr
    finally:
        _scalelint(["daemon", "stop"], project, runtime)


def test_an_idle_daemon_stops_and_removes_its_socket(
    tmp_path: Path, runtime: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime["XDG_RUNTIME_DIR"])
    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    assert _scalelint(["daemon", "start", "--idle-timeout", "1"], project, runtime).returncode == 0
    path = Path(daemon.socket_path(daemon.find_root(str(project))))
    assert path.exists()
    for _ in range(100):
        if not path.exists():
            break
        time.sleep(0.05)
    assert not path.exists()
    assert _scalelint(["daemon", "status"], project, runtime).returncode == 1


VIEWS = """\
from fastapi import FastAPI
from app.repo import load_note, NOTE_TABLE
from app import repo

app = FastAPI()

@app.get("/contacts")
def list_contacts(db):
    rows = db.execute("SELECT id FROM contacts LIMIT 50").fetchall()
    for row in rows:
        load_note(db, row.id)
    return [repo.title(r) for r in rows]
"""
REPO_EDITS = [
    # body edits that leave the outline as it was: the helper stops querying, then queries again
    "NOTE_TABLE = 'notes'\ndef load_note(db, cid):\n    print(cid)\n    return cid\n"
    "def title(r):\n    return r\n",
    "NOTE_TABLE = 'notes'\ndef load_note(db, cid):\n"
    "    db.execute('SELECT * FROM notes WHERE id = %s LIMIT 1', (cid,))\n"
    "    return cid\ndef title(r):\n    return r\n",
    # an outline edit: `title` now returns a connection, so what its callers do changes
    "import psycopg2\nNOTE_TABLE = 'notes'\ndef load_note(db, cid):\n    return cid\n"
    "def title(r):\n    return psycopg2.connect('dbname=x')\n",
    # lines moved down, nothing else
    "\n\n\nNOTE_TABLE = 'notes'\ndef load_note(db, cid):\n    return cid\ndef title(r):\n    return r\n",
    "def title(r):\n    return r\n",  # load_note and NOTE_TABLE gone: the importer resolves nothing
]


def test_a_model_inheriting_from_the_last_run_finds_what_a_fresh_run_finds(
    tmp_path: Path, resident: Callable[[Path], None]
) -> None:
    project = make_project(
        tmp_path / "p",
        {"app/__init__.py": "", "app/views.py": VIEWS, "app/repo.py": REPO_EDITS[1], "other.py": "x = 1\n"},
    )
    resident(project)
    _run(project)
    inherited_any = False
    reports = []
    for edit in [*REPO_EDITS, REPO_EDITS[1], "x = 2\n"]:
        target = "other.py" if edit == "x = 2\n" else "app/repo.py"
        (project / target).write_text(edit)
        served = _report(project)
        reports.append(served)
        model = _kept_model()
        inherited_any |= model._previous is not None and "app.views" not in model._stale
        assert served == _fresh_report(project, tmp_path / "q"), edit
    assert inherited_any  # the view module's work was taken over at least once
    # The body edits flip the view's N+1 finding: the helper's new query is seen.
    assert '"SL601"' not in reports[0] and '"SL601"' in reports[1]


def test_without_unix_sockets_the_daemon_says_so_and_checks_run_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from scalelint.cli import main

    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    monkeypatch.setattr(daemon, "available", lambda: False)
    result = CliRunner().invoke(main, ["daemon", "start", str(project)])
    assert result.exit_code == 2
    assert "needs Unix sockets" in result.output
    monkeypatch.chdir(project)
    assert daemon.forward(["check", "."]) is None


def test_a_socket_folder_others_can_enter_is_never_used(
    tmp_path: Path, runtime: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime["XDG_RUNTIME_DIR"])
    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    folder = Path(daemon.socket_path(daemon.find_root(str(project)))).parent
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    serve = _scalelint(["daemon", "serve", str(project.resolve())], project, runtime)
    assert serve.returncode == 1 and "not private" in serve.stderr
    assert daemon.request(str(project.resolve()), {"command": "status"}, timeout=1.0) is None
    folder.chmod(0o700)
    assert daemon.private(str(folder))


def test_models_no_run_needs_are_freed_without_the_cycle_collector(
    tmp_path: Path, resident: Callable[[Path], None]
) -> None:
    import weakref

    project = make_project(tmp_path / "p", {"app/__init__.py": "", "app/views.py": VIEWS, "app/repo.py": ""})
    resident(project)
    gc.disable()
    try:
        _run(project)
        first = weakref.ref(_kept_model())
        for edit in REPO_EDITS[:3]:
            (project / "app/repo.py").write_text(edit)
            _run(project)
        assert first() is None  # taken apart and freed by reference counting alone
        assert _kept_model().files
    finally:
        gc.enable()


# Edits after which a model that inherits from the last run must find what a fresh run
# finds: each once broke that (a case per way one module's results depend on another's).
DEPS = """\
import psycopg2
from typing import Annotated
from fastapi import Depends

def get_conn():
    return psycopg2.connect("dbname=app")

Conn = Annotated[object, Depends(get_conn)]
"""
DEPS_MAIN = """\
from fastapi import FastAPI
from deps import Conn
app = FastAPI()

@app.get("/contacts")
def list_contacts(conn: Conn):
    return []
"""
CONNECTS = "import psycopg2\nconnect = psycopg2.connect\n"
DOES_NOT = "def connect(dsn):\n    return 1\n"
HANDLER_CALLING = """\
from fastapi import FastAPI
{imports}
app = FastAPI()

@app.get("/contacts")
def list_contacts():
    conn = {callee}("dbname=app")
    return []
"""


def _calling(imports: str, callee: str, at: str = "main.py") -> dict[str, str]:
    """A file whose handler calls `callee` (made reachable by `imports`)."""
    return {at: HANDLER_CALLING.format(imports=imports, callee=callee)}


CYCLE = """\
import psycopg2
from fastapi import FastAPI
app = FastAPI()

def f(flag):
    if flag:
        return g()
    return psycopg2.connect

def g():
    return f(True)

@app.get("/contacts")
def list_contacts():
    conn = g()("dbname=app")
    return []
"""
ORG_INDEX = """\
from app import migtools

def upgrade():
    migtools.op.create_index("orgs_slug", "orgs", ["slug"])
"""
ORG_BY_SLUG = """\
from fastapi import FastAPI
from psycopg2.pool import SimpleConnectionPool

app = FastAPI()
pool = SimpleConnectionPool(1, 10, "dbname=app")

@app.get("/orgs")
def org_by_slug(slug: str):
    with pool.getconn() as conn:
        cur = conn.cursor()
        cur.execute("SELECT id FROM orgs WHERE slug = %s LIMIT 1", (slug,))
        return cur.fetchone()
"""
INHERITANCE_CASES = {
    # a call edge holds the `Depends(...)` line of another module: moving it moves the step
    "dependency alias moved": ({"main.py": DEPS_MAIN, "deps.py": DEPS}, {"deps.py": "\n\n\n" + DEPS}),
    # the importer names the module by a longer name than its shortest one
    "module imported by a longer name": (
        {
            **_calling("from src import repo", "repo.connect"),
            "src/repo.py": CONNECTS,
        },
        {"src/repo.py": DOES_NOT},
    ),
    "module imported dotted": (
        {
            **_calling("import src.repo", "src.repo.connect"),
            "src/repo.py": CONNECTS,
        },
        {"src/repo.py": DOES_NOT},
    ),
    # a package reaches its submodule without importing it
    "submodule of the package": (
        {
            **_calling("", "helpers.connect", at="pkg/__init__.py"),
            "pkg/helpers.py": CONNECTS,
        },
        {"pkg/helpers.py": DOES_NOT},
    ),
    # a name added to a module that another module looked for (and did not find) before
    "added name someone looked for": (
        {
            **_calling("from repo import connect", "connect"),
            "repo.py": "import psycopg2\n",
        },
        {"repo.py": "import psycopg2\nconnect = psycopg2.connect\n"},
    ),
    # a name added to a package beside the submodule another module reaches
    "added name beside a submodule": (
        {
            **_calling("import pkg", "pkg.helpers.connect"),
            "pkg/__init__.py": "",
            "pkg/helpers.py": CONNECTS,
        },
        {"pkg/__init__.py": "from types import SimpleNamespace\nhelpers = SimpleNamespace()\n"},
    ),
    # a literal another module imports gets a new value (its importers are kept)
    "literal rebound": (
        {
            **_calling("from repo import connect, DSN", "connect"),
            "repo.py": CONNECTS + 'DSN = "dbname=app"\n',
        },
        {"repo.py": CONNECTS + 'DSN = "dbname=app port=6432"\n'},
    ),
    # the chain step through a `Depends` alias names the alias's file after its module
    # changed around it (a literal, a function body): the caller's edges are kept
    "literal beside a dependency alias": (
        {"main.py": DEPS_MAIN, "deps.py": DEPS + "PAGE = 50\n"},
        {"deps.py": DEPS + "PAGE = 100\n"},
    ),
    "body edit beside a dependency alias": (
        {"main.py": DEPS_MAIN, "deps.py": DEPS + "def helper():\n    print(1)\n"},
        {"deps.py": DEPS + "def helper():\n    print(2)\n"},
    ),
    # the project starts importing Alembic: calls are read for Alembic operations from
    # then on (they were not looked for before)
    "a module starts importing alembic": (
        {
            "alembic/000_schema.sql": "CREATE TABLE orgs (id int primary key, slug text);\n",
            "alembic/versions/001_slug.py": ORG_INDEX,
            "app/__init__.py": "",
            "app/migtools.py": "",
            "app/main.py": ORG_BY_SLUG,
        },
        {"app/migtools.py": "from alembic import op\n"},
    ),
    # a cycle in resolution: the answer must not depend on which module was analysed first
    "resolution cycle": (
        {"a.py": "from c import g\n\ndef early():\n    return g()('dbname=x')\n", "c.py": CYCLE},
        {"c.py": CYCLE.replace("    return []", "    print(1)\n    return []")},
    ),
}


@pytest.mark.parametrize("case", INHERITANCE_CASES)
def test_inheriting_models_agree_with_fresh_runs_across_modules(
    tmp_path: Path, case: str, resident: Callable[[Path], None]
) -> None:
    files, edit = INHERITANCE_CASES[case]
    project = make_project(tmp_path / "p", files)
    resident(project)
    _run(project)
    for name, text in edit.items():
        (project / name).write_text(text)
    served = _report(project)
    assert _kept_model().inherits_from is not None  # the case exercises inheritance
    assert served == _fresh_report(project, tmp_path / "q")


def test_inherited_resolution_tables_do_not_grow_with_each_run(
    tmp_path: Path, resident: Callable[[Path], None]
) -> None:
    # The edited module reads a name another module imported (`consts.NAME`).
    files = {"app/__init__.py": "", "app/views.py": VIEWS, "app/repo.py": "", "app/consts.py": ""}
    project = make_project(tmp_path / "p", {**files, "app/consts.py": "from os import sep as NAME\n"})
    resident(project)
    sizes = []
    for index in range(4):
        reads = "from app import consts\ndef name():\n    return consts.NAME.upper()\n"
        (project / "app/repo.py").write_text(REPO_EDITS[1] + reads + f"RUN = {index}\n")
        _run(project)
        sizes.append(sum(len(t) for t in _kept_model()._by_identity.values()))
    assert sizes[1] == sizes[2] == sizes[3], sizes


def test_a_daemon_stops_on_sigterm_and_declines_other_installations(
    tmp_path: Path, runtime: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime["XDG_RUNTIME_DIR"])
    project = make_project(tmp_path / "app", {"main.py": HANDLER})
    assert _scalelint(START, project, runtime).returncode == 0
    root = daemon.find_root(str(project))
    status = daemon.request(root, {"command": "status"}, timeout=5.0)
    assert status is not None
    other = {"command": "run", "argv": ["check", "."], "cwd": str(project), "env": {}, "umask": 0o22}
    assert daemon.request(root, {**other, "scalelint": "9.9.9 elsewhere"}, None, accept_timeout=5.0) is None
    os.kill(int(str(status["pid"])), signal.SIGTERM)
    path = Path(daemon.socket_path(root))
    for _ in range(100):
        if not path.exists():
            break
        time.sleep(0.05)
    assert not path.exists()
    assert daemon.request(root, {"command": "status"}, timeout=1.0) is None


def test_a_name_nobody_looked_for_leaves_the_importers_inherited(
    tmp_path: Path, resident: Callable[[Path], None]
) -> None:
    files = _calling("from repo import connect", "connect")
    project = make_project(tmp_path / "p", {**files, "repo.py": CONNECTS})
    resident(project)
    _run(project)
    (project / "repo.py").write_text(CONNECTS + "\nPAGE_SIZE = 50\ndef unused():\n    return 1\n")
    result = _run(project)
    assert _kept_model()._stale == {"repo"}  # main.py's work is taken over
    assert [f.rule for f in result.findings] == ["SL101"]


@pytest.mark.parametrize(
    ("value", "stale"),
    [("100", {"repo"}), ('"a" + "b"', {"repo"}), ("psycopg2.connect", {"repo", "main"})],
)
def test_a_literal_given_another_value_leaves_the_importers_inherited(
    tmp_path: Path, resident: Callable[[Path], None], value: str, stale: set[str]
) -> None:
    files = _calling("from repo import connect, PAGE_SIZE", "connect")
    project = make_project(tmp_path / "p", {**files, "repo.py": CONNECTS + "PAGE_SIZE = 50\n"})
    resident(project)
    _run(project)
    (project / "repo.py").write_text(CONNECTS + f"PAGE_SIZE = {value}\n")
    result = _run(project)
    assert _kept_model()._stale == stale  # a literal resolves to nothing: main.py's work is kept
    assert [f.rule for f in result.findings] == ["SL101"]
