"""The facts cache: phase-1 facts of every file, in one SQLite file per project.

An entry is found by the file's path and (mtime_ns, size) first, then by the hash of
its bytes (a `touch` or a checkout does not force a re-parse); it is only trusted when
its salt matches: scalelint's version, libcst's and sqlglot's versions, the Python
version and the SQL dialect. A corrupt database is deleted and rebuilt; a locked one
(another scalelint writing) is skipped for this run. Facts are plain dataclasses, so
an entry is their pickle.
"""

from __future__ import annotations

import hashlib
import pickle
import sqlite3
import sys
import time
from functools import cache
from importlib import metadata
from pathlib import Path

from scalelint import __version__
from scalelint.facts.model import FileFacts

SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    path TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    salt TEXT NOT NULL,
    facts BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    fingerprint TEXT PRIMARY KEY,
    created REAL NOT NULL,
    result BLOB NOT NULL
)
"""
KEPT_RUNS = 8  # results of the last runs kept, for a re-run with nothing changed
DEFAULT_DIRECTORY = ".scalelint_cache"


def cache_salt(dialect: str) -> str:
    """Everything besides a file's bytes that its facts depend on."""
    versions = []
    for package in ("libcst", "sqlglot"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} ?")
    python = ".".join(map(str, sys.version_info[:2]))
    code = f"scalelint {__version__} {_facts_code_digest()}"
    return f"{code}|{'|'.join(versions)}|python {python}|dialect {dialect}"


@cache
def _facts_code_digest() -> str:
    """The code that makes facts: a change to it (even without a release) invalidates them."""
    folder = Path(__file__).parent / "facts"
    sources = b"".join(path.read_bytes() for path in sorted(folder.glob("*.py")))
    return content_digest(sources)[:12]


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class FactsCache:
    """Read and write facts; every failure degrades to 'not cached', never to an error."""

    def __init__(self, directory: Path, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.notes: list[str] = []
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, str, str, bytes]] = []
        self._open()

    def _open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by scalelint.\n*\n", encoding="utf-8")
            self._db = sqlite3.connect(self.directory / "facts.sqlite", timeout=2)
            self._db.executescript(SCHEMA)
            self._db.execute("SELECT count(*) FROM facts").fetchone()
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
        except OSError as error:
            self.notes.append(f"cache disabled: {error.strerror or error}")
            self._db = None

    def _reset(self, note: str) -> None:
        self.notes.append(note)
        if self._db is not None:
            self._db.close()
        try:
            (self.directory / "facts.sqlite").unlink(missing_ok=True)
            self._db = sqlite3.connect(self.directory / "facts.sqlite", timeout=2)
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as error:
            self.notes.append(f"cache disabled: {error}")
            self._db = None

    def _row(self, path: str) -> tuple[int, int, str, str, bytes] | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT mtime_ns, size, digest, salt, facts FROM facts WHERE path = ?", (path,)
            ).fetchone()
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
            return None
        return row  # type: ignore[no-any-return]

    @staticmethod
    def _load(blob: bytes) -> FileFacts | None:
        try:
            facts = pickle.loads(blob)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return None
        return facts if isinstance(facts, FileFacts) else None

    def by_stat(self, path: str, mtime_ns: int, size: int) -> FileFacts | None:
        """Facts for a file whose modification time and size have not changed."""
        row = self._row(path)
        if row is None or row[3] != self.salt or (row[0], row[1]) != (mtime_ns, size):
            return None
        return self._load(row[4])

    def by_digest(self, path: str, digest: str, mtime_ns: int, size: int) -> FileFacts | None:
        """Facts for a file whose bytes are unchanged (its stat is refreshed)."""
        row = self._row(path)
        if row is None or row[3] != self.salt or row[2] != digest:
            return None
        facts = self._load(row[4])
        if facts is not None:
            self._pending.append((path, mtime_ns, size, digest, self.salt, row[4]))
        return facts

    def put(self, path: str, mtime_ns: int, size: int, digest: str, facts: FileFacts) -> None:
        blob = pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending.append((path, mtime_ns, size, digest, self.salt, blob))

    def run_result(self, fingerprint: str) -> object | None:
        """What a run with exactly these inputs reported before, if it was kept."""
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT result FROM runs WHERE fingerprint = ?", (fingerprint,)).fetchone()
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
            return None
        if row is None:
            return None
        try:
            result: object = pickle.loads(row[0])
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return None
        return result

    def put_run_result(self, fingerprint: str, result: object) -> None:
        if self._db is None:
            return
        blob = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (fingerprint, time.time(), blob)
                )
                self._db.execute(
                    "DELETE FROM runs WHERE fingerprint NOT IN "
                    "(SELECT fingerprint FROM runs ORDER BY created DESC LIMIT ?)",
                    (KEPT_RUNS,),
                )
        except sqlite3.DatabaseError as error:
            self.notes.append(f"run result not cached: {error}")

    def close(self) -> None:
        """Write what this run learned in one transaction."""
        if self._db is None:
            return
        try:
            if self._pending:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?)", self._pending
                    )
        except sqlite3.OperationalError as error:
            self.notes.append(f"cache not updated: {error}")
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
        finally:
            self._pending.clear()
            if self._db is not None:
                self._db.close()
                self._db = None
