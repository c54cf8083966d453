"""SL1 connections: a connection, engine, pool or client created per request."""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding, request_chain
from scalelint.config import Config
from scalelint.findings import Finding
from scalelint.project import ProjectModel

HANDSHAKE = (
    "each pays a TCP+TLS+auth handshake and holds a server connection slot, so a few "
    "hundred concurrent users exhaust the server"
)
WHAT = {
    "db.connect": ("opens a new database connection", HANDSHAKE),
    "db.pool": ("creates a new connection pool (or engine)", HANDSHAKE),
    "cache.connect": ("creates a new Redis client and its connection pool", HANDSHAKE),
    "cache.pool": ("creates a new Redis connection pool", HANDSHAKE),
    "db.client": (
        "creates a new Supabase client",
        "each builds its own HTTP connection pool and auth state, so every request pays "
        "new TLS handshakes to the API",
    ),
}


@check("SL101")
def per_request_connection(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op not in WHAT or op.site.stored_globally:
            continue
        if op.function not in project.request_path:
            continue
        handler, _ = project.request_path[op.function]
        message = (
            f"`{op.site.text}` {WHAT[op.op][0]} on every request ({handler.label}): "
            f"{WHAT[op.op][1]}; create it once per process (module level or startup) and reuse it"
        )
        yield finding(
            "SL101",
            project.path_of(op.function),
            op.site.span,
            message,
            request_chain(project, op.function),
        )
