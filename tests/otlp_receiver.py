"""A stand-in for the OpenTelemetry Collector: an OTLP/HTTP receiver on 127.0.0.1 that keeps
every span, log record and metric point it is sent, decoded with the `opentelemetry-proto`
messages the collector itself speaks (protobuf over HTTP, gzip or not).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which) if which else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass(frozen=True)
class SpanRecord:
    service: str
    resource: dict[str, Any]
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: int  # 0 unset, 1 ok, 2 error
    links: tuple[tuple[str, str], ...]
    start: int
    end: int


@dataclass(frozen=True)
class LogRecord:
    service: str
    body: str
    severity: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    time: int  # when it was written, in nanoseconds since the epoch


@dataclass(frozen=True)
class MetricPoint:
    service: str
    name: str
    unit: str
    attributes: dict[str, Any]
    value: float  # the sum for histograms, the value for sums and gauges
    count: int | None  # histograms only


@dataclass
class Received:
    spans: list[SpanRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # every decoded body, for leak scans
    exports: list[Message] = field(default_factory=list)  # every export request, parsed


class OtlpReceiver:
    """Receives OTLP/HTTP on `endpoint` (use as OTEL_EXPORTER_OTLP_ENDPOINT) until `stop`."""

    def __init__(self) -> None:
        self.received = Received()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                response = receiver._accept(self.path, body)
                if response is None:
                    self.send_error(404)
                    return
                payload = response.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _accept(self, path: str, body: bytes) -> Message | None:
        request: Message
        if path == "/v1/traces":
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            spans = list(_spans(request))
            response: Message = trace_service_pb2.ExportTraceServiceResponse()
        elif path == "/v1/logs":
            request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
            records = list(_logs(request))
            response = logs_service_pb2.ExportLogsServiceResponse()
        elif path == "/v1/metrics":
            request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
            points = list(_points(request))
            response = metrics_service_pb2.ExportMetricsServiceResponse()
        else:
            return None
        with self._changed:
            self.received.raw.append(body)
            self.received.exports.append(request)
            if path == "/v1/traces":
                self.received.spans.extend(spans)
            elif path == "/v1/logs":
                self.received.logs.extend(records)
            else:
                self.received.metrics.extend(points)
            self._changed.notify_all()
        return response

    def wait_for(self, found: Callable[[Received], Any], timeout: float = 15.0) -> Any:
        """The first truthy `found(received)`, re-checked as exports arrive; fails on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found(self.received)
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"not received within {timeout} s: {len(self.received.spans)} spans, "
                        f"{len(self.received.logs)} logs, {len(self.received.metrics)} points; "
                        f"span names {sorted({s.name for s in self.received.spans})}"
                    )
                self._changed.wait(min(left, 0.2))


def _service(resource: Any) -> tuple[str, dict[str, Any]]:
    attributes = _attributes(resource.attributes)
    return str(attributes.get("service.name", "")), attributes


def _spans(request: trace_service_pb2.ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    for resource_spans in request.resource_spans:
        service, resource = _service(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanRecord(
                    service=service,
                    resource=resource,
                    name=span.name,
                    kind=KINDS.get(span.kind, "unspecified"),
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    attributes=_attributes(span.attributes),
                    status=span.status.code,
                    links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                    start=span.start_time_unix_nano,
                    end=span.end_time_unix_nano,
                )


def _logs(request: logs_service_pb2.ExportLogsServiceRequest) -> Iterator[LogRecord]:
    for resource_logs in request.resource_logs:
        service, _ = _service(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield LogRecord(
                    service=service,
                    body=str(_value(record.body)),
                    severity=record.severity_text,
                    trace_id=record.trace_id.hex(),
                    span_id=record.span_id.hex(),
                    attributes=_attributes(record.attributes),
                    time=record.time_unix_nano,
                )


def _points(request: metrics_service_pb2.ExportMetricsServiceRequest) -> Iterator[MetricPoint]:
    for resource_metrics in request.resource_metrics:
        service, _ = _service(resource_metrics.resource)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points:
                    histogram = kind in ("histogram", "exponential_histogram")
                    if histogram:
                        value: float = point.sum
                    else:
                        value = getattr(point, point.WhichOneof("value"))
                    yield MetricPoint(
                        service=service,
                        name=metric.name,
                        unit=metric.unit,
                        attributes=_attributes(point.attributes),
                        value=value,
                        count=point.count if histogram else None,
                    )
