"""A small MCP server for the agent's tests: the official SDK's MCPServer under uvicorn.

Stateless Streamable HTTP on 127.0.0.1, with an `add_todo` that records what it
was asked and a `broken` tool that refuses; every request's headers are recorded
and a wrong bearer token is refused, like the platform's own gate does.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

TOKEN = "internal-test-token"


class McpStandIn:
    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.added: list[dict[str, Any]] = []
        server = MCPServer("stand-in")

        @server.tool()
        def add_todo(title: str, due_at: str | None = None) -> dict[str, Any]:
            """Create a todo."""
            self.added.append({"title": title, "due_at": due_at})
            return {"number": len(self.added), "title": title, "due_at": due_at}

        @server.tool()
        def broken() -> str:
            """Always fails."""
            raise ToolError("no such todo")  # the error channel the model reads

        self.app = server.streamable_http_app(stateless_http=True, json_response=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/mcp"
        config = uvicorn.Config(
            self._asgi, host="127.0.0.1", port=port, log_level="warning", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.seen.append(headers)
            if headers.get("authorization") != f"Bearer {TOKEN}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
