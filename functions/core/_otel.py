"""The OpenTelemetry SDK behind `functions.core.telemetry`; imported only when an endpoint is set.

Each function name gets its own tracer, meter and logger provider, so its spans, metrics
and logs carry its own `service.name` even when the local gateway serves every function
in one process. The providers share one batch span processor and one batch log
processor (each exported record keeps its provider's resource); metrics of every function
go to one aggregator (`functions.core._otel_metrics`), so one process has one exporting
thread per signal.

Exporters and threads are built on first use in the process that uses them: a
functions-framework function configures telemetry while it is imported, in the gunicorn
master, and serves in a forked worker, which must not share the master's connections.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from functions.core import logs
from functions.core._otel_metrics import Aggregator, PeriodicExport
from functions.core.telemetry import Attributes, Instrument, Kind

SCOPE = "todo-platform"
FLUSH_TIMEOUT_SECONDS = 5.0
_KINDS = {
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
    "internal": SpanKind.INTERNAL,
}
_PROPAGATOR = TraceContextTextMapPropagator()
# The function the current work belongs to; set by entry spans (server, consumer).
_service: ContextVar[str | None] = ContextVar("todo_platform_service", default=None)
# The exporters' own loggers: exporting their records could loop on a failing endpoint.
_NOT_EXPORTED = ("opentelemetry", "urllib3", "requests")
_SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}


def process_start_time() -> float:
    """When this process started (epoch seconds), from /proc; now where there is no /proc."""
    try:
        with open("/proc/self/stat") as stat:
            # Field 22 (after the parenthesised command, which may hold spaces) is the start
            # in clock ticks after boot.
            ticks = int(stat.read().rpartition(")")[2].split()[19])
        with open("/proc/stat") as boot:
            btime = next(int(line.split()[1]) for line in boot if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("todo-platform")
    except PackageNotFoundError:
        return "0+unknown"


def resource(service: str) -> Resource:
    """`service.name` (the registry name, over OTEL_SERVICE_NAME), version, environment, Knative.

    `OTEL_RESOURCE_ATTRIBUTES` adds the rest, e.g. `deployment.environment.name=prod`;
    the older `deployment.environment` is filled from it for backends that read that one.
    """
    attributes: dict[str, Any] = {"service.name": service, "service.version": _version()}
    if os.environ.get("K_SERVICE"):
        attributes["faas.name"] = os.environ["K_SERVICE"]
    if os.environ.get("K_REVISION"):
        attributes["faas.version"] = os.environ["K_REVISION"]
    created = Resource.create(attributes)
    environment = created.attributes.get("deployment.environment.name")
    if environment and "deployment.environment" not in created.attributes:
        created = created.merge(Resource({"deployment.environment": environment}))
    return created


@dataclass
class _Service:
    """One function's providers in this process, and the loggers made so far."""

    name: str
    tracer_provider: TracerProvider
    tracer: trace.Tracer
    logger_provider: LoggerProvider | None
    # The SDK's own get_logger takes a lock and updates a WeakSet on every call.
    loggers: dict[str, Any] = field(default_factory=dict)

    def logger(self, name: str) -> Any:
        found = self.loggers.get(name)
        if found is None and self.logger_provider is not None:
            found = self.loggers[name] = self.logger_provider.get_logger(name)
        return found


