"""Plain types of the request-path model, shared by the project model and the checks."""

from __future__ import annotations

from scalelint.facts.model import CallSite
from scalelint.record import record


@record
class FuncRef:
    """A project function (or a module body, qualname `<module>`)."""

    module: str
    qualname: str


@record
class Handler:
    """A function that runs once per request."""

    function: FuncRef
    framework: str
    route: str | None = None
    http_method: str | None = None

    @property
    def label(self) -> str:
        if self.route is not None:
            return f"{self.http_method or 'route'} {self.route}"
        return f"{self.framework} view `{self.function.qualname}`"


@record
class ChainStep:
    """One call on the way from a handler to a function."""

    caller: FuncRef
    site: CallSite


@record
class RequestPathSettings:
    """`[tool.scalelint.request-path]`: what the project adds to the built-in knowledge.

    `handler_decorators` are qualified decorator names that mark request handlers;
    `handlers` and `background` are fnmatch patterns on `module.qualname`.
    """

    handler_decorators: tuple[str, ...] = ()
    handlers: tuple[str, ...] = ()
    background: tuple[str, ...] = ()
