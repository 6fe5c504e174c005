"""The metric aggregator: what it records reaches an OTLP/HTTP receiver as the SDK would send it.

Each test records through `Aggregator` and exports with the SDK's own
`OTLPMetricExporter` to the local OTLP receiver, then reads the decoded export request:
buckets, counts, sums, min/max, temporality, attributes and each function's resource.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.resources import Resource

from functions.core._otel_metrics import Aggregator, PeriodicExport
from functions.core.telemetry import Instrument
from tests.otlp_receiver import OtlpReceiver

DURATION = Instrument(
    "histogram", "test.duration", "s", "A duration.", ("http.route", "error.type"), (0.1, 1.0)
)
COUNT = Instrument("counter", "test.count", "{thing}", "Things.", ("kind",))
LEVEL = Instrument("gauge", "test.level", "{thing}", "A level.")


def _resource(name: str) -> Resource:
    return Resource({"service.name": name, "made.for": name})


@pytest.fixture
def export(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """(aggregator, send): `send()` exports now and returns the metrics of that request."""
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # only when told to
    aggregator = Aggregator(_resource, "todo-platform")
    exporter = OTLPMetricExporter(endpoint=f"{receiver.endpoint}/v1/metrics")
    periodic = PeriodicExport(aggregator, exporter)

    def send() -> dict[tuple[str, str], Any]:
        before = len(receiver.received.exports)
        periodic.export()
        receiver.wait_for(lambda r: len(r.exports) > before)
        request = receiver.received.exports[-1]
        found = {}
        for resource_metrics in request.resource_metrics:
            attributes = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
            assert attributes["made.for"] == attributes["service.name"]
            for scope in resource_metrics.scope_metrics:
                assert scope.scope.name == "todo-platform"
                for metric in scope.metrics:
                    found[(attributes["service.name"], metric.name)] = metric
        return found

    yield aggregator, send
    periodic.shutdown()


def _attributes(point: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value for a in point.attributes}


def test_a_histogram_counts_each_value_in_its_bucket_with_sum_min_and_max(export: Any) -> None:
    aggregator, send = export
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):  # a value on a bound belongs below it
        aggregator.record("todo-get", DURATION, value, {"http.route": "/a"})
    metric = send()[("todo-get", "test.duration")]
    assert (metric.unit, metric.description) == ("s", "A duration.")
    cumulative = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert metric.histogram.aggregation_temporality == cumulative
    (point,) = metric.histogram.data_points
    assert list(point.explicit_bounds) == [0.1, 1.0]
    assert list(point.bucket_counts) == [2, 2, 1]
    assert point.count == 5
    assert point.sum == pytest.approx(4.65)
    assert (point.min, point.max) == (0.05, 3.0)


def test_series_are_cumulative_across_exports_from_one_start(export: Any) -> None:
    aggregator, send = export
    aggregator.record("todo-get", DURATION, 0.2, {"http.route": "/a"})
    (first,) = send()[("todo-get", "test.duration")].histogram.data_points
    aggregator.record("todo-get", DURATION, 0.3, {"http.route": "/a"})
    (second,) = send()[("todo-get", "test.duration")].histogram.data_points
    assert (first.count, second.count) == (1, 2)
    assert second.start_time_unix_nano == first.start_time_unix_nano
    assert second.time_unix_nano > first.time_unix_nano


def test_only_the_instruments_keys_become_attributes_and_each_value_set_is_a_series(
    export: Any,
) -> None:
    aggregator, send = export
    aggregator.record("todo-get", DURATION, 0.2, {"http.route": "/a", "url.full": "/a?x=1"})
    aggregator.record("todo-get", DURATION, 0.2, {"http.route": "/a", "error.type": None})
    aggregator.record("todo-get", DURATION, 0.2, {"http.route": "/a", "error.type": "Timeout"})
    aggregator.record("todo-get", DURATION, 0.2, None)
    points = send()[("todo-get", "test.duration")].histogram.data_points
    by_attributes = {tuple(sorted(_attributes(p).items())): p.count for p in points}
    assert by_attributes == {
        (("http.route", "/a"),): 2,
        (("error.type", "Timeout"), ("http.route", "/a")): 1,
        (): 1,
    }


def test_counters_add_up_and_gauges_keep_the_last_value(export: Any) -> None:
    aggregator, send = export
    for _ in range(3):
        aggregator.record("relay", COUNT, 1, {"kind": "sent"})
    aggregator.record("relay", LEVEL, 7, None)
    aggregator.record("relay", LEVEL, 4, None)
    found = send()
    counter = found[("relay", "test.count")].sum
    assert counter.is_monotonic
    assert [(p.as_double, _attributes(p)) for p in counter.data_points] == [(3, {"kind": "sent"})]
    assert [p.as_double for p in found[("relay", "test.level")].gauge.data_points] == [4]


def test_each_function_exports_under_its_own_resource(export: Any) -> None:
    aggregator, send = export
    aggregator.record("todo-get", COUNT, 1, {"kind": "a"})
    aggregator.record("todo-list", COUNT, 2, {"kind": "a"})
    found = send()
    assert found[("todo-get", "test.count")].sum.data_points[0].as_double == 1
    assert found[("todo-list", "test.count")].sum.data_points[0].as_double == 2


def test_an_export_with_nothing_recorded_sends_no_request(receiver: OtlpReceiver) -> None:
    aggregator = Aggregator(_resource, "todo-platform")
    periodic = PeriodicExport(
        aggregator, OTLPMetricExporter(endpoint=f"{receiver.endpoint}/v1/metrics")
    )
    before = len(receiver.received.exports)
    periodic.export()
    aggregator.record("todo-get", COUNT, 1, None)
    periodic.shutdown()  # exports what is left, once
    assert len(receiver.received.exports) == before + 1
