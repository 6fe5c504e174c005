"""The tools' way to the todo functions: REST over HTTP, as the caller, on one shared session.

Every call carries the internal service credential and `X-Todo-Owner: <caller>`
(functions/core/auth.py honours that header only with the credential), plus the
caller's W3C trace context, so a tool call is mcp → todo function → database in
one trace. The gate (gate.py) puts the authenticated caller in CALLER for the
request; tools, resources and prompts all run inside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from functions.core import spans
from functions.core.auth import ACTING_OWNER_HEADER
from functions.core.routing import Router

log = logging.getLogger("todo_platform.mcp.todo_api")

# Connect, read: a scaled-to-zero todo function may need a few seconds to answer at first.
TIMEOUT = (3.05, 25.0)
POOL_SIZE = 32
# A server may close an idle kept-alive connection just as a request goes out on it
# (RFC 9112 §9.3.1; gunicorn does after its keepalive timeout). A read is then sent once
# more, on a new connection; a write never is, as the server may have acted on it.
RETRY_READS = Retry(
    total=1, connect=0, read=1, status=0, redirect=0, other=0, allowed_methods={"GET", "HEAD"}
)


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
    """REST calls to the todo functions, through one lazily created, thread-safe session."""

    def __init__(self, base_url: str, internal_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._internal_token = internal_token
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._router: Router[str] | None = None

    def session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self._lock:
                session = self._session
                if session is None:
                    session = requests.Session()
                    adapter = HTTPAdapter(
                        pool_connections=8, pool_maxsize=POOL_SIZE, max_retries=RETRY_READS
                    )
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                    self._session = session
        return session

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
        url = self.url(method, path)
        # With telemetry on, the client span's context replaces the caller's traceparent.
        with spans.http_client(method, url, headers) as span:
            try:
                response = self.session().request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                log.warning("todo API call %s %s failed: %s", method, path, type(exc).__name__)
                raise TodoApiError(
                    503, "the todo service did not answer; try again shortly"
                ) from None
            span.set(spans.STATUS, response.status_code)
        if response.status_code == 204:
            return None
        if 200 <= response.status_code < 300:
            return response.json()
        raise _problem(method, path, response)


def _problem(method: str, path: str, response: requests.Response) -> TodoApiError:
    status = response.status_code
    try:
        problem = response.json()
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
