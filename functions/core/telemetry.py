"""Traces, metrics and log export for every function: one line per call site, nothing when off.

Telemetry is on when an OTLP endpoint is configured through the standard variables
(`OTEL_EXPORTER_OTLP_ENDPOINT`, or a per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, ...)
and `OTEL_SDK_DISABLED` is not `true`. Off, every function here returns at once and the
OpenTelemetry SDK is never imported: a scale-to-zero function pays for what it imports on
every cold start. On, `functions.core._otel` does the work.

    with telemetry.span("GET /api/v1/todos", "server", {...}, parent=extract(headers)):
        ...
    telemetry.inject(headers)            # outgoing requests carry the trace
    metrics.DB_DURATION.record(0.002, {...})
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from functions.core._otel import Backend

Kind = Literal["server", "client", "producer", "consumer", "internal"]
Attributes = Mapping[str, Any]
Parent = object  # an extracted remote context; opaque outside functions.core._otel
SIGNALS = ("traces", "metrics", "logs")

_backend: Backend | None = None
_lock = threading.Lock()


class Span(Protocol):
    """What a call site may do with its span; the no-op span accepts the same calls."""

    recording: bool

    def __enter__(self) -> Span: ...
    def __exit__(self, *exc: object) -> None: ...
    def set(self, key: str, value: Any) -> None: ...
    def update(self, attributes: Attributes) -> None: ...
    def rename(self, name: str) -> None: ...
    def fail(self, error_type: str) -> None: ...


class _NoSpan:
    """The span handed out when telemetry is off: every method does nothing."""

    __slots__ = ()
    recording = False

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        pass

    def update(self, attributes: Attributes) -> None:
        pass

    def rename(self, name: str) -> None:
        pass

    def fail(self, error_type: str) -> None:
        pass


NO_SPAN: Span = _NoSpan()


def exported_signals(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The signals to export: those with an OTLP endpoint whose exporter is not `none`."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    generic = bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    return tuple(
        signal
        for signal in SIGNALS
        if (generic or environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"))
        and environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").strip().lower() != "none"
    )


def enabled() -> bool:
    """True once a function configured telemetry and an endpoint was set."""
    return _backend is not None


def configure(service: str) -> None:
    """Export this process's telemetry as `service` (the registry name), when an endpoint is set.

    Called by every function at start. The first call sets the process up (exporters,
    flush at exit and on SIGTERM); each further name, as in the local gateway where all
    functions share a process, gets its own `service.name`.
    """
    global _backend
    if _backend is None:
        signals = exported_signals()
        if not signals:
            return
        with _lock:
            if _backend is None:
                from functions.core._otel import Backend

                _backend = Backend(signals)
    _backend.add_service(service)


def span(
    name: str,
    kind: Kind = "internal",
    attributes: Attributes | None = None,
    *,
    parent: Parent | None = None,
    link: Parent | None = None,
    service: str | None = None,
    measures: tuple[Instrument, ...] = (),
    leaf: bool = False,
) -> Span:
    """A span to use as a context manager: the child of the current one, or of `parent`.

    `parent` (from `extract`) continues a caller's trace; `link` points at a related
    one (a published event's creation). `service` names the function the work belongs
    to (entry spans set it). When the block ends each of `measures` gets the span's
    low-cardinality attributes: a histogram its duration, a counter 1. A `leaf` span
    (a SQL statement) never becomes current, since nothing runs inside it, and is made
    only inside another span: a request's statement, not a readiness probe's; its
    measures are taken either way. An exception leaving the block marks the span failed
    with its type, never its message.
    """
    if _backend is None:
        return NO_SPAN
    return _backend.span(name, kind, attributes, parent, link, service, measures, leaf)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (`traceparent`, `tracestate`) to outgoing headers."""
    if _backend is not None:
        _backend.inject(headers)


def extract(carrier: Mapping[str, str]) -> Parent | None:
    """The caller's trace context in incoming headers or CloudEvent attributes, for `span`."""
    if _backend is None:
        return None
    return _backend.extract(carrier)


def current_traceparent() -> str | None:
    """The current span as a W3C `traceparent` value, or None with no active span."""
    if _backend is None:
        return None
    headers: dict[str, str] = {}
    _backend.inject(headers)
    return headers.get("traceparent")


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the active span in hex, for log lines; None without one."""
    if _backend is None:
        return None
    return _backend.current_ids()


def current_service() -> str | None:
    """The function the current work belongs to, when telemetry knows it."""
    if _backend is None:
        return None
    return _backend.current_service()


def ready() -> None:
    """The function is ready to serve: records the cold start once per process."""
    if _backend is not None:
        _backend.ready()


def flush_on_sigterm() -> None:
    """(Re)install the SIGTERM flush over the current handler; call from the main thread.

    For servers that install their own SIGTERM handler after `configure` ran, as
    gunicorn's worker does: call this afterwards and both run, the flush first.
    """
    if _backend is not None:
        _backend.chain_sigterm()


def flush(timeout_seconds: float = 5.0) -> None:
    """Export everything buffered now (tests, and before a process hands over work)."""
    if _backend is not None:
        _backend.flush(timeout_seconds)


@dataclass(frozen=True)
class Instrument:
    """A metric the platform emits; recording is a no-op while telemetry is off.

    `keys` are the attributes it is broken down by: only these are kept, so a span's
    high-cardinality attributes (a path, a query) never become metric labels.
    """

    kind: Literal["counter", "histogram", "gauge"]
    name: str
    unit: str
    description: str
    keys: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    def record(self, value: float, attributes: Attributes | None = None) -> None:
        """Add to a counter, record into a histogram, or set a gauge."""
        if _backend is not None:
            _backend.record(self, value, attributes)
