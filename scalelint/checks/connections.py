"""SL1 connections: connections, engines, pools and clients made per request or per row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from scalelint.checks import check, finding, reached_from, request_chain
from scalelint.config import Config
from scalelint.findings import Finding, Related, Severity
from scalelint.project import Operation, ProjectModel

HANDSHAKE = (
    "each pays a TCP+TLS+auth handshake and holds a database connection slot, so a few "
    "hundred concurrent users exhaust the server's connection limit"
)


@dataclass(frozen=True, slots=True)
class Opens:
    """What a connection-making operation creates, why it costs, how bad per request."""

    what: str
    why: str
    severity: Severity


OPENS = {
    "db.connect": Opens("opens a new database connection", HANDSHAKE, Severity.ERROR),
    "db.pool": Opens("creates a new connection pool (or engine)", HANDSHAKE, Severity.ERROR),
    "cache.connect": Opens("creates a new Redis client and connection pool", HANDSHAKE, Severity.ERROR),
    "cache.pool": Opens("creates a new Redis connection pool", HANDSHAKE, Severity.ERROR),
    "db.client": Opens(
        "creates a new Supabase client",
        "each builds its own HTTP connection pool and auth state, so every request pays new "
        "TLS handshakes to the API",
        Severity.ERROR,
    ),
    "http.client": Opens(
        "creates a new HTTP client session",
        "its connection pool is thrown away with it, so every request pays new TCP/TLS "
        "handshakes to the upstream",
        Severity.WARNING,
    ),
    "sdk.client": Opens(
        "creates a new SDK client",
        "the client's HTTP connection pool is rebuilt per request, so every call pays new TCP/TLS handshakes",
        Severity.WARNING,
    ),
}
FIX = "create it once per process (module level, startup or lifespan) and reuse it"


def _carries_user_token(op: Operation) -> bool:
    """A Supabase client built per request with options: usually to carry the user's JWT."""
    return op.op == "db.client" and (op.site.has_kwarg("options") or len(op.site.args) > 2)


@check("SL101")
def per_request_connection(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        opens = OPENS.get(op.op)
        if opens is None or op.site.stored_globally or op.function not in project.request_path:
            continue
        handler, _ = project.request_path[op.function]
        severity = opens.severity
        if _carries_user_token(op):
            severity = Severity.INFO
            message = (
                f"`{op.site.text}` creates a Supabase client on every request ({handler.label}), "
                "probably to carry the user's JWT: share one client and pass the token per call "
                "(`client.postgrest.auth(token)`) or let RLS read it from the request headers"
            )
        else:
            message = f"`{op.site.text}` {opens.what} on every request ({handler.label}): {opens.why}; {FIX}"
        yield finding(
            "SL101",
            project.path_of(op.function),
            op.site.span,
            message + reached_from(project, op.function),
            request_chain(project, op.function),
            severity,
        )


@check("SL102")
def connection_in_loop(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        opens = OPENS.get(op.op)
        loop = next((loop for loop in reversed(op.site.loops) if loop.per_item), None)
        if opens is None or loop is None:
            continue
        message = (
            f"`{op.site.text}` {opens.what} on every iteration of the loop over "
            f"`{loop.iter_text}` (line {loop.line}): N items cost N handshakes and up to N "
            "server connections at once; open one before the loop and reuse it"
        )
        related = (Related(project.path_of(op.function), loop.line, "the loop"),)
        yield finding("SL102", project.path_of(op.function), op.site.span, message, related)


@check("SL104")
def unreleased_connection(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for function, ops in project.operations.items():
        released_in_finally = any(op.op == "db.release" and op.site.in_finally for op in ops)
        for op in ops:
            site = op.site
            if op.op != "db.checkout" or site.as_context or site.returned or site.stored_globally:
                continue
            if released_in_finally:
                continue
            on_request_path = function in project.request_path
            message = (
                f"`{site.text}` takes a connection that is not released on every path: use it as "
                "a context manager (`with ... as conn:`) or give it back in a `finally:` block; "
                "an exception here leaks one pool slot"
            )
            if on_request_path:
                handler, _ = project.request_path[function]
                message += (
                    f", and on every failing request ({handler.label}) another, until the pool is "
                    "exhausted and every request waits" + reached_from(project, function)
                )
            yield finding(
                "SL104",
                project.path_of(function),
                site.span,
                message,
                request_chain(project, function) if on_request_path else (),
                None if on_request_path else Severity.WARNING,
            )
