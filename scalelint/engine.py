"""One run: discover files, phase 1 per file, phase 2 for the project, checks, filters."""

from __future__ import annotations

import gc
import io
import os
import time
import tokenize
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pathspec

from scalelint.cache import Entry, FactsCache, cache_salt, content_digest, dump_facts, gc_paused, load_facts
from scalelint.config import Config, ConfigError, check_dialect
from scalelint.facts.model import FileFacts, ParseError
from scalelint.facts.suppressions import config_suppressions, is_suppressed, sql_suppressions
from scalelint.files import Spec, discover, report_scope
from scalelint.findings import Finding, Related
from scalelint.knowledge import Knowledge, knowledge_digest, knowledge_files, knowledge_from
from scalelint.rulebook import RULES_DIR, all_rules, checklist

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from scalelint.project import ProjectModel

MAX_FILE_BYTES = 10 * 1024 * 1024
PARALLEL_MIN_FILES = 64  # below this, starting worker processes costs more than it saves


@dataclass
class RunResult:
    """What a run found, in the report scope, ready for a reporter."""

    findings: list[Finding]
    files_checked: int
    root: Path
    enabled: frozenset[str]
    cwd: Path = field(default_factory=Path.cwd)
    warnings: list[str] = field(default_factory=list)
    debug: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    unparsed_sql: int = 0  # in the checked files: counted by --statistics, never a finding

    @property
    def cwd_uri(self) -> str:
        return self.cwd.as_uri().rstrip("/") + "/"

    _lines: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def source_line(self, path: str, line: int) -> str | None:
        """The text of a line of a reported file (for code frames and fingerprints)."""
        if path not in self._lines:
            try:
                text = (self.cwd / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            self._lines[path] = text.splitlines()
        lines = self._lines[path]
        return lines[line - 1] if 0 < line <= len(lines) else None


def known_rule_ids() -> set[str]:
    """Every id in the catalog, implemented or planned."""
    ids = set(all_rules())
    for item in checklist():
        ids.update(item.rules)
    return ids


def enabled_rules(config: Config) -> frozenset[str]:
    """Implemented rules that select/extend-select pick and ignore does not drop."""
    known = known_rule_ids()
    # A stable rule page has its check (tests hold the two together): knowing which are
    # implemented needs no import of the checks, which a warm run never runs.
    implemented = {rule.id for rule in all_rules().values() if rule.status == "stable"}
    for selector in (*config.select, *config.extend_select, *config.ignore):
        if selector.upper() != "ALL" and not any(r.startswith(selector.upper()) for r in known):
            raise ConfigError(f"unknown rule selector '{selector}'")

    def matches(rule: str, selectors: Iterable[str]) -> bool:
        return any(s.upper() == "ALL" or rule.startswith(s.upper()) for s in selectors)

    def selected(rule: str) -> bool:
        # A rule that is off by default (`default = false` on its page) is only
        # turned on by its own id, not by a prefix.
        chosen = (*config.select, *config.extend_select)
        if all_rules()[rule].default_enabled:
            return matches(rule, chosen)
        return any(s.upper() == rule for s in chosen)

    return frozenset(
        rule
        for rule in all_rules()
        if rule in implemented and selected(rule) and not matches(rule, config.ignore)
    )


def load_file(path: Path, relative: str, dialect: str) -> tuple[FileFacts, str | None]:
    """Facts of one file, and a warning when it was skipped."""
    loaded = _load(path, relative, dialect)
    return loaded.facts, loaded.warning


class _Loaded(NamedTuple):
    """Phase 1's result for one file: its facts and the hash of the bytes they came from."""

    facts: FileFacts
    digest: str  # "" when the file could not be read
    warning: str | None
    blob: bytes | None = None  # the facts as `dump_facts` wrote them, when a worker sent them
    facts_id: str = ""  # the digest of `blob`, worked out by the worker


def _load(path: Path, relative: str, dialect: str) -> _Loaded:
    language = "sql" if path.suffix == ".sql" else "python" if path.suffix == ".py" else "config"
    try:
        data = path.read_bytes()
    except OSError as error:
        skipped = f"{relative}: skipped, cannot read: {error.strerror}"
        return _Loaded(FileFacts(relative, language), "", skipped)
    facts, warning = _facts_of(data, relative, language, dialect)
    return _Loaded(facts, content_digest(data), warning)


def _facts_of(data: bytes, relative: str, language: str, dialect: str) -> tuple[FileFacts, str | None]:
    if len(data) > MAX_FILE_BYTES:
        return FileFacts(relative, language), f"{relative}: skipped, larger than 10 MB"
    if b"\0" in data:
        return FileFacts(relative, language), f"{relative}: skipped, binary file (NUL bytes)"
    try:
        text = decode_source(data, language)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        message = f"not valid {error.encoding} text (byte 0x{data[error.start]:02x} on line {line})"
        return FileFacts(relative, language, parse_error=ParseError(message, line)), None
    except (SyntaxError, LookupError) as error:
        message = f"bad encoding declaration: {error}"
        return FileFacts(relative, language, parse_error=ParseError(message)), None
    if language == "config":
        from scalelint.facts.deploy import config_facts

        return replace(config_facts(relative, text), suppressions=config_suppressions(text)), None
    if language == "sql":
        from scalelint.facts.sql import analyse_file

        statements, failed = analyse_file(text, dialect)
        notes = (f"{failed} SQL statement(s) sqlglot could not parse",) if failed else ()
        return FileFacts(
            relative,
            "sql",
            sql=tuple(statements),
            suppressions=sql_suppressions(text),
            notes=notes,
            unparsed_sql=failed,
        ), None
    from scalelint.facts.python import python_facts

    return python_facts(relative, text, dialect), None


def decode_source(data: bytes, language: str) -> str:
    """Source text: UTF-8, or the encoding a Python file declares (PEP 263)."""
    if language != "python":
        return data.decode("utf-8-sig")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        # No valid declaration: an undecodable byte in the first lines is a UTF-8 error.
        data.decode("utf-8")
        raise
    return data.decode(encoding)


def _load_chunk(chunk: list[tuple[Path, str]], dialect: str) -> list[tuple[bytes, str, str, str | None]]:
    """A worker's share: facts go back as compact blobs with their digests (the parent can
    cache them as they are)."""
    results = []
    for path, relative in chunk:
        loaded = _load(path, relative, dialect)
        blob = dump_facts(loaded.facts)
        results.append((blob, content_digest(blob), loaded.digest, loaded.warning))
        _parsed_one()
    return results


Progress = Callable[[int, int], None]
CHUNKS_PER_WORKER = 12  # enough that the last chunks to finish are small, few enough to keep overhead low
FILE_COST_BYTES = 2048  # what opening and setting up a file costs, in bytes of source parsed


def _chunks(files: list[tuple[Path, str]], sizes: list[int], jobs: int) -> list[list[int]]:
    """Indexes of `files` in chunks of about equal bytes, the largest files first.

    Handing out big files first and small ones last keeps every worker busy until the
    end instead of one of them parsing a large chunk alone.
    """
    costs = [size + FILE_COST_BYTES for size in sizes]
    order = sorted(range(len(files)), key=lambda i: (-costs[i], i))
    budget = sum(costs) // (jobs * CHUNKS_PER_WORKER)
    chunks: list[list[int]] = []
    current: list[int] = []
    filled = 0
    for index in order:
        current.append(index)
        filled += costs[index]
        if filled >= budget:
            chunks.append(current)
            current, filled = [], 0
    if current:
        chunks.append(current)
    return chunks


def _parsed_one() -> None:
    """Free the cycles that parsing a file left behind, looking at young objects only.

    Automatic collection is paused for the run (`_collector_paused`) and what was in
    memory before parsing began is frozen, so the youngest generation holds just what
    the last file made: collecting it costs what the parse made, not the whole heap.
    """
    gc.collect(0)


def _worker_start() -> None:
    """A worker's set-up: the collector as in the parent (see `_parsed_one`), and the
    parser imported before the first files arrive."""
    gc.disable()
    gc.freeze()
    import scalelint.facts.python  # noqa: F401


def _pool(workers: int) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor  # not needed by a warm run

    if os.name == "nt":
        workers = min(workers, 61)  # what Windows can wait on at once
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_start)


