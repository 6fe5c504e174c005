"""The eventing manifests agree with the registry: who takes which event, retries, K_SINK."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events import types
from events.models import PingTick
from functions.platform.cron import parse_schedule
from functions.platform.event_router import iso_seconds
from functions.registry import BY_NAME, FUNCTIONS
from tests.knative_manifests import REPO_ROOT, render

PUBLISHES = "todo-platform.io/publishes-events"
SERVICE = {"apiVersion": "serving.knative.dev/v1", "kind": "Service"}


@pytest.fixture(scope="module", params=["base", "overlays/dev", "overlays/prod"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(REPO_ROOT / "knative" / request.param)


def _kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_each_command_has_one_trigger_to_the_function_that_takes_it(rendered) -> None:
    subscribed: dict[str, list[str]] = {}
    for trigger in _kind(rendered, "Trigger"):
        type_ = trigger["spec"]["filter"]["attributes"]["type"]
        ref = trigger["spec"]["subscriber"]["ref"]
        assert {k: ref[k] for k in SERVICE} == SERVICE
        assert type_ in BY_NAME[ref["name"]].event_types, f"{ref['name']} does not take {type_}"
        subscribed.setdefault(type_, []).append(ref["name"])
    for type_ in types.COMMANDS:
        assert len(subscribed.get(type_, [])) == 1, type_
    taken = {t for spec in FUNCTIONS for t in spec.event_types if t in types.ALL}
    assert taken <= set(subscribed), "a function takes a type no Trigger delivers"


def test_every_trigger_retries_with_backoff_then_dead_letters(rendered) -> None:
    for trigger in _kind(rendered, "Trigger"):
        delivery = trigger["spec"]["delivery"]
        assert delivery["retry"] >= 3
        assert delivery["backoffPolicy"] == "exponential"
        assert 0 < iso_seconds(delivery["backoffDelay"]) <= 5
        sink = delivery["deadLetterSink"]["ref"]
        assert {k: sink[k] for k in SERVICE} == SERVICE
        assert BY_NAME[sink["name"]].event_types == ("*",), "the sink must take any event"


def test_every_ping_consumer_has_a_ping_source_with_a_valid_schedule(rendered) -> None:
    sources = {o["spec"]["sink"]["ref"]["name"]: o for o in _kind(rendered, "PingSource")}
    consumers = {spec.name for spec in FUNCTIONS if types.KNATIVE_PING in spec.event_types}
    assert set(sources) == consumers
    for name, source in sources.items():
        spec = source["spec"]
        parse_schedule(spec["schedule"], spec.get("timezone"))
        assert spec["contentType"] == "application/json"
        assert PingTick.model_validate(json.loads(spec["data"])).job == name


def test_the_sinkbinding_gives_k_sink_to_exactly_the_publishing_functions(rendered) -> None:
    (binding,) = _kind(rendered, "SinkBinding")
    subject = binding["spec"]["subject"]
    assert (subject["apiVersion"], subject["kind"]) == ("apps/v1", "Deployment")
    assert subject["selector"] == {"matchLabels": {PUBLISHES: "true"}}
    assert binding["spec"]["sink"]["ref"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "default",
    }
    labelled = {
        o["metadata"]["name"]
        for o in _kind(rendered, "Service")
        if o["spec"]["template"]["metadata"]["labels"].get(PUBLISHES) == "true"
    }
    assert labelled == {spec.name for spec in FUNCTIONS if spec.publishes}


def test_functions_that_only_take_events_are_cluster_local() -> None:
    for spec in FUNCTIONS:
        if spec.events and not spec.routes:
            assert spec.visibility == "cluster-local", spec.name
