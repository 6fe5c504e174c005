"""The tools' way to the todo functions: REST over HTTP, as the caller, on kept-alive connections.

Every call carries the internal service credential and `X-Todo-Owner: <caller>`
(functions/core/auth.py honours that header only with the credential), plus the
caller's W3C trace context, so a tool call is mcp → todo function → database in
one trace. The gate (gate.py) puts the authenticated caller in CALLER for the
request; tools, resources and prompts all run inside it.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from functions.core import spans
from functions.core.auth import ACTING_OWNER_HEADER
from functions.core.routing import Router
from functions.mcp_server.http_pool import HttpPool

log = logging.getLogger("todo_platform.mcp.todo_api")

# Connect, read: a scaled-to-zero todo function may need a few seconds to answer at first.
CONNECT_TIMEOUT, READ_TIMEOUT = 3.05, 25.0
POOL_SIZE = 32
# A server may close an idle kept-alive connection just as a request goes out on it
# (RFC 9112 §9.3.1; gunicorn does after its keepalive timeout). A read is then sent once
# more, on a new connection; a write never is, as the server may have acted on it
# (http_pool.py).


@dataclass(frozen=True)
class Caller:
    """Who an MCP request acts for: the token's owner and scopes, and the trace to continue."""

    owner: str
    scopes: frozenset[str]
    trace: Mapping[str, str] = field(default_factory=dict)


CALLER: ContextVar[Caller] = ContextVar("mcp_caller")


class TodoApiError(Exception):
    """A todo function refused a call, or could not be reached; `detail` is written for a model."""

    def __init__(
        self, status: int, detail: str, errors: list[Mapping[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors or [])


class TodoApi:
    """REST calls to the todo functions, over one thread-safe pool of kept-alive connections."""

    def __init__(self, base_url: str, internal_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._internal_token = internal_token
        self._pool = HttpPool(POOL_SIZE, CONNECT_TIMEOUT, READ_TIMEOUT)
        self._router: Router[str] | None = None

    def url(self, method: str, path: str) -> str:
        """The URL of path; `{function}` in the base becomes the name of the route's function."""
        if "{function}" not in self.base_url:
            return self.base_url + path
        if self._router is None:
            from functions.registry import FUNCTIONS

            self._router = Router(
                (route.method, route.path, spec.name)
                for spec in FUNCTIONS
                if spec.interface == "wsgi"
                for route in spec.routes
            )
        match = self._router.match(method, path)
        if match is None or match.target is None:
            raise TodoApiError(500, f"no todo function serves {method} {path}")
        return self.base_url.replace("{function}", match.target) + path

    def call(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        version: int | None = None,
    ) -> Any:
        """The JSON answer (None for 204); TodoApiError for a problem or an unreachable function.

        The caller's token must carry `scope`: the credential sent on is the service's,
        which could do anything, so the check happens here, before anything is sent.
        """
        caller = CALLER.get()
        if scope not in caller.scopes:
            raise TodoApiError(403, f"this token lacks the {scope} scope")
        headers = {
            "Authorization": f"Bearer {self._internal_token}",
            ACTING_OWNER_HEADER: caller.owner,
            "Accept": "application/json",
            **caller.trace,
        }
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        payload: bytes | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, allow_nan=False).encode()
        url = self.url(method, path)
        # The span names the URL without its query, as before (a search's words stay out).
        query = "?" + urlencode(params, doseq=True) if params else ""
        # With telemetry on, the client span's context replaces the caller's traceparent.
        with spans.http_client(method, url, headers) as span:
            try:
                status, answer = self._pool.request(method, url + query, payload, headers)
            except (OSError, http.client.HTTPException) as exc:
                log.warning("todo API call %s %s failed: %s", method, path, type(exc).__name__)
                raise TodoApiError(
                    503, "the todo service did not answer; try again shortly"
                ) from None
            span.set(spans.STATUS, status)
        if status == 204:
            return None
        if 200 <= status < 300:
            return json.loads(answer)
        raise _problem(method, path, status, answer)


def _problem(method: str, path: str, status: int, answer: bytes) -> TodoApiError:
    try:
        problem = json.loads(answer)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    if status in (401, 403) or (status >= 500 and status != 503):
        # Not the model's doing: a wrong service credential or a bug. The log has the detail.
        log.warning("todo API %s %s answered %s: %s", method, path, status, problem.get("detail"))
        return TodoApiError(status, "the todo service failed to answer this request")
    errors = [e for e in problem.get("errors", []) if isinstance(e, dict)]
    detail = str(problem.get("detail") or f"the todo service answered {status}")
    return TodoApiError(status, detail, errors)


_api: TodoApi | None = None
_api_lock = threading.Lock()


def todo_api() -> TodoApi:
    """The process-wide client, created on first use from the settings."""
    global _api
    if _api is None:
        with _api_lock:
            if _api is None:
                from functions.mcp_server.config import mcp_settings

                config = mcp_settings()
                _api = TodoApi(config.todo_api_url, config.internal_token)
    return _api