def _ready() -> None:
    """A task that only makes the pool start a worker for it."""


class EarlyWorkers:
    """Worker processes started while the tree is still being walked, once it has shown
    enough files to parse in parallel: each imports the parser meanwhile (a tenth of a
    second), so the first files are parsed as soon as the walk is over.

    Started only for runs that will parse every file (no cache, or none made yet).
    `load_all` takes the pool over; `close` stops one that nothing took.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        pool = None
        try:
            pool = _pool(self.jobs)
            for _ in range(self.jobs):  # one task each, so every worker starts now
                pool.submit(_ready)
        except (OSError, ImportError, NotImplementedError, RuntimeError):
            if pool is not None:  # the workers that did start
                pool.shutdown(wait=False, cancel_futures=True)
            return  # `load_all` tries again, and parses here if it cannot start them either
        self.pool = pool

    def take(self) -> ProcessPoolExecutor | None:
        pool, self.pool = self.pool, None
        return pool

    def close(self) -> None:
        pool = self.take()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def load_all(
    files: list[tuple[Path, str]],
    dialect: str,
    jobs: int,
    progress: Progress | None = None,
    sizes: list[int] | None = None,
    meanwhile: Iterator[object] | None = None,
    overlap: bool = False,
    started: EarlyWorkers | None = None,
) -> list[_Loaded]:
    """Phase 1 for every file, in worker processes when there are enough files, or when
    `overlap` asks for a worker to parse a few files while this process runs `meanwhile`;
    in the workers `started` holds, if it holds any.

    Workers get paths in chunks and send back facts as blobs (never trees); results
    keep the input order, so the output is the same for every `jobs` value. While the
    workers start and parse, this process advances `meanwhile`, a step of other work at
    a time, until it ends or every worker is done; in process, it is not advanced. When
    worker processes cannot be started or one dies (killed for memory, say), the files
    they did not return are parsed here.
    """
    if jobs <= 1 or not files or (len(files) < PARALLEL_MIN_FILES and not overlap):
        return _load_here(files, dialect, progress)
    chunks = _chunks(files, sizes or [0] * len(files), jobs)
    done: list[_Loaded | None] = [None] * len(files)
    count = 0
    from concurrent.futures import as_completed  # not needed by a warm run
    from concurrent.futures.process import BrokenProcessPool

    pool = started.take() if started is not None else None
    try:
        pool = pool or _pool(min(jobs, len(chunks)))
        with pool:
            futures = {pool.submit(_load_chunk, [files[i] for i in c], dialect): c for c in chunks}
            for _ in meanwhile or ():
                if all(future.done() for future in futures):
                    break
            for future in as_completed(futures):
                with gc_paused():
                    for index, (blob, facts_id, digest, warning) in zip(
                        futures[future], future.result(), strict=True
                    ):
                        facts = load_facts(blob)
                        if facts is None:  # cannot happen short of a broken worker: parse here instead
                            done[index] = _load(*files[index], dialect)
                        else:
                            done[index] = _Loaded(facts, digest, warning, blob, facts_id)
                count += len(futures[future])
                if progress is not None:
                    progress(count, len(files))
    except (BrokenProcessPool, OSError, ImportError, NotImplementedError):
        left = [index for index, item in enumerate(done) if item is None]
        for index, loaded in zip(left, _load_here([files[i] for i in left], dialect, None), strict=True):
            done[index] = loaded
    return [item for item in done if item is not None]


def _load_here(files: list[tuple[Path, str]], dialect: str, progress: Progress | None) -> list[_Loaded]:
    results = []
    for index, item in enumerate(files, start=1):
        results.append(_load(*item, dialect))
        _parsed_one()
        if progress is not None:
            progress(index, len(files))
    return results


@dataclass
class _Stat:
    mtime_ns: int = 0
    size: int = 0


def _stat_all(listed: list[tuple[Path, str]]) -> dict[str, _Stat]:
    """(mtime, size) of every file, read once per run; unreadable files are left out."""
    stats: dict[str, _Stat] = {}
    for path, relative in listed:
        try:
            st = path.stat()
        except OSError:
            continue
        stats[relative] = _Stat(st.st_mtime_ns, st.st_size)
    return stats


class _CacheState(NamedTuple):
    """What the cache holds for this run's files, before any facts are read."""

    hits: list[str]  # files whose entry is current (by stat, or by the hash of their bytes)
    todo: list[tuple[Path, str]]  # files to parse
    entries: dict[str, Entry]


