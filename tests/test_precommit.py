"""End-to-end test of the pre-commit hooks in `.pre-commit-hooks.yaml`.

Runs the real pre-commit (`python -m pre_commit try-repo`) against this source
tree, in a throw-away git project that holds one file with a per-request
connection (SL101) and one clean file. pre-commit builds the hook's virtualenv
itself (it pip-installs scalelint and its dependencies), so this needs PyPI and
takes a while (tens of seconds per try-repo call).

Why a snapshot of the source tree instead of `try-repo <repo root>` directly:
try-repo does make a shadow commit of *uncommitted changes*, but only of tracked
files (`git add -u` plus whatever is staged); files not yet added to git (a new
rule page, the hooks file itself before its first commit) are left out of it, and
an sdist has no `.git` at all. Copying the working tree (tracked + untracked,
minus ignored files) into a fresh repo tests exactly what is on disk in every case.

try-repo always builds its hook environments in a temporary store (PRE_COMMIT_HOME
only receives its error log), so each call below builds one (pip's own wheel cache
keeps that to a few seconds after the first); PRE_COMMIT_HOME still points at a
per-session temporary directory so nothing lands in the user's cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HOOKS_FILE = REPO_ROOT / ".pre-commit-hooks.yaml"

# One hook-environment build per call: pip install from PyPI.
TIMEOUT = 900


def _require_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed; pre-commit needs git to run hooks")


# Directories never copied into the snapshot when the source is not a git work tree.
_SKIP_DIRS = {
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".scalelint_cache",
    ".venv",
    "build",
    "dist",
    ".bench-corpus",
}

# GIT_* variables that are safe to keep (as pre-commit does); all other GIT_* set by
# an enclosing git hook (GIT_DIR, GIT_INDEX_FILE, ...) would point git at the wrong repo.
_GIT_KEEP = (
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "GIT_SSL_NO_VERIFY",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_",
    "GIT_CONFIG_VALUE_",
    "GIT_HTTP_PROXY_AUTHMETHOD",
    "GIT_ALLOW_PROTOCOL",
    "GIT_ASKPASS",
)

BAD_PY = textwrap.dedent(
    """\
    import psycopg2
    from fastapi import FastAPI

    app = FastAPI()


    @app.get("/contacts")
    def list_contacts():
        conn = psycopg2.connect("dbname=app")
        with conn.cursor() as cur:
            cur.execute("SELECT id, name FROM contacts ORDER BY id LIMIT 50")
            return cur.fetchall()
    """
)

GOOD_PY = textwrap.dedent(
    """\
    from fastapi import FastAPI
    from psycopg2.pool import ThreadedConnectionPool

    app = FastAPI()
    pool = ThreadedConnectionPool(1, 10, "dbname=app")


    @app.get("/accounts")
    def list_accounts():
        conn = pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id, name FROM accounts ORDER BY id LIMIT 50")
                return cur.fetchall()
        finally:
            pool.putconn(conn)
    """
)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k.startswith(_GIT_KEEP)}
    env.update(extra)
    return env


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _init_repo(path: Path) -> None:
    _git("init", "-q", cwd=path)
    _git("config", "user.email", "scalelint-test@example.invalid", cwd=path)
    _git("config", "user.name", "scalelint test", cwd=path)
    _git("config", "commit.gpgsign", "false", cwd=path)


def _source_files(root: Path) -> list[Path]:
    """Files of the working tree: tracked and untracked, minus git-ignored ones."""
    if (root / ".git").exists():
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            env=_clean_env(),
        )
        if out.returncode == 0:
            rels = [p for p in out.stdout.split("\0") if p]
            # --cached also lists tracked files deleted from the working tree.
            return [Path(p) for p in rels if (root / p).is_file()]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            if name.endswith((".pyc", ".pyo")):
                continue
            files.append((Path(dirpath) / name).relative_to(root))
    return files


@pytest.fixture(scope="session")
def scalelint_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git snapshot of the scalelint source tree as it is on disk."""
    _require_git()
    assert HOOKS_FILE.is_file(), f"missing {HOOKS_FILE}"
    snap = tmp_path_factory.mktemp("scalelint-src")
    for rel in _source_files(REPO_ROOT):
        dest = snap / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, dest)
    _init_repo(snap)
    _git("add", "-A", cwd=snap)
    _git("commit", "-q", "--no-verify", "-m", "snapshot", cwd=snap)
    return snap


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user project: one handler with a per-request connection, one clean one."""
    _require_git()
    proj = tmp_path_factory.mktemp("project")
    _init_repo(proj)
    (proj / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.0.1"\n\n[tool.scalelint]\n')
    (proj / "bad.py").write_text(BAD_PY)
    (proj / "good.py").write_text(GOOD_PY)
    _git("add", "pyproject.toml", "bad.py", "good.py", cwd=proj)
    return proj


def _try_repo(
    scalelint_repo: Path, project: Path, pre_commit_home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        str(scalelint_repo),
        *args,
        "--color",
        "never",
        "--verbose",
    ]
    proc = subprocess.run(
        cmd,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_clean_env(PRE_COMMIT_HOME=str(pre_commit_home), NO_COLOR="1"),
    )
    # Anything pre-commit itself chokes on (bad manifest, env build failure) exits 3
    # (or 1 with "An unexpected error"); make that a clear failure, not a false pass.
    assert "An error has occurred" not in proc.stdout + proc.stderr, _describe(proc)
    assert "An unexpected error" not in proc.stdout + proc.stderr, _describe(proc)
    return proc


def _describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"$ {' '.join(map(str, proc.args))}\n"
        f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def test_manifest_is_valid() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(HOOKS_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, _describe(proc)

    import yaml  # a dependency of pre-commit

    hooks = {h["id"]: h for h in yaml.safe_load(HOOKS_FILE.read_text())}
    assert set(hooks) == {"scalelint", "scalelint-all"}
    fast, full = hooks["scalelint"], hooks["scalelint-all"]
    assert fast["entry"] == full["entry"] == "scalelint check"
    assert fast["language"] == full["language"] == "python"
    assert fast["require_serial"] is full["require_serial"] is True
    assert fast["types_or"] == ["python", "sql"]
    assert full["pass_filenames"] is False
    assert full["always_run"] is True
    assert full["stages"] == ["pre-push", "manual"]


def test_hook_fails_on_per_request_connection(
    scalelint_repo: Path, project: Path, pre_commit_home: Path
) -> None:
    proc = _try_repo(scalelint_repo, project, pre_commit_home, "scalelint", "--files", "bad.py")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, _describe(proc)
    assert "SL101" in out, _describe(proc)
    assert "bad.py:9" in out, _describe(proc)


def test_hook_passes_on_clean_file(scalelint_repo: Path, project: Path, pre_commit_home: Path) -> None:
    proc = _try_repo(scalelint_repo, project, pre_commit_home, "scalelint", "--files", "good.py")
    assert proc.returncode == 0, _describe(proc)
    assert "SL101" not in proc.stdout + proc.stderr, _describe(proc)


def _try_all_files_hook(
    scalelint_repo: Path, project: Path, pre_commit_home: Path, stage: str
) -> subprocess.CompletedProcess[str]:
    """Run the `scalelint-all` hook on all files at the given hook stage."""
    return _try_repo(
        scalelint_repo, project, pre_commit_home, "scalelint-all", "--all-files", "--hook-stage", stage
    )


def test_all_hook_fails_on_project_with_violation(
    scalelint_repo: Path, project: Path, pre_commit_home: Path
) -> None:
    proc = _try_all_files_hook(scalelint_repo, project, pre_commit_home, "manual")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, _describe(proc)
    assert "SL101" in out, _describe(proc)
    assert "bad.py" in out, _describe(proc)


def test_all_hook_is_not_a_commit_stage_hook(
    scalelint_repo: Path, project: Path, pre_commit_home: Path
) -> None:
    # Cheap: no hook matches, so pre-commit builds no environment.
    proc = _try_all_files_hook(scalelint_repo, project, pre_commit_home, "pre-commit")
    assert "No hook with id `scalelint-all` in stage `pre-commit`" in proc.stdout, _describe(proc)
