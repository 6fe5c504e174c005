"""Server spans, the request metric and the access line for an ASGI function (mcp).

What `http_function` gives every WSGI function, as an ASGI wrapper: a span per request
continuing the caller's `traceparent` and named by the registry route, its duration in
`http.server.request.duration`, one access log line. Health checks go straight through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from functions.core import metrics, telemetry
from functions.core.routing import KNOWN_METHODS, Router
from functions.registry import BY_NAME

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

access = logging.getLogger("todo_platform.access")
HEALTH_PATHS = ("/healthz", "/readyz")


def traced(name: str, app: ASGIApp) -> ASGIApp:
    """`app` with a server span, metric and access line per HTTP request, as function `name`."""
    router: Router[str] = Router((r.method, r.path, r.path) for r in BY_NAME[name].routes)

    async def serve(scope: Message, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in HEALTH_PATHS:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER"
        match = router.match(scope["method"], path)
        route = match.target if match is not None else None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        with telemetry.span(
            f"{method} {route}" if route else method,
            "server",
            {
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "url.scheme": scope.get("scheme", "http"),
            },
            parent=telemetry.extract(headers),
            service=name,
            measures=(metrics.HTTP_SERVER_DURATION,),
        ) as span:
            try:
                await app(scope, receive, sending)
            finally:
                span.set("http.response.status_code", status[0])
                if status[0] >= 500:
                    span.fail(str(status[0]))
                access.info(
                    "%s %s %s",
                    method,
                    path,
                    status[0],
                    extra={
                        "method": method,
                        "route": route,
                        "path": path,
                        "status": status[0],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
        telemetry.ready()

    return serve