def _cache_state(
    listed: list[tuple[Path, str]], cache: FactsCache | None, stats: dict[str, _Stat]
) -> _CacheState:
    """A file is a hit when its (mtime, size) match its entry, or else when the hash of its
    bytes does (then the entry gets the new stat)."""
    if cache is None:
        return _CacheState([], list(listed), {})
    entries = cache.entries()
    hits: list[str] = []
    todo: list[tuple[Path, str]] = []
    for path, relative in listed:
        stat, entry = stats.get(relative), entries.get(relative)
        if stat is None or entry is None:
            todo.append((path, relative))
            continue
        if (entry.mtime_ns, entry.size) != (stat.mtime_ns, stat.size):
            if stat.size > MAX_FILE_BYTES or _digest_of(path) != entry.digest:
                todo.append((path, relative))
                continue
            cache.restamp(relative, stat.mtime_ns, stat.size)
        hits.append(relative)
    return _CacheState(hits, todo, entries)


def _parse(
    todo: list[tuple[Path, str]],
    inputs: _Inputs,
    cache: FactsCache | None,
    jobs: int,
    progress: Progress | None,
    meanwhile: Iterator[object] | None = None,
    overlap: bool = False,
    started: EarlyWorkers | None = None,
) -> dict[str, tuple[_Loaded, str]]:
    """Phase 1 on these files, each with the name of its facts; the cache keeps them."""
    stats = inputs.stats
    sizes = [stats[relative].size if relative in stats else 0 for _, relative in todo]
    parsed: dict[str, tuple[_Loaded, str]] = {}
    loading = load_all(todo, inputs.config.dialect, jobs, progress, sizes, meanwhile, overlap, started)
    for loaded in loading:
        path = loaded.facts.path
        if loaded.warning or not loaded.digest:
            parsed[path] = (loaded, f"unread:{loaded.warning}")
            continue
        blob, facts_id = loaded.blob, loaded.facts_id
        if blob is None:
            blob = dump_facts(loaded.facts)
            facts_id = content_digest(blob)
        parsed[path] = (loaded, facts_id)
        stat = stats.get(path)
        if cache is not None and stat is not None:
            cache.put(path, stat.mtime_ns, stat.size, loaded.digest, blob, facts_id)
    return parsed


