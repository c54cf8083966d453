"""Which files make up the project: a walk that respects .gitignore and excludes."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pathspec

from scalelint.config import Config
from scalelint.facts.deploy import is_config_file

Spec = pathspec.GitIgnoreSpec
PLAIN_NAME = re.compile(r"[^/*?\[\]\\!#\s]+")  # no slash, wildcard, escape, negation, comment or space


def _spec(patterns: Iterable[str]) -> Spec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def _excludes(patterns: list[str]) -> tuple[frozenset[str], list[str]]:
    """Exclude patterns as plain names (`.venv`, `build`: any file or folder of that name,
    at any depth), looked up in a set, and the patterns left for pathspec (which tries
    each pattern's regex on every path: most of the walk's time with the default
    excludes). Patterns that negate (`!keep.py`) take every pattern to pathspec, since
    the order of patterns then matters."""
    if any(p.startswith("!") for p in patterns):
        return frozenset(), patterns
    names = frozenset(p for p in patterns if PLAIN_NAME.fullmatch(p))
    return names, [p for p in patterns if p not in names]


def _gitignore(folder: Path) -> Spec | None:
    path = folder / ".gitignore"
    if not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return _spec(lines)


def is_source(path: Path) -> bool:
    """Python and SQL, and the deployment config files the connection rules read."""
    return _is_source_name(path.name)


def _is_source_name(name: str) -> bool:
    return os.path.splitext(name)[1] in (".py", ".sql") or is_config_file(name)


def discover(config: Config, when_many: tuple[int, Callable[[], object]] | None = None) -> list[Path]:
    """Every .py and .sql file of the project, sorted, excludes and .gitignore applied;
    `when_many` = (count, call): `call()` once the walk has found that many.

    Paths are matched as POSIX strings relative to the root (a `.gitignore` against the
    part below its own folder), with one `scandir` per folder: a warm run spends most of
    its time here."""
    root = config.root
    many, call = when_many if when_many is not None else (0, None)
    names, patterns = _excludes([*config.exclude, *config.extend_exclude])
    excluded = _spec(patterns) if patterns else None
    found: list[Path] = []

    def ignored(relative: str, name: str, ignores: list[tuple[str, Spec]]) -> bool:
        # The walk only enters folders that are not excluded: a name excludes a path when
        # it is the path's last part, `name`.
        if name in names:
            return True
        if excluded is not None and excluded.match_file(relative):
            return True
        return any(spec.match_file(relative[len(base) :]) for base, spec in ignores)

    def walk(folder: str, relative: str, ignores: list[tuple[str, Spec]]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        if config.respect_gitignore and any(entry.name == ".gitignore" for entry in entries):
            spec = _gitignore(Path(folder))
            if spec is not None:
                ignores = [*ignores, (relative, spec)]
        for entry in entries:
            inner = relative + entry.name
            if entry.is_dir(follow_symlinks=False):
                if not ignored(inner + "/", entry.name, ignores):
                    walk(entry.path, inner + "/", ignores)
            elif _is_source_name(entry.name) and entry.is_file() and not ignored(inner, entry.name, ignores):
                found.append(Path(entry.path))
                if len(found) == many and call is not None:
                    call()

    walk(str(root), "", [])
    return sorted(found)


def report_scope(paths: Iterable[Path], config: Config) -> tuple[list[Path], list[Path]]:
    """The files to report on for the paths given, and paths that were not found.

    A folder means its source files under the usual excludes; a file named
    explicitly is checked even when excluded (as ruff does).
    """
    root_files = None
    selected: list[Path] = []
    missing: list[Path] = []
    for raw in paths:
        path = raw.resolve()
        if not path.exists():
            missing.append(raw)
        elif path.is_dir():
            if root_files is None:
                root_files = discover(config)
            selected.extend(f for f in root_files if f == path or path in f.parents)
        elif is_source(path):
            selected.append(path)
    return sorted(set(selected)), missing
