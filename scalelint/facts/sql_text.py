"""What SQL text says before any parser reads it: whether a string is SQL at all, and
what a session statement leaves on the connection.

Apart from `sql.py` so that reading Python needs sqlglot only once a string looks like
SQL (editing a file without SQL then never imports it).
"""

from __future__ import annotations

import re

SQL_START = re.compile(
    r"^\s*(\(\s*)?(select|insert|update|delete|with|merge|upsert|replace|copy|create|alter|drop)\s",
    re.I,
)
# A second keyword that real statements carry; keeps "Update your profile" out.
SQL_BODY = re.compile(r"\b(from|into|set|table|index|as|values|where|policy|view)\b", re.I)
DEFAULT_DIALECT = "postgres"
# Statements whose effect outlives the transaction: wrong behind a transaction-mode pooler.
SESSION_STATEMENT = re.compile(
    r"^\s*(?:(?P<set>SET)\s+(?:SESSION\s+)?[\w.\"]+\s*(?:=|\bTO\b)|(?P<listen>LISTEN)\s+[\w\"]+\s*;?\s*$)",
    re.I,
)
ADVISORY_LOCK = re.compile(r"\bpg_(?:try_)?advisory_lock(?:_shared)?\s*\(", re.I)


def looks_like_sql(text: str) -> bool:
    """Strong evidence only: a leading SQL verb and a clause keyword, or a session statement."""
    if SESSION_STATEMENT.match(text) or (ADVISORY_LOCK.search(text) and SQL_START.match(text)):
        return True
    return bool(SQL_START.match(text)) and bool(SQL_BODY.search(text))


def session_effects(text: str) -> tuple[str, ...]:
    """What a statement leaves on the connection after the transaction ends."""
    effects = []
    match = SESSION_STATEMENT.match(text)
    if match:
        effects.append("SET" if match.group("set") else "LISTEN")
    if ADVISORY_LOCK.search(text):
        effects.append("pg_advisory_lock")
    return tuple(effects)
