"""Who may reach the MCP endpoint, from where, and what a JSON-RPC message needs: pure rules.

The gate (gate.py) applies these before the SDK sees a request; keeping them pure
lets the tests state each rule directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from functions.core.auth import READ

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
METADATA_PATH = "/.well-known/oauth-protected-resource"


def allowed(value: str | None, patterns: Iterable[str]) -> bool:
    """Whether a Host or Origin value is allowed: an exact entry, or `base:*` for any port.

    The same rule as the SDK's TransportSecuritySettings, which gets the same lists.
    """
    if not value:
        return False
    for pattern in patterns:
        if value == pattern:
            return True
        if pattern.endswith(":*") and value.startswith(pattern[:-1]):
            port = value[len(pattern) - 1 :]
            if port.isdigit():
                return True
    return False


def origin_allowed(origin: str | None, patterns: Iterable[str]) -> bool:
    """No Origin (a non-browser client) is fine; a browser's Origin must be listed."""
    return origin is None or allowed(origin, patterns)


def required_scopes(body: bytes, tool_scopes: Mapping[str, str]) -> set[str]:
    """The scopes a JSON-RPC body needs: its tool's scope for `tools/call`, read for resources.

    A body that is not JSON, or not a request this cares about, needs nothing here:
    the SDK answers it with a JSON-RPC error and no tool runs.
    """
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return set()
    messages = parsed if isinstance(parsed, list) else [parsed]
    needed: set[str] = set()
    for message in messages:
        if not isinstance(message, dict):
            continue
        method = message.get("method")
        params = message.get("params")
        if method == "tools/call" and isinstance(params, dict):
            scope = tool_scopes.get(str(params.get("name")))
            if scope is not None:
                needed.add(scope)
        elif method == "resources/read":
            needed.add(READ)
    return needed


def trace_context(headers: Mapping[str, str]) -> dict[str, str]:
    """The W3C trace context to pass on: a well-formed traceparent and its tracestate."""
    traceparent = headers.get("traceparent", "").strip().lower()
    if not _TRACEPARENT.match(traceparent) or traceparent.startswith("ff"):
        return {}
    context = {"traceparent": traceparent}
    tracestate = headers.get("tracestate", "").strip()
    if tracestate and len(tracestate) <= 512:
        context["tracestate"] = tracestate
    return context


def resource_url(configured: str | None, scheme: str, host: str) -> str:
    """The protected resource's identifier (RFC 9728): the URL clients use for /mcp."""
    return configured or f"{scheme}://{host}/mcp"


def metadata_url(resource: str) -> str:
    """Where the resource's metadata document is, at the root of its origin."""
    scheme, _, rest = resource.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}{METADATA_PATH}"


def bearer_challenge(resource: str, **params: str) -> str:
    """A `WWW-Authenticate: Bearer` value that points clients at the metadata (RFC 9728 §5.1)."""
    parts = [f'{key}="{value}"' for key, value in params.items()]
    parts.append(f'resource_metadata="{metadata_url(resource)}"')
    return "Bearer " + ", ".join(parts)