def _digest_of(path: Path) -> str:
    try:
        return content_digest(path.read_bytes())
    except OSError:
        return ""


def code_digest() -> str:
    """scalelint's own code and rule pages: a kept result is stale once they change."""
    package = Path(__file__).parent
    sources = sorted(package.rglob("*.py")) + sorted(RULES_DIR.glob("*.md"))
    return content_digest(b"".join(path.read_bytes() for path in sources))


@dataclass
class _Inputs:
    """What one run reads: the files with their stats, the scope, config and knowledge."""

    listed: list[tuple[Path, str]]
    stats: dict[str, _Stat]
    in_scope: set[str]
    config: Config
    knowledge_files: list[Path]
    enabled: frozenset[str]
    root: Path
    cwd: Path

    @cached_property
    def knowledge(self) -> Knowledge:
        """Parsed only when the project is analysed; a kept result needs just its digest."""
        return knowledge_from(self.knowledge_files)

    def fingerprint(self, facts_ids: dict[str, str] | None = None) -> str:
        """Everything the run's result depends on: the files by their stats, or (given the
        name of each file's facts) by what they say."""
        config = self.config
        knowledge = knowledge_digest(self.knowledge_files)
        parts = [repr(config), knowledge, ",".join(sorted(self.enabled)), str(self.cwd)]
        parts.append(code_digest())
        parts += [cache_salt(config.dialect), *sorted(self.in_scope)]
        for _, relative in self.listed:
            if facts_ids is not None:
                parts.append(f"{relative}:facts:{facts_ids.get(relative, 'missing')}")
                continue
            stat = self.stats.get(relative)
            parts.append(f"{relative}:{stat.mtime_ns}:{stat.size}" if stat else f"{relative}:missing")
        return content_digest("\n".join(parts).encode())


