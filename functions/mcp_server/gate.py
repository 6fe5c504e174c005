"""The mcp function's front door: health, RFC 9728 metadata, and the checks before the SDK.

For `POST /mcp`, in this order, each on headers alone until the body is needed:
Host (421) and Origin (403) against the allowlists, the method (405), the bearer
token (401 with a `resource_metadata` challenge), the body size (413), and the
scope the JSON-RPC message needs (403 `insufficient_scope`). Only then does the
SDK parse the body, with the caller set in CALLER for the tools. Every refusal is
an RFC 9457 problem document, like the rest of the platform.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import anyio.to_thread
from starlette.datastructures import Headers

from functions.core.auth import SCOPES, Principal, authenticate, known_principal
from functions.core.db import database
from functions.core.errors import (
    Forbidden,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    Unauthorized,
    Unavailable,
)
from functions.mcp_server import access
from functions.mcp_server.config import McpSettings
from functions.mcp_server.todo_api import CALLER, Caller

log = logging.getLogger("todo_platform.mcp")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MCP_PATH = "/mcp"
METADATA_PATHS = (access.METADATA_PATH, access.METADATA_PATH + MCP_PATH)
# A tools/call with a 10 000-character note, escaped, fits many times over.
MAX_BODY_BYTES = 128 * 1024
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


class MisdirectedRequest(ProblemError):
    status, slug, title = 421, "misdirected-request", "Misdirected request"


class Gate:
    """An ASGI app in front of the SDK's: answers what it can, checks the rest, then delegates."""

    def __init__(
        self,
        mcp_app: ASGIApp,
        settings: McpSettings,
        tool_scopes: Mapping[str, str],
        authenticate_headers: Callable[[Headers], Principal] | None = None,
        known_headers: Callable[[Headers], Principal | None] | None = None,
    ) -> None:
        self.mcp_app = mcp_app
        self.settings = settings
        self.tool_scopes = tool_scopes
        self.authenticate = authenticate_headers or _authenticate
        # No I/O: answered on the event loop; only what needs PostgreSQL goes to a thread.
        self.known = known_headers or (_known if authenticate_headers is None else _unknown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # lifespan: the SDK's session manager starts and stops with the server.
            await self.mcp_app(scope, receive, send)
            return
        try:
            admitted = await self._answer(scope, receive, send)
        except ProblemError as error:
            await _send_problem(send, error, scope["path"])
            return
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            error = InternalError("an internal error occurred; it is logged")
            await _send_problem(send, error, scope["path"])
            return
        if admitted is None:
            return
        caller, body = admitted
        token = CALLER.set(caller)
        try:
            await self.mcp_app(scope, _replay(body, receive), send)
        finally:
            CALLER.reset(token)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[Caller, bytes] | None:
        """Answers what the gate answers itself; for POST /mcp, the admitted caller and body."""
        path = scope["path"]
        if path == MCP_PATH:
            return await self._admit(scope, receive)
        if path == "/healthz":
            await _send_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            await self._ready(send)
        elif path in METADATA_PATHS:
            await self._metadata(scope, send)
        else:
            raise NotFound(f"no route for {path}")
        return None

    async def _admit(self, scope: Scope, receive: Receive) -> tuple[Caller, bytes]:
        """The caller and body of a POST /mcp that passed every check; a ProblemError otherwise."""
        headers = Headers(scope=scope)
        resource = self._resource(scope, headers)
        if scope["method"] != "POST":
            # Stateless: no SSE stream to GET and no session to DELETE (MCP transports spec).
            raise MethodNotAllowed(
                f"{scope['method']} is not allowed here", headers={"Allow": "POST"}
            )
        principal = await self._principal(headers, resource)
        body = await _read_body(receive, headers)
        missing = sorted(access.required_scopes(body, self.tool_scopes) - principal.scopes)
        if missing:
            raise Forbidden(
                f"this token lacks the {missing[0]} scope",
                headers={
                    "WWW-Authenticate": access.bearer_challenge(
                        resource, error="insufficient_scope", scope=" ".join(missing)
                    )
                },
            )
        return Caller(principal.owner, principal.scopes, access.trace_context(headers)), body

    def _resource(self, scope: Scope, headers: Headers) -> str:
        """Check Host and Origin; the URL of /mcp as this request names it."""
        host = headers.get("host")
        if not access.allowed(host, self.settings.allowed_hosts):
            raise MisdirectedRequest(f"this server does not answer for the host {host!r}")
        if not access.origin_allowed(headers.get("origin"), self.settings.allowed_origins):
            raise Forbidden("requests from this Origin are not allowed")
        return access.resource_url(self.settings.resource_url, scope["scheme"], str(host))

    async def _principal(self, headers: Headers, resource: str) -> Principal:
        try:
            principal = self.known(headers)
            if principal is None:
                principal = await anyio.to_thread.run_sync(self.authenticate, headers)
            return principal
        except Unauthorized as error:
            # The platform's challenge, plus where to learn how to get a token (RFC 9728 §5.1).
            challenge = error.headers.get("WWW-Authenticate", "Bearer")
            error.headers["WWW-Authenticate"] = (
                f'{challenge}, resource_metadata="{access.metadata_url(resource)}"'
            )
            raise

    async def _metadata(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise MethodNotAllowed(
                f"{scope['method']} is not allowed here", headers={"Allow": "GET, HEAD"}
            )
        resource = self._resource(scope, Headers(scope=scope))
        # No authorization_servers: tokens are minted with `todo-platform token create`
        # (docs/mcp.md), there is no OAuth server to point at.
        document = {
            "resource": resource,
            "resource_name": "todo-platform",
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(SCOPES),
        }
        await _send_json(send, 200, document)

    async def _ready(self, send: Send) -> None:
        try:
            await anyio.to_thread.run_sync(database().ping)
        except Exception:
            log.warning("readiness check failed: database unreachable")
            raise Unavailable("the database is not reachable") from None
        await _send_json(send, 200, {"status": "ready"})


def _authenticate(headers: Headers) -> Principal:
    from functions.core.settings import settings

    config = settings()
    return authenticate(database(), headers, config.internal_token, config.token_cache_seconds)


def _known(headers: Headers) -> Principal | None:
    from functions.core.settings import settings

    config = settings()
    return known_principal(headers, config.internal_token, config.token_cache_seconds)


def _unknown(headers: Headers) -> None:
    """With a custom authenticate_headers, every request is its to judge."""
    return None


async def _read_body(receive: Receive, headers: Headers) -> bytes:
    """The whole body, refused with 413 as soon as it is known to be too large."""
    too_large = PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the SDK sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hands the SDK the body already read, then the real receive (which reports a disconnect)."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send(send: Send, status: int, body: bytes, headers: Mapping[str, str]) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: Mapping[str, Any]) -> None:
    await _send(send, status, json.dumps(payload).encode(), {"content-type": JSON})


async def _send_problem(send: Send, error: ProblemError, instance: str) -> None:
    await _send(
        send, error.status, error.body(instance), {"content-type": PROBLEM_JSON, **error.headers}
    )
