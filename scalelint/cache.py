"""The facts cache: phase-1 facts of every file, in one SQLite file per project.

An entry is found by the file's path and (mtime_ns, size) first, then by the hash of
its bytes (a `touch` or a checkout does not force a re-parse); it is only trusted when
its salt matches: scalelint's version, libcst's and sqlglot's versions, the Python
version and the SQL dialect. A corrupt database is deleted and rebuilt; a locked one
(another scalelint writing) is skipped for this run.

Run results are kept too, each under two fingerprints: the files' stats (a re-run with
nothing touched) and the names of their facts, the digest of each file's facts blob (a
re-run after edits that changed no facts: a comment, a blank line at the end).

Facts are plain dataclasses, so an entry is their pickle, in a compact form: each
dataclass is written as its class and its field values, so loading calls the
constructor instead of dataclasses' `__setstate__` (which looks up the fields again
for every object and was most of a warm run's time).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import pickle
import sqlite3
import sys
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from importlib import metadata
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from scalelint import __version__
from scalelint.facts.model import FileFacts

# `facts_id` names a file's facts: the digest of their blob. An edit that leaves them
# equal (a comment, a blank line at the end) keeps it, so a run over the same facts finds
# the result an earlier run kept.
SCHEMA_VERSION = 2  # a database of another version is rebuilt
SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (
    path TEXT PRIMARY KEY,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    salt TEXT NOT NULL,
    facts BLOB NOT NULL,
    facts_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    fingerprint TEXT PRIMARY KEY,
    created REAL NOT NULL,
    result BLOB NOT NULL
)
"""
# Results of the last runs kept (each under its files' stats and under their facts), for
# a re-run with nothing changed, or with edits that changed no facts.
KEPT_RUNS = 16
DEFAULT_DIRECTORY = ".scalelint_cache"
BLOB_FORMAT = 2  # part of the salt: entries written in another layout are not read
_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError)


def cache_salt(dialect: str) -> str:
    """Everything besides a file's bytes that its facts depend on."""
    python = ".".join(map(str, sys.version_info[:2]))
    code = f"scalelint {__version__} {_facts_code_digest()} blob {BLOB_FORMAT}"
    return f"{code}|{_parser_versions()}|python {python}|dialect {dialect}"


@cache
def _parser_versions() -> str:
    versions = []
    for package in ("libcst", "sqlglot"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} ?")
    return "|".join(versions)


@cache
def _facts_code_digest() -> str:
    """The code that makes facts: a change to it (even without a release) invalidates them."""
    folder = Path(__file__).parent / "facts"
    sources = b"".join(path.read_bytes() for path in sorted(folder.glob("*.py")))
    return content_digest(sources)[:12]


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while many acyclic objects are made at once.

    Loading facts allocates hundreds of thousands of tuples and dataclasses; each
    allocation burst would otherwise trigger collections that walk the whole growing
    heap again (measured: 1.6 s instead of 0.2 s for 1,100 files).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Reduction(NamedTuple):
    """How `_FactsPickler` writes instances of one dataclass: its fields' values in
    `__init__` order (read by one `attrgetter`), and which fields may hold a frozenset."""

    fields: Callable[[Any], Any]
    single: bool  # one field: `attrgetter` gives the value, not a tuple
    sets: tuple[bool, ...] | None  # None when no field can hold a frozenset


_reductions: dict[type, _Reduction | None] = {}


def _reduction(cls: type) -> _Reduction | None:
    """How to write `cls`, or None to pickle it the usual way.

    Only dataclasses whose generated `__init__` takes every field positionally and
    stores it unchanged are written as `(cls, field values)`.
    """
    if cls in _reductions:
        return _reductions[cls]
    found: _Reduction | None = None
    params = cls.__dict__.get("__dataclass_params__")  # this class itself, not a parent, is the dataclass
    if params is not None and params.init and not hasattr(cls, "__post_init__"):
        fields = dataclasses.fields(cls)
        if fields and all(f.init and not f.kw_only for f in fields):
            names = [f.name for f in fields]
            sets = tuple(_may_hold_set(cls, name) for name in names)
            found = _Reduction(attrgetter(*names), len(names) == 1, sets if any(sets) else None)
    _reductions[cls] = found
    return found


