"""`[tool.scalelint]` in pyproject.toml, or scalelint.toml: read, validated, typed.

An unknown key or a value of the wrong type is a ConfigError naming the key and
the file; the CLI prints it as one line and exits 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelint.facts.sql_text import DEFAULT_DIALECT
from scalelint.findings import Severity
from scalelint.request_path_types import RequestPathSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILES = ("scalelint.toml", ".scalelint.toml", "pyproject.toml")
ROOT_MARKERS = (*CONFIG_FILES, ".git")
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".env",
    "env",
    "node_modules",
    "build",
    "dist",
    "__pycache__",
    "site-packages",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".scalelint_cache",
    ".eggs",
)


class ConfigError(Exception):
    """A configuration problem, worded for the user."""


@dataclass
class Config:
    """Settings that change what scalelint checks and reports."""

    root: Path
    source: Path | None = None
    select: tuple[str, ...] = ("SL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fail_on: Severity = Severity.WARNING
    apis: tuple[Path, ...] = ()
    schema: tuple[str, ...] = ()
    dialect: str = DEFAULT_DIALECT
    respect_gitignore: bool = True
    cache_dir: str = ".scalelint_cache"
    http_allow: tuple[str, ...] = ()
    unbounded_scope: str = "request"
    per_row_scope: str = "all"
    max_pool_size: int = 50
    pgbouncer_pool_size: tuple[int, int] = (20, 50)
    max_page_size: int = 100
    max_db_calls_per_request: int = 1
    accepted_staleness: int = 0  # seconds a cached read may lag a write (SL201)
    tenant_columns: tuple[str, ...] = ("tenant_id",)
    # Functions a row-level-security policy should call once per query, not per row.
    rls_functions: tuple[str, ...] = ("auth.uid", "auth.jwt", "auth.role", "auth.email", "current_setting")
    # Tables (or ORM model classes) read on most requests that change rarely (SL202).
    hot_tables: tuple[str, ...] = ()
    request_path: RequestPathSettings = field(default_factory=RequestPathSettings)


def _str_list(key: str, value: Any, source: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: '{key}' must be a list of strings")
    return tuple(value)


def _positive_int(key: str, value: Any, source: Path) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{source}: '{key}' must be a positive integer")
    return value


def _fail_on(key: str, value: Any, source: Path) -> Severity:
    try:
        return Severity.parse(value)
    except (KeyError, AttributeError):
        raise ConfigError(f"{source}: '{key}' must be one of error, warning, info") from None


def _per_file_ignores(key: str, value: Any, source: Path) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a table of glob = [rule ids]")
    return {glob: _str_list(f"{key}.{glob}", ids, source) for glob, ids in value.items()}


def _bool(key: str, value: Any, source: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be true or false")
    return value


def _string(key: str, value: Any, source: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{source}: '{key}' must be a non-empty string")
    return value


def _scope(key: str, value: Any, source: Path) -> str:
    if value not in ("request", "all"):
        raise ConfigError(f'{source}: \'{key}\' must be "request" or "all"')
    return str(value)


def _dialect(key: str, value: Any, source: Path) -> str:
    # Whether sqlglot knows the name is asked only when files are parsed (`check_dialect`):
    # a warm run never imports sqlglot.
    if not isinstance(value, str):
        raise ConfigError(f"{source}: '{key}' must be a string")
    return value


def check_dialect(config: Config) -> None:
    """A dialect sqlglot does not know is a config error, raised before any file is parsed."""
    if config.dialect == DEFAULT_DIALECT:
        return
    from scalelint.facts.sql import is_dialect

    if not is_dialect(config.dialect):
        raise ConfigError(f"{config.source}: 'dialect' = '{config.dialect}' is not a dialect sqlglot knows")


REQUEST_PATH_KEYS = {
    "handler-decorators": "handler_decorators",
    "handlers": "handlers",
    "background": "background",
}


def _request_path(key: str, value: Any, source: Path) -> RequestPathSettings:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a table")
    settings: dict[str, tuple[str, ...]] = {}
    for name, patterns in value.items():
        if name not in REQUEST_PATH_KEYS:
            raise ConfigError(f"{source}: unknown key '{name}' in {key}")
        settings[REQUEST_PATH_KEYS[name]] = _str_list(f"{key}.{name}", patterns, source)
    return RequestPathSettings(**settings)


def _size_range(key: str, value: Any, source: Path) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        or value[0] > value[1]
    ):
        raise ConfigError(f"{source}: '{key}' must be [lowest, highest], two positive integers")
    return (value[0], value[1])


FIELDS = {
    "select": ("select", _str_list),
    "ignore": ("ignore", _str_list),
    "extend-select": ("extend_select", _str_list),
    "exclude": ("exclude", _str_list),
    "extend-exclude": ("extend_exclude", _str_list),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "fail-on": ("fail_on", _fail_on),
    "apis": ("apis", _str_list),
    "schema": ("schema", _str_list),
    "dialect": ("dialect", _dialect),
    "respect-gitignore": ("respect_gitignore", _bool),
    "cache-dir": ("cache_dir", _string),
    "http-allow": ("http_allow", _str_list),
    "unbounded-scope": ("unbounded_scope", _scope),
    "per-row-scope": ("per_row_scope", _scope),
    "max-pool-size": ("max_pool_size", _positive_int),
    "pgbouncer-pool-size": ("pgbouncer_pool_size", _size_range),
    "max-page-size": ("max_page_size", _positive_int),
    "max-db-calls-per-request": ("max_db_calls_per_request", _positive_int),
    "accepted-staleness": ("accepted_staleness", _positive_int),
    "request-path": ("request_path", _request_path),
    "tenant-columns": ("tenant_columns", _str_list),
    "rls-functions": ("rls_functions", _str_list),
    "hot-tables": ("hot_tables", _str_list),
}


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding a config file or `.git`."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return folder


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def settings_table(path: Path) -> dict[str, Any] | None:
    """The scalelint settings in a config file; None if a pyproject.toml has none."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("scalelint")
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.scalelint] must be a table")
        return table
    return data


def load_config(root: Path, explicit: Path | None = None) -> Config:
    """Config for a project root, from `explicit` or the first config file found there."""
    config = Config(root=root.resolve())
    candidates = [explicit] if explicit is not None else [root / name for name in CONFIG_FILES]
    for path in candidates:
        if not path.is_file():
            if explicit is not None:
                raise ConfigError(f"{path}: config file not found")
            continue
        table = settings_table(path)
        if table is None:
            continue
        config.source = path
        _apply(config, table, path)
        break
    return config


def _apply(config: Config, table: dict[str, Any], source: Path) -> None:
    where = "[tool.scalelint]" if source.name == "pyproject.toml" else "the top level"
    for key, value in table.items():
        if key not in FIELDS:
            raise ConfigError(f"{source}: unknown key '{key}' in {where}")
        attribute, convert = FIELDS[key]
        setattr(config, attribute, convert(key, value, source))
    base = source.parent
    config.apis = tuple((base / str(p)).resolve() for p in config.apis)
    for path in config.apis:
        if not path.is_file():
            raise ConfigError(f"{source}: 'apis' names {path.name}, which does not exist")
