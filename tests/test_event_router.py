"""The local event router does what knative/ says: routes, retries, dead letters, schedules."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from events import types
from events.envelope import encode
from functions.core.db import Database
from functions.platform.event_router import (
    Delivery,
    Destination,
    EventRouter,
    ManifestError,
    PingSource,
    RoutingTable,
    Trigger,
    iso_seconds,
    load_routing_table,
    routing_table,
)
from tests.eventing import Broker, Subscriber, command, eventually, post, todos_of
from tests.knative_manifests import REPO_ROOT, render
from tests.servers import FunctionServer

PROBE = "io.example.probe.v1"
FAST = Delivery(retry=3, backoff_policy="exponential", backoff_delay=0.02)


# The routing table is the manifests', parsed twice: by the router from the YAML files,
# and here, independently, from what `kubectl kustomize knative/base` renders.


def _rendered_triggers() -> set[tuple[Any, ...]]:
    objects = render(REPO_ROOT / "knative" / "base")
    brokers = {
        o["metadata"]["name"]: o["spec"].get("delivery", {})
        for o in objects
        if o["kind"] == "Broker"
    }
    table = set()
    for trigger in (o for o in objects if o["kind"] == "Trigger"):
        spec = trigger["spec"]
        delivery = spec.get("delivery") or brokers[spec["broker"]]
        seconds = float(delivery["backoffDelay"].removeprefix("PT").removesuffix("S"))
        sink = delivery.get("deadLetterSink", {}).get("ref", {}).get("name")
        table.add(
            (
                trigger["metadata"]["name"],
                tuple(sorted(spec["filter"]["attributes"].items())),
                spec["subscriber"]["ref"]["name"],
                delivery["retry"],
                delivery["backoffPolicy"],
                seconds,
                sink,
            )
        )
    return table


def test_the_routing_table_is_what_the_knative_triggers_say() -> None:
    table = load_routing_table()
    ours = {
        (
            t.name,
            t.filters,
            t.subscriber.service,
            t.delivery.retry,
            t.delivery.backoff_policy,
            t.delivery.backoff_delay,
            t.delivery.dead_letter_sink.service if t.delivery.dead_letter_sink else None,
        )
        for t in table.triggers
    }
    assert len(ours) == len(table.triggers)
    assert ours == _rendered_triggers()
    assert {f[1] for t in ours for f in t[1]} >= set(types.COMMANDS)


def test_the_ping_sources_are_what_the_manifests_say() -> None:
    objects = render(REPO_ROOT / "knative" / "base")
    rendered = {
        (
            o["metadata"]["name"],
            o["spec"]["schedule"],
            o["spec"]["data"],
            o["spec"]["sink"]["ref"]["name"],
        )
        for o in objects
        if o["kind"] == "PingSource"
    }
    ours = {(p.name, p.schedule, p.data, p.sink.service) for p in load_routing_table().ping_sources}
    assert ours == rendered and rendered


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("PT0.5S", 0.5),
        ("PT2S", 2),
        ("PT1M30S", 90),
        ("PT1H", 3600),
        ("P1D", 86400),
        ("P1W", 604800),
    ],
)
def test_iso_8601_durations(duration: str, seconds: float) -> None:
    assert iso_seconds(duration) == seconds


@pytest.mark.parametrize("bad", ["0.5s", "PT", "P", "P1Y", "PT-1S", "1"])
def test_a_duration_that_is_not_iso_8601_is_refused(bad: str) -> None:
    with pytest.raises(ManifestError):
        iso_seconds(bad)


def test_backoff_follows_knatives_formula() -> None:
    exponential = Delivery(retry=5, backoff_policy="exponential", backoff_delay=0.5)
    assert [exponential.delay_before(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 8]
    linear = Delivery(retry=3, backoff_policy="linear", backoff_delay=0.5)
    assert [linear.delay_before(n) for n in range(1, 4)] == [0.5, 1.0, 1.5]


def _trigger(**changes: Any) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": {"name": "t"},
        "spec": {
            "broker": "default",
            "filter": {"attributes": {"type": PROBE}},
            "subscriber": {
                "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "s"}
            },
        },
    }
    trigger["spec"].update(changes)
    return trigger


BROKER = {
    "kind": "Broker",
    "metadata": {"name": "default"},
    "spec": {"delivery": {"retry": 2, "backoffDelay": "PT1S"}},
}


def test_a_trigger_without_delivery_takes_the_brokers() -> None:
    (trigger,) = routing_table([BROKER, _trigger()]).triggers
    assert (trigger.delivery.retry, trigger.delivery.backoff_delay) == (2, 1.0)


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([_trigger()], "no Broker 'default'"),
        (
            [BROKER, _trigger(filters=[{"exact": {"type": PROBE}}])],
            "supports `filter`, not `filters`",
        ),
        ([BROKER, _trigger(delivery={"backoffDelay": "soon"})], "not an ISO 8601 duration"),
        ([BROKER, _trigger(delivery={"backoffPolicy": "random"})], "backoffPolicy must be"),
        ([BROKER, _trigger(subscriber={})], "needs a ref or a uri"),
        (
            [
                {
                    "kind": "PingSource",
                    "metadata": {"name": "p"},
                    "spec": {"schedule": "61 * * * *", "sink": {"uri": "http://x"}},
                }
            ],
            "PingSource/p: minute '61'",
        ),
    ],
)
def test_a_manifest_the_router_cannot_follow_is_refused_by_name(
    objects: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        routing_table(objects)


def test_filters_match_attributes_exactly() -> None:
    trigger = Trigger(
        "t", "default", (("type", PROBE), ("source", "/a")), Destination(uri="http://x"), Delivery()
    )
    assert trigger.matches(command(PROBE, {}, source="/a"))
    assert not trigger.matches(command(PROBE, {}, source="/b"))
    assert not trigger.matches(command(PROBE + "x", {}, source="/a"))
    assert Trigger("all", "default", (), Destination(uri="http://x"), Delivery()).matches(
        command(PROBE, {})
    )


@pytest.fixture
def router(event_servers: dict[str, FunctionServer], broker_port: int) -> Iterator[EventRouter]:
    """The router of knative/, delivering to the functions, its ingress on the broker port."""
    router = EventRouter(load_routing_table(), lambda name: event_servers[name].url + "/")
    with Broker(router, broker_port):
        yield router
    router.stop()


def _ingress(broker_port: int) -> str:
    return f"http://127.0.0.1:{broker_port}/broker"


def _records(router: EventRouter, event_id: str) -> list[dict[str, Any]]:
    return [d for d in router.report()["deliveries"] if d["event_id"] == event_id]


def _finished(router: EventRouter, event_id: str) -> list[dict[str, Any]]:
    records = _records(router, event_id)
    return (
        records
        if records
        and all(r["outcome"] in ("delivered", "failed", "dropped", "skipped") for r in records)
        else []
    )


def test_a_subscriber_that_fails_twice_then_succeeds_gets_the_event(
    router: EventRouter, broker_port: int
) -> None:
    with Subscriber(fail_first=2) as subscriber:
        router.add_trigger(
            Trigger("flaky", "default", (("type", PROBE),), Destination(uri=subscriber.url), FAST)
        )
        event = command(PROBE, {"n": 1})
        assert post(_ingress(broker_port), event).status_code == 202
        (record,) = eventually(lambda: _finished(router, event["id"]))
    assert (record["outcome"], record["attempts"], record["status"]) == ("delivered", 3, 202)
    assert subscriber.attempts == {event["id"]: 3}
    (got,) = subscriber.received
    assert (got["id"], got["source"], got.get_data()) == (event["id"], event["source"], {"n": 1})


def test_a_subscriber_that_always_fails_puts_the_event_in_the_dead_letters(
    router: EventRouter, broker_port: int, events_db: Database
) -> None:
    with Subscriber(always_fail=True, fail_status=503) as subscriber:
        delivery = Delivery(
            retry=2, backoff_delay=0.02, dead_letter_sink=Destination(service="dead-letters")
        )
        router.add_trigger(
            Trigger(
                "doomed", "default", (("type", PROBE),), Destination(uri=subscriber.url), delivery
            )
        )
        event = command(PROBE, {"n": 2}, source="/tests/doomed")
        assert post(_ingress(broker_port), event, "structured").status_code == 202

        def stored() -> list[dict[str, Any]]:
            return events_db.read(
                lambda c: c.all("SELECT * FROM dead_letters WHERE event_id = :id", id=event["id"])
            )

        (row,) = eventually(stored)
    assert subscriber.attempts == {event["id"]: 3}  # the first try and two retries
    assert (row["source"], row["type"], json.loads(row["data"])) == (
        "/tests/doomed",
        PROBE,
        {"n": 2},
    )
    assert (row["error_dest"], row["error_code"]) == (subscriber.url, "503")
    assert base64.b64decode(row["error_data"]) == b"not now"
    (letter,) = [d for d in router.report()["dead_letters"] if d["event_id"] == event["id"]]
    assert letter["status"] == 503 and letter["dead_letter_sink"] == "Service/dead-letters"
    eventually(lambda: letter_outcome(router, event["id"]) == "delivered")


def letter_outcome(router: EventRouter, event_id: str) -> str | None:
    (letter,) = [d for d in router.report()["dead_letters"] if d["event_id"] == event_id]
    return (letter.get("delivery_to_sink") or {}).get("outcome")


def test_a_final_4xx_is_not_retried(router: EventRouter, broker_port: int) -> None:
    with Subscriber(always_fail=True, fail_status=400) as subscriber:
        router.add_trigger(
            Trigger("picky", "default", (("type", PROBE),), Destination(uri=subscriber.url), FAST)
        )
        event = command(PROBE, {})
        post(_ingress(broker_port), event)
        (record,) = eventually(lambda: _finished(router, event["id"]))
    assert (record["outcome"], record["attempts"], record["status"]) == ("failed", 1, 400)
    (letter,) = [d for d in router.report()["dead_letters"] if d["event_id"] == event["id"]]
    assert letter["dead_letter_sink"] is None  # this test Trigger has none: the event is dropped


def test_a_trigger_whose_subscriber_is_off_skips_the_event_without_sending_or_dead_letters(
    broker_port: int,
) -> None:
    reason = "quiet is off: set QUIET_TOKEN"
    dead = Delivery(retry=2, backoff_delay=0.02, dead_letter_sink=Destination(service="sink"))
    with Subscriber() as quiet, Subscriber() as live, Subscriber() as sink:
        urls = {"quiet": quiet.url, "live": live.url, "sink": sink.url}
        router = EventRouter(RoutingTable(), urls.__getitem__, off={"quiet": reason})
        router.add_trigger(
            Trigger("to-quiet", "default", (("type", PROBE),), Destination("quiet"), dead)
        )
        router.add_trigger(
            Trigger("to-live", "default", (("type", PROBE),), Destination("live"), dead)
        )
        with Broker(router, broker_port):
            event = command(PROBE, {"n": 3})
            assert post(_ingress(broker_port), event).status_code == 202
            records = eventually(lambda: _finished(router, event["id"]))
            time.sleep(0.2)  # a retry or a dead letter, were one sent, would be on its way
        router.stop()
    outcomes = {r["trigger"]: (r["outcome"], r["attempts"], r["error"]) for r in records}
    assert outcomes == {"to-quiet": ("skipped", 0, reason), "to-live": ("delivered", 1, None)}
    assert (quiet.received, sink.received, [e["id"] for e in live.received]) == (
        [],
        [],
        [event["id"]],
    )
    assert router.report()["dead_letters"] == []


def test_a_command_published_to_the_broker_reaches_its_function_as_the_trigger_says(
    router: EventRouter, broker_port: int, events_db: Database
) -> None:
    owner = f"routed-{time.monotonic_ns()}"
    event = command(types.TODO_CREATE, {"owner": owner, "title": "via the broker"})
    assert post(_ingress(broker_port), event).status_code == 202
    (todo,) = eventually(lambda: todos_of(events_db, owner))
    (record,) = eventually(lambda: _finished(router, event["id"]))
    assert (record["trigger"], record["subscriber"], record["status"]) == (
        "todo-create-commands",
        "Service/todo-create",
        202,
    )

    # The function published its fact back to its K_SINK, this router: no Trigger takes it.
    def fact() -> list[dict[str, Any]]:
        return [
            d
            for d in router.report()["deliveries"]
            if d["type"] == types.TODO_CREATED and d["subject"] == todo["id"]
        ]

    (published,) = eventually(fact)
    assert published["outcome"] == "dropped"


def test_the_ingress_takes_both_modes_and_refuses_bad_events(
    router: EventRouter, broker_port: int
) -> None:
    for mode in ("binary", "structured"):
        answer = post(_ingress(broker_port), command(PROBE, {"ok": True}), mode)  # type: ignore[arg-type]
        assert (answer.status_code, answer.content) == (202, b"")
    refused = requests.post(_ingress(broker_port), json={"not": "an event"}, timeout=10)
    assert refused.status_code == 400
    assert "not a CloudEvent" in refused.json()["detail"]
    headers, _ = encode(command(PROBE, {}), "binary")
    too_large = requests.post(
        _ingress(broker_port), data=b"x" * 70_000, headers=headers, timeout=10
    )
    assert too_large.status_code == 413
    assert requests.get(_ingress(broker_port), timeout=10).status_code == 405
    report = requests.get(_ingress(broker_port) + "/deliveries", timeout=10).json()
    assert {t["name"] for t in report["triggers"]} >= {"todo-create-commands"}


def test_a_ping_source_fires_on_its_schedule() -> None:
    with Subscriber() as subscriber:
        source = PingSource(
            "probe",
            "@every 0.2s",
            None,
            '{"job": "probe"}',
            "application/json",
            Destination(uri=subscriber.url),
        )
        router = EventRouter(RoutingTable(ping_sources=(source,)), lambda name: "")
        router.start()
        try:
            ticks = eventually(lambda: subscriber.of_type(types.KNATIVE_PING)[1:])
        finally:
            router.stop()
    tick = ticks[0]
    assert tick["source"] == "/apis/v1/namespaces/todo-platform/pingsources/probe"
    assert tick.get_data() == {"job": "probe"}


def test_the_manifests_ping_sources_reach_their_functions(
    router: EventRouter, event_servers: dict[str, FunctionServer]
) -> None:
    for source in load_routing_table().ping_sources:
        router.fire(source)
    for source in load_routing_table().ping_sources:

        def done(name: str = source.name) -> list[dict[str, Any]]:
            return [
                d
                for d in router.report()["deliveries"]
                if d["trigger"] == f"PingSource/{name}" and d["outcome"] != "pending"
            ]

        (record,) = eventually(done)
        assert (record["outcome"], record["status"]) == ("delivered", 202), record
