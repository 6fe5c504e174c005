"""Metric aggregation for `functions.core._otel`: a few microseconds a record, exported as OTLP.

The SDK's `MeterProvider` spends 14–18 µs on each histogram record (attribute
validation, hashing a sorted copy, a view match, exemplar plumbing); a create request
records five, which was most of what telemetry cost it (docs/observability.md, Cost).
The instruments here are fixed (`functions.core.metrics`), their attributes are few and
already clean, and temporality is always cumulative, so a record is one tuple, one dict
lookup and a bisect under a lock. The result is handed to the SDK's own OTLP exporter
in the SDK's data classes, so what reaches the collector is what the SDK would send.
Exemplars are not kept.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from functions.core.telemetry import Attributes, Instrument

log = logging.getLogger(__name__)

# The SDK's default explicit buckets, for a histogram that names none.
DEFAULT_BUCKETS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0)
CUMULATIVE = AggregationTemporality.CUMULATIVE
_Key = tuple[str, str, tuple[Any, ...]]


class _Gauge:
    """The last value set."""

    __slots__ = ("start", "value")

    def __init__(self, start: int) -> None:
        self.start = start
        self.value = 0.0

    def add(self, value: float) -> None:
        self.value = float(value)  # one point type per metric, like the counters' sums

    def point(self, attributes: Attributes, now: int) -> NumberDataPoint:
        return NumberDataPoint(attributes, self.start, now, self.value)


class _Counter(_Gauge):
    """The sum of every value added since the start."""

    __slots__ = ()

    def add(self, value: float) -> None:
        self.value += value


class _Histogram:
    __slots__ = ("bounds", "count", "counts", "max", "min", "start", "sum")

    def __init__(self, start: int, bounds: tuple[float, ...]) -> None:
        self.start = start
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float) -> None:
        # Bucket i holds (bounds[i-1], bounds[i]]: a value on a bound goes below it.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def point(self, attributes: Attributes, now: int) -> HistogramDataPoint:
        return HistogramDataPoint(
            attributes=attributes,
            start_time_unix_nano=self.start,
            time_unix_nano=now,
            count=self.count,
            sum=self.sum,
            bucket_counts=list(self.counts),
            explicit_bounds=list(self.bounds),
            min=self.min,
            max=self.max,
            exemplars=[],
        )


_Series = _Counter | _Gauge | _Histogram


class Aggregator:
    """Cumulative series per (function, instrument, attribute values) of one process."""

    def __init__(self, resource: Callable[[str], Resource], scope: str) -> None:
        self._resource = resource
        self._resources: dict[str, Resource] = {}
        self._scope = InstrumentationScope(scope)
        self._series: dict[_Key, _Series] = {}
        self._instruments: dict[str, Instrument] = {}
        self._lock = threading.Lock()

    def record(
        self, service: str, instrument: Instrument, value: float, attributes: Attributes | None
    ) -> None:
        """Add to a counter, record into a histogram, or set a gauge, for `service`."""
        if attributes and instrument.keys:
            values = tuple(map(attributes.get, instrument.keys))
        else:
            values = ()
        key = (service, instrument.name, values)
        if service not in self._resources:
            # Made at the first record, not at export: the last export runs at exit,
            # when the resource detectors' thread pool can no longer start.
            self._resources.setdefault(service, self._resource(service))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = self._new(instrument)
            series.add(value)

    def _new(self, instrument: Instrument) -> _Series:
        self._instruments.setdefault(instrument.name, instrument)
        now = time.time_ns()
        if instrument.kind == "counter":
            return _Counter(now)
        if instrument.kind == "gauge":
            return _Gauge(now)
        return _Histogram(now, tuple(instrument.buckets or DEFAULT_BUCKETS))

    def collect(self) -> MetricsData:
        """Every series so far, one resource per function, as the SDK's exporters take them."""
        now = time.time_ns()
        points: dict[str, dict[str, list[Any]]] = {}
        with self._lock:
            for (service, name, values), series in self._series.items():
                keys = self._instruments[name].keys
                attributes = {k: v for k, v in zip(keys, values, strict=False) if v is not None}
                points.setdefault(service, {}).setdefault(name, []).append(
                    series.point(attributes, now)
                )
        return MetricsData(
            [
                ResourceMetrics(
                    self._resources[service],
                    [ScopeMetrics(self._scope, self._metrics(by_name), "")],
                    "",
                )
                for service, by_name in points.items()
            ]
        )

    def _metrics(self, by_name: Mapping[str, list[Any]]) -> list[Metric]:
        metrics = []
        for name, data_points in by_name.items():
            instrument = self._instruments[name]
            data: Sum | Gauge | Histogram
            if instrument.kind == "counter":
                data = Sum(data_points, CUMULATIVE, is_monotonic=True)
            elif instrument.kind == "gauge":
                data = Gauge(data_points)
            else:
                data = Histogram(data_points, CUMULATIVE)
            metrics.append(Metric(name, instrument.description, instrument.unit, data))
        return metrics


def _milliseconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        log.warning("telemetry: %s=%r is not in milliseconds; using %d", name, raw, default)
        return default


class PeriodicExport:
    """Sends the aggregator's series every `OTEL_METRIC_EXPORT_INTERVAL` ms (default 60 s)."""

    def __init__(self, aggregator: Aggregator, exporter: MetricExporter) -> None:
        self.aggregator = aggregator
        self.exporter = exporter
        self.interval = _milliseconds("OTEL_METRIC_EXPORT_INTERVAL", 60_000) / 1000
        self.timeout_millis = _milliseconds("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)
        self._stopped = threading.Event()
        self._exporting = threading.Lock()  # a flush and the timer never send at once
        self._thread = threading.Thread(target=self._run, name="otel-metrics", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.export()

    def export(self, timeout_millis: float | None = None) -> None:
        data = self.aggregator.collect()
        if not data.resource_metrics:
            return
        with self._exporting:
            try:
                self.exporter.export(data, timeout_millis=timeout_millis or self.timeout_millis)
            except Exception:  # a failing collector must not take a request or the timer down
                log.warning("telemetry: exporting metrics failed", exc_info=True)

    def shutdown(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.export()
        self.exporter.shutdown()
