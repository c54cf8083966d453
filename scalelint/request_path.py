"""Does this code run on every request? Handlers, background code, reachability.

Handlers come from the API knowledge (route decorators, URL registrations, view
base classes, framework-called methods), a convention (AWS Lambda's `(event,
context)`) and the project's `[tool.scalelint.request-path]` settings. Background
code (tasks, management commands, tests, migrations) is never a handler. What a
handler reaches through the call graph runs per request, and the shortest chain
is kept so a finding can show how a request gets there.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from functools import cached_property

from scalelint.facts.model import Attr, CallResult, CallSite, Const, Global, Imported, Value
from scalelint.knowledge import ApiSpec
from scalelint.project import MODULE_BODY, ClassRef, ExtName, ProjectModel
from scalelint.record import record
from scalelint.request_path_types import ChainStep, FuncRef, Handler, RequestPathSettings

# `tests.py` is where Django's app template puts an app's tests.
TEST_FILE = re.compile(r"(^|/)(tests?/|tests?\.py$|test_[^/]*\.py$|[^/]*_test\.py$|conftest\.py$)")
# Demonstrations and measurements shipped beside the code: never production traffic.
NOT_PRODUCTION = re.compile(r"(^|/)(examples?|benchmarks?|docs?)/")
# Django's `migrations/`, Alembic's `alembic/versions/`, `db_migrations/versions/`.
MIGRATION_FILE = re.compile(r"(^|/)(\w*migrations|alembic/versions)/")
LAMBDA_PARAMS = ("event", "context")


@record
class _Decorated:
    function: FuncRef
    spec: ApiSpec
    route: str | None
    receiver: Value | None


def _path_kind(path: str) -> str | None:
    if TEST_FILE.search(path) or NOT_PRODUCTION.search(path):
        return "test code"
    return "a migration" if MIGRATION_FILE.search(path) else None


class RequestPath:
    """The request-path view of one ProjectModel."""

    def __init__(self, project: ProjectModel, settings: RequestPathSettings) -> None:
        self.project = project
        self.settings = settings

    # ---- what decorators and base classes say ---------------------------------------

    @cached_property
    def _decorated(self) -> list[_Decorated]:
        """Functions whose decorators the knowledge (or the config) gives a role."""
        return list(self._find_decorated())

    def _find_decorated(self) -> Iterator[_Decorated]:
        project = self.project
        for ref, fn in project.functions.items():
            if not fn.decorators:
                continue
            for decorator in fn.decorators:
                spec = project.spec_of(decorator.callee, ref.module)
                if spec is None:
                    spec = self._configured_decorator(decorator.callee, ref.module)
                if spec is None or spec.role is None:
                    continue
                route = None
                if decorator.call and decorator.call.args:
                    first = decorator.call.args[0]
                    if isinstance(first, Const) and isinstance(first.value, str):
                        route = first.value
                receiver = decorator.callee.base if isinstance(decorator.callee, Attr) else None
                yield _Decorated(ref, spec, route, receiver)

    def _configured_decorator(self, callee: Value, module: str) -> ApiSpec | None:
        if not self.settings.handler_decorators:
            return None
        ref = self.project.resolve(callee, module)
        name = ref.qualname if isinstance(ref, ExtName) else None
        if isinstance(ref, FuncRef):
            name = f"{ref.module}.{ref.qualname}"
        if name in self.settings.handler_decorators:
            return ApiSpec(role="route", framework="configured")
        return None

    @cached_property
    def memoized(self) -> frozenset[FuncRef]:
        """Functions whose result a decorator caches: they run once, not per request."""
        return frozenset(d.function for d in self._decorated if d.spec.role == "memoize")

    @cached_property
    def background(self) -> dict[FuncRef, str]:
        """Code that never serves a request, with the reason."""
        project = self.project
        found: dict[FuncRef, str] = {}
        kinds: dict[str, str | None] = {}  # a module's functions share its path's kind
        configured = self.settings.background
        for ref in project.functions:
            if ref.module not in kinds:
                kinds[ref.module] = _path_kind(project.path_of(ref))
            kind = kinds[ref.module]
            if kind == "test code" or ref.qualname.startswith("test_"):
                found[ref] = "test code"
            elif kind is not None:
                found[ref] = kind
            elif configured and any(fnmatch(f"{ref.module}.{ref.qualname}", p) for p in configured):
                found[ref] = "configured as background"
        for item in self._decorated:
            if item.spec.role == "task":
                found.setdefault(item.function, f"a {item.spec.framework or 'background'} task")
        for cls in project.classes:
            spec = project.class_spec(cls, frozenset({"task-class"}))
            if spec is None:
                continue
            for name, method in project.class_methods(cls).items():
                if any(fnmatch(name, p) for p in spec.handler_methods):
                    found.setdefault(method, f"a {spec.framework or 'background'} command")
        return found

    def one_off(self, function: FuncRef) -> bool:
        """Test code and migrations: they never run under production load."""
        return self.background.get(function) in ("test code", "a migration")

    # ---- handlers -------------------------------------------------------------------

    @cached_property
    def handlers(self) -> dict[FuncRef, Handler]:
        """Every request handler found, by function (background code excluded)."""
        found: dict[FuncRef, Handler] = {}
        for item in self._decorated:
            if item.spec.role == "route":
                prefix = self._prefix(item.receiver, item.function.module)
                route = prefix + item.route if item.route is not None else None
                found.setdefault(
                    item.function,
                    Handler(item.function, item.spec.framework or "", route, item.spec.http_method),
                )
        for ref, known in self.project.known_calls.items():
            for site, spec in known:
                for handler in self._registered(site, spec, ref.module):
                    found.setdefault(handler.function, handler)
        for cls in self.project.classes:
            for handler in self._class_handlers(cls):
                found.setdefault(handler.function, handler)
        configured = self.settings.handlers
        for ref, fn in self.project.functions.items():
            if (
                len(fn.params) == len(LAMBDA_PARAMS)
                and tuple(p.name for p in fn.params) == LAMBDA_PARAMS
                and ref.qualname != MODULE_BODY
                and "." not in ref.qualname
            ):
                found.setdefault(ref, Handler(ref, "aws-lambda"))
            if configured and any(fnmatch(f"{ref.module}.{ref.qualname}", p) for p in configured):
                found.setdefault(ref, Handler(ref, "configured"))
        return {ref: h for ref, h in found.items() if ref not in self.background}

    def _registered(self, site: CallSite, spec: ApiSpec, module: str) -> list[Handler]:
        """Views named in a URL registration: `path("x/", views.f)`, `Route("/", f)`."""
        if spec.role != "route-register" or spec.view_arg is None:
            return []
        view = site.args[spec.view_arg] if len(site.args) > spec.view_arg else None
        if view is None and spec.view_kwarg is not None:
            view = site.kwarg(spec.view_kwarg)
        path = site.args[0] if site.args else None
        route = path.value if isinstance(path, Const) and isinstance(path.value, str) else None
        # `SomeView.as_view()`: its methods are found through its view base class.
        if isinstance(view, CallResult) and isinstance(view.callee, Attr) and view.callee.attr == "as_view":
            return []
        ref = self.project.resolve(view, module)
        if isinstance(ref, FuncRef) and ref in self.project.functions:
            return [Handler(ref, spec.framework or "", route, spec.http_method)]
        return []

    def _class_handlers(self, cls: ClassRef) -> list[Handler]:
        """Methods of view classes, and of the serializers they name in attributes."""
        project = self.project
        spec = project.class_spec(cls, frozenset({"view-class"}))
        if spec is None:
            return []
        methods = project.class_methods(cls)
        handlers = [
            Handler(method, spec.framework or "", None, name.upper() if name.isalpha() else None)
            for name, method in methods.items()
            if any(fnmatch(name, p) for p in spec.handler_methods)
        ]
        for _, value in project.classes[cls].attributes:
            named = project.resolve(value, cls.module)
            if isinstance(named, ClassRef):
                handlers += [
                    Handler(target, f"{spec.framework or ''} serializer of `{cls.qualname}`", None, None)
                    for target in project.callees(named)
                    if not target.qualname.endswith(".__init__")
                ]
        return [h for h in handlers if h.function in project.functions]

    # ---- route prefixes (routers and blueprints) ------------------------------------

    def _identity(self, value: Value | None, module: str) -> tuple[str, str] | None:
        """The module-level variable a value names: `router` or `users.router`."""
        if isinstance(value, Global):
            return (module, value.name)
        if isinstance(value, Imported):
            dotted = self.project.absolute(value.dotted, module)
            owner, _, name = dotted.rpartition(".")
            return (owner, name) if owner in self.project.modules else None
        return None

    @cached_property
    def _prefixes(self) -> dict[tuple[str, str], str]:
        """Route prefix of each router/blueprint variable: its own plus where it is mounted."""
        own: dict[tuple[str, str], str] = {}
        mounted: dict[tuple[str, str], str] = {}
        replaced: set[tuple[str, str]] = set()
        project = self.project
        for ref, known in project.known_calls.items():
            for site, spec in known:
                if spec.prefix_kwarg is None:
                    continue
                prefix = site.kwarg(spec.prefix_kwarg)
                text = prefix.value if isinstance(prefix, Const) and isinstance(prefix.value, str) else ""
                if spec.role == "mount" and site.args:
                    target = self._identity(site.args[0], ref.module)
                    if target is not None and target not in mounted:
                        mounted[target] = text
                        if spec.replaces_prefix and prefix is not None:
                            replaced.add(target)
                elif site.assigned_to is not None and ref.qualname == MODULE_BODY:
                    own[(ref.module, site.assigned_to)] = text
        # FastAPI joins include_router's prefix and the router's; Flask's
        # register_blueprint(url_prefix=...) replaces the blueprint's own.
        return {
            key: mounted.get(key, "") + ("" if key in replaced else own.get(key, ""))
            for key in {*own, *mounted}
        }

    def _prefix(self, receiver: Value | None, module: str) -> str:
        identity = self._identity(receiver, module)
        return self._prefixes.get(identity, "") if identity is not None else ""

    # ---- reachability ---------------------------------------------------------------

    def _walk(
        self, roots: list[tuple[FuncRef, Handler]], follow: Callable[[FuncRef, CallSite, FuncRef], bool]
    ) -> dict[FuncRef, tuple[Handler, tuple[ChainStep, ...]]]:
        """Breadth-first from the roots over call edges that `follow` accepts."""
        reached: dict[FuncRef, tuple[Handler, tuple[ChainStep, ...]]] = {}
        queue: deque[FuncRef] = deque()
        for ref, handler in roots:
            if ref not in reached:
                reached[ref] = (handler, ())
                queue.append(ref)
        edges = self.project.call_edges
        while queue:
            current = queue.popleft()
            handler, chain = reached[current]
            for site, target in edges.get(current, ()):
                if target in reached or target in self.memoized or not follow(current, site, target):
                    continue
                reached[target] = (handler, (*chain, ChainStep(current, site)))
                queue.append(target)
        return reached

    @cached_property
    def on_event_loop(self) -> dict[FuncRef, tuple[Handler, tuple[ChainStep, ...]]]:
        """What runs on the event loop of an `async def` handler.

        Sync functions it calls directly run on the loop too; a sync FastAPI dependency
        runs in the thread pool, and `to_thread`/`sync_to_async` targets are not calls.
        """
        project = self.project
        roots = [
            (ref, handler)
            for ref, handler in sorted(
                self.handlers.items(), key=lambda item: (item[0].module, item[0].qualname)
            )
            # Flask runs an async view in its own event loop per request: nothing else waits.
            if project.functions[ref].is_async and handler.framework != "flask"
        ]

        def follow(caller: FuncRef, site: CallSite, target: FuncRef) -> bool:
            if project.functions[target].is_async:
                return True
            spec = project.spec_of(site.callee, caller.module)  # the call is written in the caller
            return not (spec is not None and spec.role == "dependency") and not self._kept(site)

        return self._walk(roots, follow)

    @cached_property
    def in_process_tasks(self) -> dict[FuncRef, tuple[Handler, tuple[ChainStep, ...]]]:
        """What FastAPI's `BackgroundTasks.add_task` runs after the response, in the web worker."""
        project = self.project
        roots: list[tuple[FuncRef, Handler]] = []
        for op in project.all_operations():
            if op.op == "queue.inprocess" and op.site.args and op.function in self.reached:
                target = project.resolve(op.site.args[0], op.function.module)
                if isinstance(target, FuncRef) and target in project.functions:
                    roots.append((target, Handler(target, "background task", None, None)))
        return self._walk(roots, lambda caller, site, target: not self._kept(site))

    def _kept(self, site: CallSite) -> bool:
        return site.stored_in is not None and site.stored_in not in self.project.knowledge.request_scoped

    @cached_property
    def reached(self) -> dict[FuncRef, tuple[Handler, tuple[ChainStep, ...]]]:
        """Functions run per request, each with its handler and the shortest chain to it.

        A task function called directly still runs inline, so the walk goes through
        it; a memoized function runs once per process, so the walk stops there, and so
        does a call whose result is kept in a global (`_store = Store()` under `global`).
        """
        roots = sorted(self.handlers.items(), key=lambda item: (item[0].module, item[0].qualname))
        return self._walk(roots, lambda caller, site, target: not self._kept(site))
