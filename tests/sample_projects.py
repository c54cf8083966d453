"""Shared by the CLI and report tests: small sample sources and how to write a project."""

from __future__ import annotations

from pathlib import Path

# A FastAPI handler that opens a connection per request (SL101, line 7) and runs a
# query per row of a result (SL601, line 11, column 9 = start of `cur.execute`).
HANDLER = """\
import psycopg2
from fastapi import FastAPI
app = FastAPI()

@app.get("/contacts")
def list_contacts():
    conn = psycopg2.connect("dbname=app")
    cur = conn.cursor()
    cur.execute("SELECT id FROM contacts LIMIT 50")
    for (cid,) in cur.fetchall():
        cur.execute("SELECT * FROM notes WHERE contact_id = %s LIMIT 20", (cid,))
    return []
"""
SL101_AT = (7, 12)
SL601_AT = (11, 9)

CLEAN = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health():
    return {"ok": True}
"""

# A handler in app/main.py that reaches psycopg2.connect through a helper in app/db.py.
DB_HELPER = """\
import psycopg2


def get_conn():
    return psycopg2.connect("dbname=app")
"""
MAIN_VIA_HELPER = """\
from fastapi import FastAPI

from app.db import get_conn

app = FastAPI()


@app.get("/contacts")
def list_contacts():
    conn = get_conn()
    return []
"""


def make_project(root: Path, files: dict[str, str | bytes], config: str = "") -> Path:
    """Create `root` with pyproject.toml (`[tool.scalelint]` + `config`) and the files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f"[tool.scalelint]\n{config}", encoding="utf-8")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root