def _may_hold_set(cls: type, name: str) -> bool:
    """Whether field `name` of `cls` may hold a frozenset, directly or in tuples (a field
    holding another dataclass does not count: that one is written by its own reduction).
    Unknown annotations count as yes."""
    try:
        hint = typing.get_type_hints(cls)[name]
    except Exception:  # an annotation that does not evaluate: assume the worst
        return True
    return _holds_set_type(hint)


def _holds_set_type(hint: Any) -> bool:
    if hint is Any or hint is object:
        return True
    if dataclasses.is_dataclass(hint) or hint in (str, int, float, bool, bytes, type(None)):
        return False
    origin = typing.get_origin(hint)
    if origin in (frozenset, set):
        return True
    if origin in (tuple, typing.Union, types.UnionType):
        return any(_holds_set_type(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)
    return True  # anything else (a dict, a type variable): assume it may


class _Sorted:
    """A frozenset field, pickled with its items in a fixed order: equal facts then give
    equal bytes in every process (set order follows string hashes, which differ from
    process to process; pickle writes sets itself, past `reducer_override`)."""

    __slots__ = ("items",)

    def __init__(self, items: frozenset[Any]) -> None:
        self.items = items

    def __reduce__(self) -> tuple[Any, ...]:
        return frozenset, (tuple(sorted(self.items, key=repr)),)


def _ordered(value: Any) -> Any:
    """A field's value with its frozensets in a fixed order, also those one or two tuples
    down (suppressions are `(line, frozenset(codes))` pairs)."""
    if type(value) is frozenset:
        return _Sorted(value)
    if type(value) is tuple and any(_holds_set(item) for item in value):
        return tuple(_ordered(item) for item in value)
    return value


def _holds_set(item: Any) -> bool:
    return type(item) is frozenset or (type(item) is tuple and any(type(x) is frozenset for x in item))


class _FactsPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        how = _reductions[cls] if cls in _reductions else _reduction(cls)
        if how is None:
            return NotImplemented
        values = how.fields(obj)
        if how.single:
            values = (values,)
        if how.sets is not None:
            values = tuple([_ordered(v) if may else v for v, may in zip(values, how.sets, strict=True)])
        return cls, values


def dump_facts(value: object) -> bytes:
    """Facts (or anything holding them) as a compact pickle; equal facts made the same way
    give the same bytes, so the digest of the bytes names the facts."""
    out = io.BytesIO()
    _FactsPickler(out, protocol=5).dump(value)
    return out.getvalue()


def load_facts(blob: bytes) -> FileFacts | None:
    """The facts in a blob from `dump_facts`, or None when it cannot be read."""
    try:
        facts = pickle.loads(blob)
    except _LOAD_ERRORS:
        return None
    return facts if isinstance(facts, FileFacts) else None


class Entry(NamedTuple):
    """What the cache knows about a file without reading its facts."""

    mtime_ns: int
    size: int
    digest: str
    facts_id: str


class FactsReading:
    """Facts read back from the cache a batch of entries at a time: a caller with other
    work in flight (a worker parsing the edited files) reads between checks on it, and
    stops when that work shows the facts are not needed after all. An entry that cannot
    be read is left out of `found`."""

    ROWS_PER_STEP = 64

    def __init__(self, cache: FactsCache, wanted: set[str]) -> None:
        self.cache = cache
        self.wanted = wanted
        self.found: dict[str, FileFacts] = {}
        self._rows: sqlite3.Cursor | None = None
        self._started = not wanted  # nothing to read: already over

    def step(self) -> bool:
        """Read the next batch; False once every entry has been read."""
        if not self._started:
            self._started = True
            self._rows = self.cache._rows()
        if self._rows is None:
            return False
        rows = self._rows
        try:
            batch = rows.fetchmany(self.ROWS_PER_STEP)
        except sqlite3.Error as error:
            self.close()
            if rows.connection is self.cache._db:  # not already rebuilt under this reading
                self.cache._reset(f"cache rebuilt ({error})")
            return False
        with gc_paused():
            for path, blob in batch:
                if path in self.wanted and isinstance(blob, bytes):
                    facts = load_facts(blob)
                    if facts is not None and facts.path == path:
                        self.found[str(path)] = facts
        if not batch:
            self.close()
        return bool(batch)

    def finish(self) -> dict[str, FileFacts]:
        while self.step():
            pass
        return self.found

    def close(self) -> None:
        rows, self._rows = self._rows, None
        if rows is not None:
            # Its database may have been closed under it (rebuilt): nothing to release then.
            with suppress(sqlite3.Error):
                rows.close()


class FactsCache:
    """Read and write facts; every failure degrades to 'not cached', never to an error."""

    def __init__(self, directory: Path, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.notes: list[str] = []
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, str, str, bytes, str]] = []
        self._restamped: list[tuple[int, int, str, str]] = []
        self._open()

    def _open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ignore = self.directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by scalelint.\n*\n", encoding="utf-8")
            self._db = sqlite3.connect(self.directory / "facts.sqlite", timeout=2)
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._db.executescript("DROP TABLE IF EXISTS facts; DROP TABLE IF EXISTS runs;")
                self._create()
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
            self._create()
        except (sqlite3.DatabaseError, OSError) as error:
            self.notes.append(f"cache disabled: {error}")
            self._db = None

    def _create(self) -> None:
        assert self._db is not None
        self._db.executescript(SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _query(self, sql: str, parameters: tuple[object, ...]) -> list[tuple[object, ...]]:
        if self._db is None:
            return []
        try:
            return self._db.execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
            return []

    def entries(self) -> dict[str, Entry]:
        """Every entry made with this salt, by path, in one query and without its facts."""
        rows = self._query(
            "SELECT path, mtime_ns, size, digest, facts_id FROM facts WHERE salt = ?", (self.salt,)
        )
        return {
            str(path): Entry(int(m), int(s), str(d), str(i))  # type: ignore[call-overload]
            for path, m, s, d, i in rows
        }

    def facts(self, paths: Iterable[str]) -> dict[str, FileFacts]:
        """The facts of these paths' entries; an entry that cannot be read is left out."""
        return self.reading(paths).finish()

    def reading(self, paths: Iterable[str]) -> FactsReading:
        """The facts of these paths' entries, read a batch at a time (see `FactsReading`)."""
        return FactsReading(self, set(paths))

    def _rows(self) -> sqlite3.Cursor | None:
        if self._db is None:
            return None
        try:
            return self._db.execute("SELECT path, facts FROM facts WHERE salt = ?", (self.salt,))
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
            return None

    def restamp(self, path: str, mtime_ns: int, size: int) -> None:
        """Record a new stat for an entry whose bytes were found unchanged."""
        self._restamped.append((mtime_ns, size, path, self.salt))

    def put(self, path: str, mtime_ns: int, size: int, digest: str, blob: bytes, facts_id: str) -> None:
        """Keep a file's facts, as `dump_facts` wrote them."""
        self._pending.append((path, mtime_ns, size, digest, self.salt, blob, facts_id))

    def run_result(self, fingerprint: str) -> object | None:
        """What a run with exactly these inputs reported before, if it was kept."""
        rows = self._query("SELECT result FROM runs WHERE fingerprint = ?", (fingerprint,))
        if not rows or not isinstance(rows[0][0], bytes):
            return None
        try:
            with gc_paused():
                result: object = pickle.loads(rows[0][0])
        except _LOAD_ERRORS:
            return None
        return result

    def put_run_result(self, fingerprint: str, result: object) -> None:
        if self._db is None:
            return
        blob = dump_facts(result)
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
            if self._pending or self._restamped:
                with self._db:
                    self._db.executemany(
                        "UPDATE facts SET mtime_ns = ?, size = ? WHERE path = ? AND salt = ?", self._restamped
                    )
                    self._db.executemany(
                        "INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?, ?)", self._pending
                    )
        except sqlite3.OperationalError as error:
            self.notes.append(f"cache not updated: {error}")
        except sqlite3.DatabaseError as error:
            self._reset(f"cache rebuilt ({error})")
        finally:
            self._pending.clear()
            self._restamped.clear()
            if self._db is not None:
                self._db.close()
                self._db = None