class _Pipelines:
    """The exporting side of one process: shared processors and every function's providers."""

    def __init__(self, signals: tuple[str, ...]) -> None:
        self.signals = signals
        self.span_processor: BatchSpanProcessor | None = None
        self.log_processor: BatchLogRecordProcessor | None = None
        if "traces" in signals:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.span_processor = BatchSpanProcessor(OTLPSpanExporter())
        if "logs" in signals:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            self.log_processor = BatchLogRecordProcessor(OTLPLogExporter())
        self.metrics: Aggregator | None = None
        self.metric_export: PeriodicExport | None = None
        if "metrics" in signals:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            # A function's metrics carry the resource its spans carry.
            self.metrics = Aggregator(
                lambda name: self.service(name).tracer_provider.resource, SCOPE
            )
            self.metric_export = PeriodicExport(self.metrics, OTLPMetricExporter())
        self.services: dict[str, _Service] = {}
        self.lock = threading.Lock()

    def service(self, name: str) -> _Service:
        found = self.services.get(name)
        if found is not None:
            return found
        with self.lock:
            found = self.services.get(name)
            if found is None:
                found = self.services[name] = self._build(name)
        return found

    def _build(self, name: str) -> _Service:
        res = resource(name)
        # Spans nobody exports still carry the trace context; recording them would be waste.
        sampler = None if self.span_processor is not None else ALWAYS_OFF
        tracer_provider = TracerProvider(resource=res, sampler=sampler, shutdown_on_exit=False)
        if self.span_processor is not None:
            tracer_provider.add_span_processor(self.span_processor)
        logger_provider = None
        if self.log_processor is not None:
            logger_provider = LoggerProvider(resource=res, shutdown_on_exit=False)
            logger_provider.add_log_record_processor(self.log_processor)
        return _Service(
            name,
            tracer_provider,
            tracer_provider.get_tracer(SCOPE),
            logger_provider,
        )

    def flush(self, timeout_seconds: float) -> None:
        millis = int(timeout_seconds * 1000)
        if self.span_processor is not None:
            self.span_processor.force_flush(millis)
        if self.metric_export is not None:
            self.metric_export.export(millis)
        if self.log_processor is not None:
            self.log_processor.force_flush(millis)

    def shutdown(self) -> None:
        if self.span_processor is not None:
            self.span_processor.shutdown()
        if self.metric_export is not None:
            self.metric_export.shutdown()
        if self.log_processor is not None:
            self.log_processor.shutdown()


class Backend:
    """Process-wide telemetry state: the functions configured here and this process's pipelines."""

    def __init__(self, signals: tuple[str, ...]) -> None:
        self.signals = signals
        self.started_at = process_start_time()
        self.names: list[str] = []
        self._pipelines: _Pipelines | None = None
        self._lock = threading.Lock()
        self._ready_in: int | None = None
        # A forked child (gunicorn's worker) starts without pipelines: the parent's
        # exporters, threads and connections are not its to use.
        os.register_at_fork(after_in_child=self._forget_pipelines)
        atexit.register(self.shutdown)
        # Libraries that trace through the global API (the MCP SDK's tools/call spans)
        # export as the function whose request is current, like our own spans.
        trace.set_tracer_provider(_CurrentFunctionTracerProvider(self))
        self.chain_sigterm()
        if "logs" in signals:
            logging.getLogger().addHandler(OtlpLogHandler(self))

    def add_service(self, name: str) -> None:
        with self._lock:
            if name not in self.names:
                self.names.append(name)

    def _forget_pipelines(self) -> None:
        self._pipelines = None
        self._lock = threading.Lock()

    def _here(self) -> _Pipelines:
        pipelines = self._pipelines
        if pipelines is None:
            with self._lock:
                pipelines = self._pipelines
                if pipelines is None:
                    pipelines = self._pipelines = _Pipelines(self.signals)
        return pipelines

    def current_service(self) -> str | None:
        return _service.get() or (self.names[0] if self.names else None)

    def _current(self, service: str | None = None) -> _Service:
        pipelines = self._pipelines or self._here()
        name = service or self.current_service() or SCOPE
        return pipelines.services.get(name) or pipelines.service(name)

    def span(
        self,
        name: str,
        kind: Kind,
        attributes: Attributes | None,
        parent: object | None,
        link: object | None,
        service: str | None,
        measures: tuple[Instrument, ...],
        leaf: bool,
    ) -> _Span | _Timed:
        if leaf and not trace.get_current_span().is_recording():
            # An unsampled request's statement, or one outside any request: no span to
            # make, only its measures to take.
            return _Timed(attributes or {}, measures)
        return _Span(self, name, kind, attributes, parent, link, service, measures, leaf)

    def inject(self, headers: MutableMapping[str, str]) -> None:
        _PROPAGATOR.inject(headers)

    def extract(self, carrier: Mapping[str, str]) -> object | None:
        extracted = _PROPAGATOR.extract(carrier)
        valid = trace.get_current_span(extracted).get_span_context().is_valid
        return extracted if valid else None

    def current_ids(self) -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")

    def record(self, instrument: Instrument, value: float, attributes: Attributes | None) -> None:
        aggregator = (self._pipelines or self._here()).metrics
        if aggregator is not None:
            aggregator.record(self.current_service() or SCOPE, instrument, value, attributes)

    def ready(self) -> None:
        if self._ready_in == os.getpid():
            return
        self._ready_in = os.getpid()
        from functions.core import metrics

        metrics.COLD_STARTS.record(1)
        metrics.INIT_DURATION.record(max(0.0, time.time() - self.started_at))

    def flush(self, timeout_seconds: float = FLUSH_TIMEOUT_SECONDS) -> None:
        pipelines = self._pipelines
        if pipelines is not None:
            pipelines.flush(timeout_seconds)

    def shutdown(self) -> None:
        """At exit: export what this process buffered."""
        pipelines = self._pipelines
        if pipelines is not None:
            pipelines.shutdown()

    def chain_sigterm(self) -> None:
        """Flush on SIGTERM, then do what the handler found here would have done."""
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; gunicorn exits through atexit
        previous = signal.getsignal(signal.SIGTERM)
        if getattr(previous, "flushes_telemetry", False):
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            # In a thread of its own: the interrupted main thread may hold a lock the
            # exporters need, and Knative's grace period bounds how long we may take.
            flushing = threading.Thread(target=self.flush, daemon=True)
            flushing.start()
            flushing.join(FLUSH_TIMEOUT_SECONDS)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        on_sigterm.flushes_telemetry = True  # type: ignore[attr-defined]
        signal.signal(signal.SIGTERM, on_sigterm)


