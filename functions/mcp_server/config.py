"""The mcp function's own settings, read once from the environment beside the shared ones.

TODO_API_URL is where the tools reach the todo functions. It may contain
`{function}`, replaced by the registry name of the function that owns each route,
so in the cluster every call goes straight to that function's cluster-local
address (`http://{function}.todo-platform.svc.cluster.local`); `todo-platform up`
sets it to the gateway's own URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from functions.core.settings import ConfigError, settings

# Loopback on any port: what a local client sends as Host, and as Origin from a local page.
LOCAL_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOCAL_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


@dataclass(frozen=True)
class McpSettings:
    todo_api_url: str
    internal_token: str
    allowed_hosts: tuple[str, ...]  # Host values (`name`, `name:port`, `name:*`)
    allowed_origins: tuple[str, ...]  # Origin values (`https://name`, `http://name:*`)
    resource_url: str | None  # the public URL of /mcp; None: derived from each request


def _list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value.replace("{function}", "function"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"todo-platform: {name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


@cache
def mcp_settings() -> McpSettings:
    """Read on first use; a missing or malformed setting raises ConfigError with one line."""
    internal_token = settings().internal_token
    if not internal_token:
        raise ConfigError("todo-platform: missing required setting TODO_INTERNAL_TOKEN")
    api_url = os.environ.get("TODO_API_URL", "")
    if not api_url:
        raise ConfigError("todo-platform: missing required setting TODO_API_URL")
    resource_url = os.environ.get("MCP_RESOURCE_URL") or None
    return McpSettings(
        todo_api_url=_http_url("TODO_API_URL", api_url),
        internal_token=internal_token,
        allowed_hosts=_list("MCP_ALLOWED_HOSTS", LOCAL_HOSTS),
        allowed_origins=_list("MCP_ALLOWED_ORIGINS", LOCAL_ORIGINS),
        resource_url=_http_url("MCP_RESOURCE_URL", resource_url) if resource_url else None,
    )
