"""SL1 connections: connections, engines, pools and clients made per request or per row."""

from __future__ import annotations

import re
from collections.abc import Iterator

from scalelint.checks import check, finding, reached_from, request_chain
from scalelint.config import Config
from scalelint.facts.deploy import has_pooler_marker
from scalelint.facts.model import CallSite, Const, DictLiteral, Setting
from scalelint.findings import Finding, Related, Severity, Span
from scalelint.knowledge import ApiSpec
from scalelint.project import Operation, ProjectModel
from scalelint.record import record

HANDSHAKE = (
    "each pays a TCP+TLS+auth handshake and holds a database connection slot, so a few "
    "hundred concurrent users exhaust the server's connection limit"
)


@record
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


def _made_once(project: ProjectModel, op: Operation) -> bool:
    """Kept in a global or module object (a lazy singleton), or built on a shared pool."""
    stored_in = op.site.stored_in
    if stored_in is not None and stored_in not in project.knowledge.request_scoped:
        return True
    return op.spec is not None and op.spec.shares_pool is not None and op.site.has_kwarg(op.spec.shares_pool)


def _carries_user_token(op: Operation) -> bool:
    """A Supabase client built per request with options: usually to carry the user's JWT."""
    return op.op == "db.client" and (op.site.has_kwarg("options") or len(op.site.args) > 2)