class _CurrentFunctionTracer(trace.Tracer):
    """A library's tracer that starts each span with the current function's provider."""

    def __init__(self, backend: Backend, name: str, version: str | None) -> None:
        self._backend = backend
        self._name = name
        self._version = version
        self._tracers: dict[str, trace.Tracer] = {}

    def _tracer(self) -> trace.Tracer:
        service = self._backend._current()
        tracer = self._tracers.get(service.name)
        if tracer is None:
            tracer = service.tracer_provider.get_tracer(self._name, self._version)
            self._tracers[service.name] = tracer
        return tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


class _CurrentFunctionTracerProvider(trace.TracerProvider):
    """The global provider: hands libraries tracers that follow the current function."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _CurrentFunctionTracer(
            self._backend, instrumenting_module_name, instrumenting_library_version
        )


class _Span:
    """A span as a context manager: current while the block runs, ended when it leaves."""

    __slots__ = (
        "_attributes",
        "_backend",
        "_kind",
        "_leaf",
        "_link",
        "_measures",
        "_name",
        "_parent",
        "_service",
        "_service_token",
        "_span",
        "_started",
        "_token",
    )

    def __init__(
        self,
        backend: Backend,
        name: str,
        kind: Kind,
        attributes: Attributes | None,
        parent: object | None,
        link: object | None,
        service: str | None,
        measures: tuple[Instrument, ...],
        leaf: bool,
    ) -> None:
        self._backend = backend
        self._name = name
        self._kind = kind
        self._attributes = {k: v for k, v in (attributes or {}).items() if v is not None}
        self._parent = parent if isinstance(parent, otel_context.Context) else None
        self._link = link if isinstance(link, otel_context.Context) else None
        self._service = service
        self._measures = measures
        self._leaf = leaf
        self._token: object | None = None

    @property
    def recording(self) -> bool:
        return self._span.is_recording()

    def __enter__(self) -> _Span:
        if self._service is not None:
            self._service_token = _service.set(self._service)
        if self._leaf:
            # Started, never made current: nothing runs inside a statement, and
            # attaching a context costs more than the span's own attributes.
            self._span = self._tracer().start_span(
                self._name,
                kind=_KINDS[self._kind],
                attributes=self._attributes,
                record_exception=False,
                set_status_on_exception=False,
            )
        else:
            links = ()
            if self._link is not None:
                links = (trace.Link(trace.get_current_span(self._link).get_span_context()),)
            self._span = self._tracer().start_span(
                self._name,
                context=self._parent,
                kind=_KINDS[self._kind],
                attributes=self._attributes,
                links=links,
                record_exception=False,
                set_status_on_exception=False,
            )
            self._token = otel_context.attach(trace.set_span_in_context(self._span, self._parent))
        self._started = time.perf_counter()
        return self

    def _tracer(self) -> trace.Tracer:
        return self._backend._current(self._service).tracer

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        elapsed = time.perf_counter() - self._started
        if exc_type is not None:
            # The type only: an exception's message may hold values or secrets.
            self.fail(exc_type.__qualname__)
        self._span.end()
        if self._token is not None:
            otel_context.detach(self._token)
        for instrument in self._measures:
            value = 1 if instrument.kind == "counter" else elapsed
            instrument.record(value, self._attributes)
        if self._service is not None:
            _service.reset(self._service_token)

    def set(self, key: str, value: Any) -> None:
        if value is not None:
            self._attributes[key] = value
            self._span.set_attribute(key, value)

    def update(self, attributes: Attributes) -> None:
        for key, value in attributes.items():
            self.set(key, value)

    def rename(self, name: str) -> None:
        self._span.update_name(name)

    def fail(self, error_type: str) -> None:
        self.set("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR, error_type))


class _Timed:
    """A leaf span's measures without the span: a statement no recording span is above."""

    __slots__ = ("_attributes", "_measures", "_started")
    recording = False

    def __init__(self, attributes: Attributes, measures: tuple[Instrument, ...]) -> None:
        self._attributes = attributes
        self._measures = measures

    def __enter__(self) -> _Timed:
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        elapsed = time.perf_counter() - self._started
        if exc_type is not None:
            self.fail(exc_type.__qualname__)
        for instrument in self._measures:
            instrument.record(1 if instrument.kind == "counter" else elapsed, self._attributes)

    def set(self, key: str, value: Any) -> None:
        if value is not None:
            self._attributes = {**self._attributes, key: value}  # the caller's dict stays as is

    def update(self, attributes: Attributes) -> None:
        for key, value in attributes.items():
            self.set(key, value)

    def rename(self, name: str) -> None:
        pass

    def fail(self, error_type: str) -> None:
        self.set("error.type", error_type)


