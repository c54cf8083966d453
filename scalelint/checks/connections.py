"""SL1 connections: a connection, engine, pool or client created per request."""

from __future__ import annotations

from collections.abc import Iterator

from scalelint.checks import check, finding, request_chain
from scalelint.config import Config
from scalelint.findings import Finding
from scalelint.project import ProjectModel

CONNECTION_OPS = {"db.connect", "db.pool", "cache.connect", "cache.pool"}
WHAT = {
    "db.connect": "opens a new database connection",
    "db.pool": "creates a new connection pool (or engine)",
    "cache.connect": "creates a new Redis client and its connection pool",
    "cache.pool": "creates a new Redis connection pool",
}


@check("SL101")
def per_request_connection(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op not in CONNECTION_OPS or op.site.stored_globally:
            continue
        if op.function not in project.request_path:
            continue
        handler, _ = project.request_path[op.function]
        message = (
            f"`{op.site.text}(...)` {WHAT[op.op]} on every request ({handler.label}): "
            "each one pays a TCP/TLS/auth handshake and holds a server slot, so a few hundred "
            "concurrent users exhaust the server's connection limit; create it once at module "
            "level (or at startup) and take connections from that pool"
        )
        yield finding(
            "SL101",
            project.path_of(op.function),
            op.site.span,
            message,
            request_chain(project, op.function),
        )