@check("SL101")
def per_request_connection(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        opens = OPENS.get(op.op)
        if opens is None or op.function not in project.request_path or _made_once(project, op):
            continue
        if op.site.per_item_loop is not None:
            continue  # SL102 reports a connection per loop iteration
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
        loop = op.site.per_item_loop
        if opens is None or loop is None or project.routing.one_off(op.function):
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
        if project.routing.one_off(function):
            continue
        released_in_finally = any(op.op == "db.release" and op.site.in_finally for op in ops)
        returned = project.functions[function].returned_names
        for op in ops:
            site = op.site
            if op.op != "db.checkout" or site.as_context or site.returned or site.stored_globally:
                continue
            # Handed to the caller (returned, yielded, kept on `self` by a context manager).
            if site.assigned_to is not None and (
                site.assigned_to in returned or site.assigned_to.startswith("self.")
            ):
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


def pool_size(op: Operation) -> int | None:
    """The most connections a pool (or client) opens, from its arguments and defaults."""
    spec = op.spec
    if spec is None or not spec.pool_size:
        return None
    total = 0
    for keyword, default in spec.pool_size:
        passed = op.site.has_kwarg(keyword) or (
            keyword in spec.params and spec.params.index(keyword) < len(op.site.args)
        )
        value = spec.argument(op.site, keyword)
        if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
            if value.value < 0:
                return UNBOUNDED
            total += value.value
        elif not passed and not op.site.has_kwarg("**") and default is not None:
            total += default
        else:
            return None
    return total


NUMBER = re.compile(r"[0-9]+")
UNBOUNDED = 10**9  # a negative size (SQLAlchemy's max_overflow=-1) means no limit


def _pools(project: ProjectModel) -> Iterator[tuple[Operation, int]]:
    for op in project.all_operations():
        size = pool_size(op) if op.op in ("db.pool", "cache.pool", "cache.connect") else None
        if size is not None:
            yield op, size


@check("SL103")
def oversized_pool(project: ProjectModel, config: Config) -> Iterator[Finding]:
    workers = project.deployment_number("app.workers")
    server = project.deployment_number("postgres.max_connections")
    for op, size in _pools(project):
        path = project.path_of(op.function)
        related: tuple[Related, ...] = ()
        math = ""
        if workers is not None:
            related += (Related(workers[1], workers[2], f"{workers[0]} worker processes"),)
            math = f"; with {workers[0]} workers that is {workers[0] * size} connections"
            if server is not None and op.op.startswith("db."):
                related += (Related(server[1], server[2], f"Postgres max_connections = {server[0]}"),)
                math += f" against Postgres max_connections = {server[0]}"
        if size >= UNBOUNDED:
            message = (
                f"`{op.site.text}` has no upper bound on its connections (a negative size): "
                "under load it opens as many as there are concurrent requests, until Postgres "
                "refuses them; set a finite max_overflow"
            )
        elif size > config.max_pool_size:
            server_limit = (
                "Postgres typically allows 100 in total, shared by every instance and admin tool; "
                "keep 20-50 per instance and put PgBouncer in front"
                if op.op.startswith("db.")
                else "every connection is a file descriptor and memory on the Redis server, and "
                "a pool this size hides slow commands instead of fixing them; 20-50 is plenty"
            )
            message = (
                f"`{op.site.text}` allows up to {size} connections per process, above "
                f"max-pool-size ({config.max_pool_size}){math}: {server_limit}"
            )
        elif (
            workers
            and server
            and op.op.startswith("db.")
            and project.transaction_pooler is None
            and workers[0] * size > server[0] - 5
        ):
            message = (
                f"`{op.site.text}` allows up to {size} connections per process{math}: "
                f"{workers[0]} x {size} = {workers[0] * size} exceeds what the server can give "
                f"({server[0]}, minus ~5 for admin and migrations); lower the pool size or the "
                "worker count, or put PgBouncer in transaction mode in front"
            )
        else:
            continue
        yield finding("SL103", path, op.site.span, message, related)


SESSION_MODE = (
    "in session mode each client holds a server connection for its whole session, so the "
    "pooler multiplies nothing"
)


@check("SL105")
def pgbouncer_config(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for facts in project.files.values():
        settings = {s.key: s for s in facts.settings if s.key.startswith("pgbouncer.")}
        if "pgbouncer.[pgbouncer]" in settings:
            for line, message, severity in _pgbouncer_problems(settings, project, config):
                yield finding("SL105", facts.path, Span(line, 1, line, 1), message, severity=severity)


def _pgbouncer_problems(
    settings: dict[str, Setting], project: ProjectModel, config: Config
) -> Iterator[tuple[int, str, Severity | None]]:
    section = settings["pgbouncer.[pgbouncer]"].line
    mode = settings.get("pgbouncer.pool_mode") or settings.get("pgbouncer.databases.pool_mode")
    if mode is None:
        yield (
            section,
            f"pool_mode is not set and PgBouncer defaults to session: {SESSION_MODE}; set "
            "`pool_mode = transaction`",
            None,
        )
    elif mode.value.lower() != "transaction":
        why = SESSION_MODE if mode.value.lower() == "session" else "it breaks multi-statement transactions"
        yield mode.line, f"pool_mode = {mode.value}: {why}; use `pool_mode = transaction`", None
    low, high = config.pgbouncer_pool_size
    size = settings.get("pgbouncer.default_pool_size")
    if size is not None and NUMBER.fullmatch(size.value) and not low <= int(size.value) <= high:
        yield (
            size.line,
            f"default_pool_size = {size.value} is outside {low}-{high}: too few server connections "
            "queue clients, too many overload Postgres (typical max_connections 100)",
            None,
        )
    reserve = settings.get("pgbouncer.reserve_pool_size")
    if reserve is None or reserve.value == "0":
        yield (
            reserve.line if reserve else section,
            "no reserve pool (reserve_pool_size): a burst beyond default_pool_size waits instead "
            "of borrowing a few extra connections; set reserve_pool_size = 5 and "
            "reserve_pool_timeout = 3",
            Severity.INFO,
        )
    clients = settings.get("pgbouncer.max_client_conn")
    expected = _expected_clients(project)
    limit = int(clients.value) if clients and NUMBER.fullmatch(clients.value) else 100
    if expected is not None and expected > limit:
        yield (
            clients.line if clients else section,
            f"max_client_conn = {limit} is below what the app can open ({expected}: workers x pool "
            "sizes): clients beyond it are refused; raise max_client_conn (1000 is common)",
            None,
        )


def _expected_clients(project: ProjectModel) -> int | None:
    workers = project.deployment_number("app.workers")
    sizes = [size for op, size in _pools(project) if op.op.startswith("db.")]
    if workers is None or not sizes:
        return None
    return workers[0] * sum(sizes)


@check("SL106")
def pooler_incompatible_client(project: ProjectModel, config: Config) -> Iterator[Finding]:
    pooler = project.transaction_pooler
    if pooler is None:
        return
    for op in project.all_operations():
        spec, site = op.spec, op.site
        path = project.path_of(op.function)
        if (
            spec is not None
            and spec.pooler_requires
            and not site.has_kwarg(spec.pooler_requires)
            and not _direct_dsn(spec, site)
        ):
            yield finding(
                "SL106",
                path,
                site.span,
                f"`{site.text}` runs behind a transaction-mode pooler ({pooler}) without "
                f"`{spec.pooler_requires}=...`: prepared statements live on one server connection, "
                "so the next transaction on another fails with 'prepared statement does not exist'; "
                + PREPARED_FIX.get(spec.pooler_requires, f"pass {spec.pooler_requires}"),
            )
        yield from _session_effects(project, op, pooler)
    yield from _django_server_side_cursors(project, pooler)


def _session_effects(project: ProjectModel, op: Operation, pooler: str) -> Iterator[Finding]:
    site = op.site
    effects = {effect for statement in op.sql for effect in statement.session_effects}
    for effect in sorted(effects):
        yield finding(
            "SL106",
            project.path_of(op.function),
            site.span,
            f"`{site.text}` runs {effect} behind a transaction-mode pooler ({pooler}): "
            f"{SESSION_EFFECTS[effect]}",
        )


def _django_server_side_cursors(project: ProjectModel, pooler: str) -> Iterator[Finding]:
    """Django's `.iterator()` uses server-side cursors, which need one session."""
    for facts in project.files.values():
        for name, value in facts.module_vars:
            if name != "DATABASES" or not isinstance(value, DictLiteral):
                continue
            postgres = any("postgresql" in s or "postgis" in s for s in value.strings)
            if postgres and "DISABLE_SERVER_SIDE_CURSORS" not in value.keys:
                yield finding(
                    "SL106",
                    facts.path,
                    Span(value.line, 1, value.line, 1),
                    f"Django's DATABASES talk to a transaction-mode pooler ({pooler}) without "
                    "`DISABLE_SERVER_SIDE_CURSORS: True`: `QuerySet.iterator()` opens a server-side "
                    "cursor that the next transaction, on another server connection, cannot find",
                )


def _direct_dsn(spec: ApiSpec, site: CallSite) -> bool:
    """The connection string is a literal that does not go through a pooler."""
    dsn = spec.argument(site, spec.params[0]) if spec.params else None
    return isinstance(dsn, Const) and isinstance(dsn.value, str) and not has_pooler_marker(dsn.value)


PREPARED_FIX = {
    "statement_cache_size": "pass `statement_cache_size=0`",
    "prepare_threshold": "pass `prepare_threshold=None`",
    "kwargs": 'pass `kwargs={"prepare_threshold": None}`',
}
SESSION_EFFECTS = {
    "SET": (
        "the setting stays on a server connection that other clients get next; use `SET LOCAL` "
        "inside the transaction"
    ),
    "LISTEN": "notifications need a dedicated session; LISTEN on a direct connection, not the pooler",
    "pg_advisory_lock": (
        "a session lock outlives the transaction and is held by whoever gets the connection "
        "next; use `pg_advisory_xact_lock`"
    ),
}
