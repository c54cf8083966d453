"""SL5 sync work: AI, e-mail, webhooks and waits done while the user waits.

The seed's rule: the request does the DB write and returns; AI, e-mail and webhooks go
through a queue. Work already deferred (Celery `.delay`, RQ `enqueue`, PGMQ `send`,
Dramatiq `.send`, `transaction.on_commit`) is never reported. FastAPI's in-process
`BackgroundTasks` is reported at info: it runs after the response, in the web worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from scalelint.checks import at_operation, check, finding, reached_from, value_text
from scalelint.config import Config
from scalelint.facts.model import Const
from scalelint.findings import Finding, Severity
from scalelint.project import Operation, ProjectModel

QUEUES = (
    ("celery", "a Celery task (`task.delay(...)`)"),
    ("rq", "an RQ job (`queue.enqueue(...)`)"),
    ("dramatiq", "a Dramatiq actor (`actor.send(...)`)"),
    ("huey", "a Huey task"),
    ("tembo_pgmq_python", "PGMQ (`queue.send(...)`)"),
    ("pgmq", "PGMQ (`queue.send(...)`)"),
    ("supabase", "PGMQ (`supabase.rpc('pgmq_send', ...)`) and a worker"),
)
WEBHOOK_URL = re.compile(r"webhook|callback|hook_url|notify|subscriber|endpoint_url", re.I)
# Exchanges the response depends on: not queue candidates.
RESPONSE_DEPENDS_ON = re.compile(r"oauth|token|stripe|paypal|braintree|payment|checkout|auth", re.I)


def queue_option(project: ProjectModel) -> str:
    """The deferral that fits the queue library the project already uses."""
    for root, option in QUEUES:
        if root in project.imported_roots:
            return option
    return "a queue (PGMQ, Celery, RQ or Dramatiq) and a worker"


def _on_request_path(
    project: ProjectModel, ops: set[str]
) -> Iterator[tuple[Operation, Severity | None, str]]:
    """Operations of these kinds run per request (or after it, in the web worker)."""
    for op in project.all_operations():
        if op.op not in ops:
            continue
        if op.function in project.request_path:
            handler, _ = project.request_path[op.function]
            yield op, None, f"in the request ({handler.label})" + reached_from(project, op.function)
        elif op.function in project.routing.in_process_tasks:
            yield (
                op,
                Severity.INFO,
                "in a FastAPI BackgroundTasks job, which runs after the response but in the web "
                "worker, competing with requests for it",
            )


@check("SL501")
def sync_ai_call(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op, severity, where in _on_request_path(project, {"ai.call", "ai.stream"}):
        streamed = op.op == "ai.stream" or op.site.kwarg("stream") == Const(True)
        if streamed:
            message = (
                f"`{op.site.text}` streams a model's answer {where}: when the stream is the "
                "response this is the product, not a queue candidate; keep the worker async and "
                "put a timeout on it"
            )
            severity = Severity.INFO
        elif severity is Severity.INFO:
            message = (
                f"`{op.site.text}` calls a model {where}: a model call takes seconds to a minute, "
                f"so move it to {queue_option(project)}"
            )
        else:
            message = (
                f"`{op.site.text}` calls a model {where}: the user waits seconds to a minute and "
                "the worker is held the whole time, so a few slow answers block the service; "
                f"store the request, return, and run the call from {queue_option(project)}"
            )
        yield at_operation("SL501", project, op, message, severity=severity)


@check("SL502")
def sync_email(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op, severity, where in _on_request_path(project, {"email.send", "email.connect"}):
        message = (
            f"`{op.site.text}` talks to a mail/SMS provider {where}: each message is a network "
            "round trip (often 1-3 s, longer when the provider throttles) and a failure fails the "
            f"request; send it from {queue_option(project)}"
        )
        yield at_operation("SL502", project, op, message, severity=severity)


@check("SL503")
def sync_webhook(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op, severity, where in _on_request_path(project, {"http.request"}):
        url = _url_text(op)
        fan_out = op.site.per_item_loop is not None
        if RESPONSE_DEPENDS_ON.search(url) or any(allowed in url for allowed in config.http_allow):
            continue
        if not (WEBHOOK_URL.search(url) or fan_out):
            continue
        what = "one call per subscriber" if fan_out else f"a webhook/callback (`{url}`)"
        message = (
            f"`{op.site.text}` delivers {what} {where}: a slow or dead receiver holds the "
            "request for its whole timeout, and retries are lost with it; record the event and "
            f"deliver it from {queue_option(project)}"
        )
        yield at_operation("SL503", project, op, message, severity=severity)


def _url_text(op: Operation) -> str:
    spec = op.spec
    if spec is None or spec.url_arg is None:
        return ""
    if isinstance(spec.url_arg, int):
        value = op.site.args[spec.url_arg] if len(op.site.args) > spec.url_arg else op.site.kwarg("url")
    else:
        value = op.site.kwarg(spec.url_arg)
    return value_text(value)


@check("SL504")
def http_without_timeout(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.op != "http.request" or project.routing.one_off(op.function):
            continue
        spec = op.spec
        if spec is None or spec.timeout is None:
            continue
        timeout = spec.argument(op.site, "timeout")
        passed = op.site.has_kwarg("timeout") or timeout is not None
        if spec.timeout == "none" and not passed and not op.site.has_kwarg("**"):
            why = f"{op.api.split('.')[0]} waits forever by default"
        elif passed and timeout == Const(None):
            why = "`timeout=None` waits forever"
        else:
            continue
        message = (
            f"`{op.site.text}` has no timeout ({why}): one hung upstream blocks this call for good, "
            "and on a request path it holds a worker per request until every worker is stuck; pass "
            "`timeout=` (e.g. 5 s connect, 10-30 s read)"
        )
        yield finding("SL504", project.path_of(op.function), op.site.span, message)


@check("SL505")
def waiting_on_queue(project: ProjectModel, config: Config) -> Iterator[Finding]:
    for op in project.all_operations():
        if op.function not in project.request_path:
            continue
        polling = op.op == "queue.poll" and any(loop.kind == "while" for loop in op.site.loops)
        if op.op not in ("queue.wait", "queue.consume") and not polling:
            continue
        # A status endpoint asks `ready()` first: its `get()` returns at once.
        if op.op == "queue.wait" and any(o.op == "queue.check" for o in project.operations[op.function]):
            continue
        handler, _ = project.request_path[op.function]
        where = f"in the request ({handler.label})" + reached_from(project, op.function)
        if op.op == "queue.consume":
            message = (
                f"`{op.site.text}` takes messages off the queue {where}: processing them is a "
                "worker's job, and a request that does it waits for work it did not ask for; run "
                "a worker process that reads the queue"
            )
        else:
            message = (
                f"`{op.site.text}` waits for queued work {where}: the queue then only adds latency, "
                "and the worker is held as long as the job takes; return an id now and let the "
                "client poll or be notified"
            )
        yield at_operation("SL505", project, op, message)


BLOCKING = {
    "db.query",
    "db.write",
    "db.execute",
    "db.ddl",
    "db.connect",
    "db.checkout",
    "cache.get",
    "cache.set",
    "cache.delete",
    "cache.scan",
    "ai.call",
    "ai.stream",
    "email.send",
    "email.connect",
    "http.request",
    "queue.wait",
    "blocking.sleep",
    "blocking.process",
}


@check("SL506")
def blocking_call_in_async(project: ProjectModel, config: Config) -> Iterator[Finding]:
    loop_code = project.routing.on_event_loop
    for op in project.all_operations():
        if op.op not in BLOCKING or not op.round_trip or op.site.awaited or op.site.in_lambda:
            continue
        if op.function not in loop_code:
            continue
        handler, chain = loop_code[op.function]
        names = " → ".join([step.caller.qualname for step in chain] + [op.function.qualname])
        message = (
            f"`{op.site.text}` blocks the event loop of the async handler {handler.label}"
            + (f" (through {names})" if chain else "")
            + ": while it waits no other request on this worker makes progress; use the async "
            "client (`await ...`), or run it in a thread (`await asyncio.to_thread(...)`, "
            "`run_in_threadpool`, `sync_to_async`), or make the handler a plain `def`"
        )
        yield at_operation("SL506", project, op, message)
