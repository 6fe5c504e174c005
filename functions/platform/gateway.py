"""The local gateway: every registered function behind one WSGI app, on its production paths.

Each function runs as the very functions-framework app its container runs
(`functions_framework.create_app(target, functions/main.py)`), created on the
first request that needs it. A request goes to the function whose registry
route matches its method and path, in-process: no proxy hop, no second server,
so the gateway adds a route lookup and nothing else (DESIGN §8 budget).

With an event router, the gateway also serves the broker's ingress (`/broker…`)
and gives every function the address Knative would: `/_functions/<name>/…` is
that function's app at its root, where the router delivers CloudEvents.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from functions.core.auth import bearer_token, is_service_credential
from functions.core.errors import (
    InternalError,
    MethodNotAllowed,
    NotFound,
    ProblemError,
    Unauthorized,
    Unavailable,
)
from functions.core.http import health, problem_response
from functions.core.routing import Router
from functions.core.settings import ConfigError, settings
from functions.platform.turns import Turns
from functions.registry import FUNCTIONS, FunctionSpec

log = logging.getLogger("todo_platform.gateway")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

SOURCE = str(Path(__file__).resolve().parents[1] / "main.py")
# Asked of the gateway itself; `/<function>/healthz` asks one function's own app.
HEALTH_PATHS = ("/healthz", "/readyz")
# The `service.name` of what the gateway does itself; each function exports under its own.
GATEWAY_SERVICE = "todo-platform"
FUNCTIONS_PREFIX = "/_functions/"  # + <name>/: a function's root, as its Knative Service has
BROKER_PREFIX = "/broker"


class Gateway:
    """A WSGI app that dispatches each request to the function that owns its route."""

    def __init__(
        self,
        functions: Sequence[FunctionSpec] = FUNCTIONS,
        source: str = SOURCE,
        broker: WSGIApp | None = None,
        threads: int = 8,
    ) -> None:
        self.functions = {spec.name: spec for spec in functions}
        self.source = source
        self.broker = broker  # the local event router's ingress, when events are on
        self.router: Router[str] = Router(
            (route.method, route.path, spec.name) for spec in functions for route in spec.routes
        )
        self._apps: dict[str, WSGIApp] = {}
        self._lock = threading.Lock()
        # In-process function calls run THREADS at a time, as one instance of each runs them.
        # The gateway has many more threads (asgi_proxy.py's slots); a hundred requests
        # running at once in one interpreter take turns on the GIL in no fair order, and
        # the unlucky ones wait far longer than the rest. Waiting here is in arrival order.
        self._turns = Turns(threads)
        # A call made with the internal credential (the mcp function's tool calling a todo
        # function) is part of a request that already waited its turn: it goes ahead.
        self._internal: str | None = None  # the service credential, read on first use

    def app(self, name: str) -> WSGIApp:
        """The function's functions-framework app, created once, exactly as its container does."""
        app = self._apps.get(name)
        if app is None:
            with self._lock:
                app = self._apps.get(name)
                if app is None:
                    spec = self.functions[name]
                    if spec.interface == "asgi":
                        # Served by its own uvicorn, behind a streaming proxy (asgi_proxy.py).
                        from functions.platform.asgi_proxy import AsgiBackend

                        app = AsgiBackend(spec)
                    else:
                        import functions_framework

                        app = functions_framework.create_app(spec.target, self.source)
                    self._apps[name] = app
                    # What a function loads lives as long as the process: out of the
                    # collector's sight, so a full collection no longer walks it (under
                    # load it did every few seconds, pausing every thread 200 ms here).
                    gc.freeze()
        return app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        match = self.router.match(environ["REQUEST_METHOD"], path)
        if match is not None and match.target is not None:
            if self.functions[match.target].interface == "asgi":
                return self._forward(match.target, environ, start_response)
            with self._turns.ahead() if self._on_behalf(environ) else self._turns:
                return self._forward(match.target, environ, start_response)
        if path in HEALTH_PATHS:
            response = health(path)
            assert response is not None
            return response(environ, start_response)
        if self.broker is not None and (
            path == BROKER_PREFIX or path.startswith(BROKER_PREFIX + "/")
        ):
            return self.broker(environ, start_response)
        if path.startswith(FUNCTIONS_PREFIX):
            name, _, rest = path[len(FUNCTIONS_PREFIX) :].partition("/")
            if name in self.functions:
                script = environ.get("SCRIPT_NAME", "") + FUNCTIONS_PREFIX + name
                inner = {**environ, "SCRIPT_NAME": script, "PATH_INFO": "/" + rest}
                return self._forward(name, inner, start_response)
        name, _, rest = path[1:].partition("/")
        if name in self.functions and "/" + rest in HEALTH_PATHS:
            # The function's own app answers, so this also proves it imports and starts.
            return self._forward(name, {**environ, "PATH_INFO": "/" + rest}, start_response)
        error: ProblemError
        if match is None:
            error = NotFound(f"no route for {path}")
        else:
            error = MethodNotAllowed(
                f"{environ['REQUEST_METHOD']} is not allowed here",
                headers={"Allow": ", ".join(match.allowed)},
            )
        return problem_response(error, path)(environ, start_response)

    def _on_behalf(self, environ: dict[str, Any]) -> bool:
        """Whether a function calls on behalf of a request it is serving (its credential)."""
        if self._internal is None:
            try:
                self._internal = settings().internal_token or ""
            except ConfigError:
                self._internal = ""
        try:
            token = bearer_token({"Authorization": environ.get("HTTP_AUTHORIZATION", "")})
        except Unauthorized:
            return False
        return is_service_credential(token, self._internal)

    def _forward(
        self, name: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            app = self.app(name)
        except ConfigError as exc:
            # A function whose own settings are missing (say, SLACK_SIGNING_SECRET) is off;
            # the rest of the platform still serves. Settings are read once per process, so
            # it stays off: kept, so that each request does not load its module again.
            app = _Off(Unavailable(f"the function {name} is not configured: {exc}"))
            with self._lock:
                self._apps.setdefault(name, app)
        except Exception:
            # Not cached: the next request tries again, e.g. after the code is fixed.
            log.exception("function %s failed to load", name)
            error = InternalError(f"the function {name} failed to load; see the server log")
            return problem_response(error, environ.get("PATH_INFO", "/"))(environ, start_response)
        return app(environ, start_response)


class _Off:
    """The app of a function that is not configured: its 503 problem, to every request."""

    def __init__(self, error: ProblemError) -> None:
        self.error = error

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        return problem_response(self.error, path)(environ, start_response)
