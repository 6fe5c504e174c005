"""W3C trace context for the events a request causes: the one seam tracing goes through.

With telemetry on, the active OpenTelemetry span is the work in progress, and an event
carries the context of the `create` span around its outbox write (`event_traceparent`),
so its consumer's span continues the very trace that wrote it. With telemetry off, a
request continues the `traceparent` it arrived with (or starts a new trace), and each
event it emits carries a child of it: same trace-id, new span-id.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from functions.core import telemetry

# version-traceid-parentid-flags; a future version may append fields after a dash.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


class _NewTrace:
    """The trace a request without a valid `traceparent` starts, made when first asked for.

    Most requests emit no event and, with telemetry off, nothing else reads it: two
    random ids a request (two getrandom calls) would be spent for nothing.
    """

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value: str | None = None

    def value(self) -> str:
        if self._value is None:
            self._value = child_traceparent(None)
        return self._value


_current: ContextVar[str | _NewTrace | None] = ContextVar("traceparent", default=None)


def _in_progress() -> str | None:
    current = _current.get()
    return current.value() if isinstance(current, _NewTrace) else current


def _parts(traceparent: str | None) -> tuple[str, str] | None:
    """(trace-id, flags) of a valid traceparent, else None (invalid ones are ignored)."""
    match = _TRACEPARENT.match((traceparent or "").strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"}:
        return None
    if set(span_id) == {"0"}:
        return None
    return trace_id, flags


def child_traceparent(parent: str | None) -> str:
    """A new span in parent's trace (same trace-id and flags), or a new sampled trace."""
    parts = _parts(parent)
    trace_id, flags = parts if parts else (secrets.token_hex(16), "01")
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def current_traceparent() -> str | None:
    """The trace context of the work in progress (None outside a request)."""
    return telemetry.current_traceparent() or _in_progress()


def event_traceparent() -> str:
    """The `traceparent` for an event created now: the current span's when telemetry keeps
    one (`spans.event_create` around the write), else a new child of the work in progress."""
    return telemetry.current_traceparent() or child_traceparent(_in_progress())


@contextmanager
def continue_trace(incoming: str | None) -> Iterator[None]:
    """Run the block in the incoming trace context, or in a new trace when it is not valid."""
    valid = incoming.strip() if incoming and _parts(incoming) else None
    token = _current.set(valid if valid is not None else _NewTrace())
    try:
        yield
    finally:
        _current.reset(token)
