"""Deployment and server config files: the numbers the connection math needs.

pgbouncer.ini (every setting of its [pgbouncer] section), postgresql.conf
(`max_connections`), and the worker count and Postgres `max_connections` as they are
written in Procfiles, Dockerfiles and compose files. Keys are normalised:
`pgbouncer.pool_mode`, `postgres.max_connections`, `app.workers`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

from scalelint.facts.model import Const, DictLiteral, FileFacts, Setting

CONFIG_FILES = (
    "pgbouncer.ini",
    "postgresql.conf",
    "postgresql.auto.conf",
    "Procfile",
    "Dockerfile",
    "Dockerfile.*",
    "*.dockerfile",
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "compose*.yml",
    "compose*.yaml",
)
POOLER_PORTS = {"6432", "6543"}  # PgBouncer's default port, Supabase's transaction pooler
POOLER_IN_DSN = re.compile(r":(6432|6543)(/|$|\?)|pgbouncer=true", re.I)
INI_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*(.*?)\s*$")
SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
# `--workers 8`, `-w 8`, `WEB_CONCURRENCY=8`, and the exec form `"--workers", "8"`.
WORKERS = re.compile(r"(?:--workers|(?<![\w-])-w|WEB_CONCURRENCY)[\"']?(?:\s*[=:,]\s*|\s+)[\"']?(\d+)")
DATABASE_POOL_MODE = re.compile(r"\bpool_mode\s*=\s*(\w+)")
MAX_CONNECTIONS = re.compile(r"max_connections\s*=\s*[\"']?(\d+)")


# One pattern for all names (asked of every file of the project on every run).
_CONFIG_NAME = re.compile("|".join(fnmatch.translate(pattern) for pattern in CONFIG_FILES))


def is_config_file(name: str) -> bool:
    return _CONFIG_NAME.match(name) is not None


def _strip_comment(line: str) -> str:
    return re.split(r"\s[;#]|^[;#]", line, maxsplit=1)[0]


def _ini_settings(text: str, prefix: str, only_section: str | None) -> list[Setting]:
    settings: list[Setting] = []
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        header = SECTION.match(line)
        if header:
            section = header.group(1).strip().lower()
            settings.append(Setting(f"{prefix}.[{section}]", "", number))
            continue
        match = INI_LINE.match(line)
        if match and (only_section is None or section == only_section):
            value = match.group(2).strip().strip("'\"")
            settings.append(Setting(f"{prefix}.{match.group(1).lower()}", value, number))
    return settings


def config_facts(path: str, text: str) -> FileFacts:
    """Settings found in one config file."""
    name = path.rsplit("/", 1)[-1]
    settings: list[Setting] = []
    if name == "pgbouncer.ini":
        settings = _ini_settings(text, "pgbouncer", "pgbouncer")
        # `[databases]` entries may set their own pool_mode.
        for setting in _ini_settings(text, "pgbouncer.databases", "databases"):
            match = DATABASE_POOL_MODE.search(setting.value)
            if match:
                settings.append(Setting("pgbouncer.databases.pool_mode", match.group(1), setting.line))
    elif name.startswith("postgresql"):
        settings = [s for s in _ini_settings(text, "postgres", None) if s.key == "postgres.max_connections"]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.lstrip().startswith("#"):
                continue
            settings += [Setting("app.workers", m.group(1), number) for m in WORKERS.finditer(line)]
            settings += [
                Setting("postgres.max_connections", m.group(1), number)
                for m in MAX_CONNECTIONS.finditer(line)
            ]
    return FileFacts(path, "config", settings=tuple(settings))


def has_pooler_marker(text: str) -> bool:
    """A connection string that goes through PgBouncer or Supabase's pooler."""
    return bool(POOLER_IN_DSN.search(text))


def pooler_evidence(facts: FileFacts) -> str | None:
    """Why a Python file says the app connects through a pooler, if it does: a string it
    passes to a call or binds to a module name, or Django's `DATABASES` (read from the
    strings as Python decodes them, joined and unescaped)."""
    if any(has_pooler_marker(text) for text in _strings(facts)):
        return f"a connection string in {facts.path} points at a pooler"
    for name, value in facts.module_vars:
        if name == "DATABASES" and isinstance(value, DictLiteral) and POOLER_PORTS & value.strings:
            return f"Django's DATABASES in {facts.path} use a pooler port"
    return None


def _strings(facts: FileFacts) -> Iterator[str]:
    """String literals a file passes to calls or assigns to module names."""
    for _, held in facts.module_vars:
        if isinstance(held, Const) and isinstance(held.value, str):
            yield held.value
    for sites in (facts.module_calls, *(fn.calls for fn in facts.functions)):
        for site in sites:
            for value in (*site.args, *(v for _, v in site.kwargs)):
                if isinstance(value, Const) and isinstance(value.value, str):
                    yield value.value