def run(
    paths: list[Path],
    config: Config,
    cwd: Path | None = None,
    jobs: int = 1,
    use_cache: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Analyse the whole project of `config.root`, report on `paths`."""
    with _collector_paused(), _workers_ahead(config, jobs, use_cache) as early:
        return _run(paths, config, cwd, jobs, use_cache, progress, early)


@contextmanager
def _workers_ahead(config: Config, jobs: int, use_cache: bool) -> Iterator[EarlyWorkers | None]:
    """Workers to start during the walk (`EarlyWorkers`), for a run that will parse every
    file with several processes: without the cache, or before it holds anything."""
    fresh = not use_cache or not (config.root / config.cache_dir).exists()
    early = EarlyWorkers(jobs) if jobs > 1 and fresh and _resident is None else None
    try:
        yield early
    finally:
        if early is not None:
            early.close()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic cyclic garbage collection during a run.

    Facts are acyclic and live until the end, yet each automatic full collection walks
    every fact made so far: with it, a cold run spent about a fifth of its CPU time and
    a warm run a third in the collector. `_parsed_one` frees what parsing leaves behind;
    objects frozen during the run (`gc.freeze`) are handed back to the collector after.
    """
    # A daemon hands frozen objects back itself (daemon._settle); a program that froze
    # objects of its own before calling in gets them back frozen.
    hand_back = _resident is None and not gc.get_freeze_count()
    try:
        with gc_paused():
            yield
    finally:
        if hand_back:
            gc.unfreeze()


def _run(
    paths: list[Path],
    config: Config,
    cwd: Path | None,
    jobs: int,
    use_cache: bool,
    progress: Progress | None,
    early: EarlyWorkers | None = None,
) -> RunResult:
    clock = _Clock()
    root = config.root.resolve()
    discovered = discover(config, when_many=(PARALLEL_MIN_FILES, early.start) if early is not None else None)
    if paths and all(path.resolve() == root for path in paths):
        reported = discovered  # the whole project, as report_scope would walk it again
    else:
        reported, missing = report_scope(paths, config)
        if missing:
            raise ConfigError(f"path not found: {missing[0]}")
    analysed = discovered if reported is discovered else sorted(set(discovered) | set(reported))
    listed = [(path, _relative_name(path, root)) for path in analysed]
    name_of = dict(listed)
    in_scope = {name_of[path] for path in reported}
    inputs = _Inputs(
        listed=listed,
        stats=_stat_all(listed),
        in_scope=in_scope,
        config=config,
        knowledge_files=knowledge_files(RULES_DIR / "apis", config.apis),
        enabled=enabled_rules(config),
        root=root,
        cwd=(cwd or Path.cwd()).resolve(),
    )
    clock.lap("discover")
    cache = FactsCache(root / config.cache_dir, cache_salt(config.dialect)) if use_cache else None
    try:
        fingerprint = inputs.fingerprint()
        kept = cache.run_result(fingerprint) if cache is not None and not _filling(root) else None
        if isinstance(kept, RunResult):
            kept = _reused(kept, "nothing changed since a kept run: its result is reused")
            kept.timings = {**clock.laps, "reuse kept result": clock.lap("reuse kept result")}
            return kept
        result, facts_print = _analyse(inputs, cache, jobs, progress, clock, early)
        if cache is not None:
            cache.put_run_result(fingerprint, result)
            cache.put_run_result(facts_print, result)
    finally:
        if cache is not None:
            cache.close()
    result.timings = clock.laps
    return result


def _relative_name(path: Path, root: Path) -> str:
    """A file's name in the project: its path below the root, POSIX style (by string for
    the paths the walk made, which start with the root's)."""
    text, prefix = str(path), str(root) + os.sep
    if not text.startswith(prefix):
        return path.relative_to(root).as_posix()
    name = text[len(prefix) :]
    return name if os.sep == "/" else name.replace(os.sep, "/")


def _analyse(
    inputs: _Inputs,
    cache: FactsCache | None,
    jobs: int,
    progress: Progress | None,
    clock: _Clock,
    early: EarlyWorkers | None = None,
) -> tuple[RunResult, str]:
    """The run's result, and the fingerprint of the facts it was computed from."""
    listed, stats, in_scope, config = inputs.listed, inputs.stats, inputs.in_scope, inputs.config
    enabled, root, cwd = inputs.enabled, inputs.root, inputs.cwd
    state = _cache_state(listed, cache, stats)
    facts: dict[str, FileFacts] = {}
    facts_ids = {path: state.entries[path].facts_id for path in state.hits}
    clock.lap("cache check")
    warnings: list[str] = []
    if state.todo or not listed:  # a dialect is checked where sqlglot would be imported anyway
        check_dialect(config)
    # After an edit, a worker parses the few changed files (importing libcst takes longer
    # than parsing them) while this process reads the other files' facts back, until the
    # worker is done: if the edit changed no facts, the rest is never read.
    overlap = (
        jobs > 1
        and cache is not None
        and _resident is None
        and 0 < len(state.todo) < PARALLEL_MIN_FILES <= len(state.hits)
    )
    reading = cache.reading(state.hits) if overlap and cache is not None else None

    def meanwhile() -> Iterator[None]:
        _phase_two_setup(inputs)
        yield
        while reading is not None and reading.step():
            yield

    parsed = _parse(state.todo, inputs, cache, jobs, progress, meanwhile(), overlap, early)
    for path, (loaded, facts_id) in parsed.items():
        facts[path] = loaded.facts
        facts_ids[path] = facts_id
        if loaded.warning:
            warnings.append(loaded.warning)
    clock.lap("parse")
    facts_print = inputs.fingerprint(facts_ids)
    kept = cache.run_result(facts_print) if cache is not None and not _filling(root) else None
    if isinstance(kept, RunResult):
        # Edits that changed no facts (a comment, a blank line at the end): the same result.
        if reading is not None:
            reading.close()
        return _reused(kept, "the files' facts are those of a kept run: its result is reused"), facts_print
    in_memory = _resident_facts(inputs, state, parsed)
    facts.update(in_memory)
    if reading is not None:
        from_cache = reading.finish()
    else:
        from_cache = cache.facts([p for p in state.hits if p not in in_memory]) if cache is not None else {}
    facts.update(from_cache)
    # An entry that could not be read is parsed again (and written anew).
    unread = [
        (path, relative) for path, relative in listed if relative in state.hits and relative not in facts
    ]
    for path, (loaded, _) in _parse(unread, inputs, cache, jobs, None).items():
        facts[path] = loaded.facts
    # Out of the collector's sight from now on.
    gc.freeze()
    clock.lap("cache read")
    debug = [f"{path}: {note}" for path, f in sorted(facts.items()) for note in f.notes]
    debug.append(f"{len(from_cache) + len(in_memory)} of {len(listed)} files from the cache")
    if reading is not None:
        debug.append(f"{len(parsed)} of {len(listed)} files handed to a worker while the cache was read")
    if cache is not None:
        debug.extend(cache.notes)
    from scalelint.checks import load_checks
    from scalelint.project import ProjectModel

    knowledge = _resident.knowledge(inputs) if _resident is not None else inputs.knowledge
    # Files in path order, however they were read (parsed, from memory, from the cache):
    # where the model keeps the first of several answers, every run then keeps the same.
    facts = {relative: facts[relative] for _, relative in listed if relative in facts}
    project = ProjectModel(facts, knowledge, config.request_path, config.schema)
    if _resident is not None and cache is not None:
        _resident.keep(root, project, facts_ids)
    checks = load_checks()
    ignores = [
        (pathspec.GitIgnoreSpec.from_lines([glob]), tuple(ids))
        for glob, ids in config.per_file_ignores.items()
    ]
    findings: list[Finding] = []
    for rule_id in sorted(enabled):
        for item in checks[rule_id](project, config):
            if item.path not in in_scope or _silenced(item, facts[item.path], ignores):
                continue
            findings.append(_display(item, root, cwd))
    findings.sort(key=lambda f: f.sort_key)
    clock.lap("project and checks")
    unparsed = sum(facts[path].unparsed_sql for path in in_scope if path in facts)
    result = RunResult(findings, len(in_scope), root, enabled, cwd, warnings, debug, unparsed_sql=unparsed)
    return result, facts_print


class Resident:
    """What a long-lived process (`scalelint daemon`) keeps between runs on its project.

    - The facts of every file: taken from memory instead of the cache when the cache
      names the same facts for the file (the same `facts_id`); the daemon reads the
      cache's index as every run does, but unpickles nothing it already holds.
    - The parsed knowledge, while its files are unchanged.
    - The last project model, from which the next one inherits what no changed file
      can affect (`ProjectModel.inherit`).

    Only the files of the last run are kept, so memory follows the project.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, tuple[str, FileFacts]] = {}
        self.project: ProjectModel | None = None
        self._knowledge: tuple[str, Knowledge] | None = None

    def facts(self, root: Path, wanted: dict[str, str]) -> dict[str, FileFacts]:
        """The facts held for these files (path -> facts_id), where the ids match."""
        if root != self.root:
            return {}
        found = {}
        for path, facts_id in wanted.items():
            held = self.files.get(path)
            if held is not None and held[0] == facts_id:
                found[path] = held[1]
        return found

    def knowledge(self, inputs: _Inputs) -> Knowledge:
        digest = knowledge_digest(inputs.knowledge_files)
        if self._knowledge is None or self._knowledge[0] != digest:
            self._knowledge = (digest, inputs.knowledge)
        return self._knowledge[1]

    def keep(self, root: Path, project: ProjectModel, facts_ids: dict[str, str]) -> None:
        """Remember this run's facts and model; the model inherits from the last one."""
        if root != self.root:
            return
        last = self.project
        if last is not None:
            before = self.files
            changed = [path for path, name in facts_ids.items() if before.get(path, ("",))[0] != name]
            project.inherit(last, changed)
            # Models are cyclic (a model and its request-path view point at each other) and the
            # run freezes them out of the collector's sight: a model no run needs any more is
            # taken apart, so reference counting frees it at once.
            _retire(last.release_previous())
            if project.inherits_from is not last:
                _retire(last)
        self.files = {path: (facts_ids[path], f) for path, f in project.files.items() if path in facts_ids}
        self.project = project


def _retire(model: ProjectModel | None) -> None:
    if model is not None:
        model.__dict__.clear()


_resident: Resident | None = None


def keep_facts_in_memory(root: Path) -> None:
    """From now on, runs on the project of `root` keep its facts and model in this process."""
    global _resident
    _resident = Resident(root.resolve())


def _filling(root: Path) -> bool:
    """The daemon's first run: every file's facts are read, not a kept result."""
    return _resident is not None and _resident.root == root and not _resident.files


def _resident_facts(
    inputs: _Inputs, state: _CacheState, parsed: dict[str, tuple[_Loaded, str]]
) -> dict[str, FileFacts]:
    if _resident is None:
        return {}
    wanted = {path: state.entries[path].facts_id for path in state.hits if path not in parsed}
    return _resident.facts(inputs.root, wanted)


def _phase_two_setup(inputs: _Inputs) -> None:
    """What phase 2 needs besides the facts (the checks' code, the parsed knowledge),
    got ready while worker processes parse."""
    from scalelint.checks import load_checks

    load_checks()
    _ = inputs.knowledge


def _reused(kept: RunResult, note: str) -> RunResult:
    kept._lines.clear()
    kept.debug = [
        n
        for n in kept.debug
        if not n.endswith(("files from the cache", "while the cache was read")) and "is reused" not in n
    ]
    kept.debug.append(note)
    return kept


class _Clock:
    """Wall time per phase, for `--timings`."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now
        return self.laps[name]


def _silenced(item: Finding, facts: FileFacts, ignores: list[tuple[Spec, tuple[str, ...]]]) -> bool:
    for line, codes in facts.suppressions:
        if line == item.span.line and is_suppressed(item.rule, codes):
            return True
    return any(
        spec.match_file(item.path) and any(item.rule.startswith(i.upper()) for i in ids)
        for spec, ids in ignores
    )


def _relative(path: str, root: Path, cwd: Path) -> str:
    return Path(os.path.relpath(root / path, cwd)).as_posix()


def _display(item: Finding, root: Path, cwd: Path) -> Finding:
    """Paths as the user sees them: relative to the current directory."""
    related = tuple(Related(_relative(r.path, root, cwd), r.line, r.message) for r in item.related)
    return replace(item, path=_relative(item.path, root, cwd), related=related)