def _in_sampled_trace_or_warning(record: logging.LogRecord) -> bool:
    """Trace-based log sampling (the spec's LoggerConfig `trace_based`), for INFO and below.

    A record written inside a trace that was not sampled is not exported over OTLP: its
    request has no spans to be read beside, and encoding a record per request is the
    largest cost telemetry adds to one (docs/observability.md). It is still on stderr
    with its trace id, like every line; warnings and errors are always exported.
    """
    if record.levelno >= logging.WARNING:
        return True
    context = trace.get_current_span().get_span_context()
    return not context.is_valid or context.trace_flags.sampled


class OtlpLogHandler(logging.Handler):
    """Exports log records over OTLP under the current function's name, with the trace context."""

    platform_handler = True  # configure_logging keeps it

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.addFilter(_in_sampled_trace_or_warning)  # first: the cheap check
        self.addFilter(logs.Redact())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_NOT_EXPORTED):
            return
        logger = self.backend._current().logger(record.name)
        if logger is None:
            return
        attributes: dict[str, Any] = {
            key: value if isinstance(value, str | bool | int | float) else str(value)
            for key, value in logs.extras(record).items()
        }
        if record.exc_info and record.exc_info[0] is not None:
            attributes["exception.type"] = record.exc_info[0].__qualname__
            attributes["exception.stacktrace"] = record.exc_text or ""
        logger.emit(
            timestamp=int(record.created * 1e9),
            observed_timestamp=time.time_ns(),
            context=otel_context.get_current(),
            severity_number=_SEVERITY.get(record.levelno, SeverityNumber.INFO),
            severity_text=record.levelname,
            body=record.getMessage(),
            attributes=attributes,
        )
