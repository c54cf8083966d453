"""Which files make up the project: a walk that respects .gitignore and excludes."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pathspec

from scalelint.config import Config
from scalelint.facts.deploy import is_config_file

Spec = pathspec.GitIgnoreSpec


def _spec(patterns: Iterable[str]) -> Spec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


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
    return path.suffix in (".py", ".sql") or is_config_file(path.name)


def discover(config: Config) -> list[Path]:
    """Every .py and .sql file of the project, sorted, excludes and .gitignore applied."""
    root = config.root
    excluded = _spec([*config.exclude, *config.extend_exclude])
    ignores: list[tuple[Path, Spec]] = []
    found: list[Path] = []

    def ignored(path: Path, is_dir: bool) -> bool:
        relative = path.relative_to(root).as_posix() + ("/" if is_dir else "")
        if excluded.match_file(relative):
            return True
        for base, spec in ignores:
            if base == path:
                continue
            try:
                inner = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            except ValueError:
                continue
            if spec.match_file(inner):
                return True
        return False

    for folder, subdirs, files in os.walk(root):
        here = Path(folder)
        ignores = [(b, s) for b, s in ignores if here == b or b in here.parents]
        if config.respect_gitignore:
            spec = _gitignore(here)
            if spec is not None:
                ignores.append((here, spec))
        subdirs[:] = sorted(d for d in subdirs if not (here / d).is_symlink() and not ignored(here / d, True))
        for name in sorted(files):
            path = here / name
            if is_source(path) and not ignored(path, False):
                found.append(path)
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
