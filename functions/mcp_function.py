"""mcp: the MCP function, Streamable HTTP at /mcp (stateless), over the todo functions.

The target is an ASGI app, served by uvicorn (functions/serve.py, docs/mcp.md);
its code is the functions.mcp_server package. Resolving the target reads the
settings, so a missing one stops the function at start with one line; the SDK
itself is imported when the server starts (functions/mcp_server/app.py).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from functions.core import telemetry
from functions.core.asgi import traced
from functions.core.logs import configure_logging
from functions.core.settings import settings
from functions.mcp_server.config import mcp_settings

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

_config = settings()
mcp_settings()
configure_logging(_config.log_level, _config.log_format)
telemetry.configure("mcp")

_app: ASGIApp | None = None
_lock = threading.Lock()


def _built() -> ASGIApp:
    global _app
    with _lock:
        if _app is None:
            from functions.mcp_server.app import build_app

            _app = traced("mcp", build_app())
    return _app


async def mcp(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI target: the gate in front of the SDK's app, built on the first event."""
    await (_app or _built())(scope, receive, send)
