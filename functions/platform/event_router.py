"""The local event router: the Broker, Triggers and PingSources of `knative/`, run by `up`.

It reads the Triggers (attribute filters, subscriber, delivery), the Broker's
default delivery and the PingSources straight from the YAML files under
`knative/base/eventing/` — a laptop has no kubectl, and the manifests stay the
single source of truth for routing: nothing here names a route. Like Knative's
broker it accepts any CloudEvent at its ingress (`POST /broker`, answered `202`),
delivers it in binary mode to every matching Trigger's subscriber, retries what
fails with the Trigger's backoff (5xx, 404, 408, 409, 429 and connection errors;
any other 4xx is final), sends what still fails to the dead-letter sink with the
`knativeerror*` extensions, and fires the PingSource schedules. `GET
/broker/deliveries` shows the recent deliveries, dead letters and the table. A
Trigger whose subscriber is off here (slack-notify without SLACK_BOT_TOKEN) has
nothing to deliver to: its events are recorded as skipped, with the reason.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent

from events.envelope import MAX_EVENT_BYTES, InvalidEvent, parse
from events.types import KNATIVE_PING
from functions.core.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
)
from functions.core.http import PROBLEM_JSON
from functions.core.publish import Answer, Unreachable, post_event
from functions.platform.cron import Schedule, parse_schedule

log = logging.getLogger("todo_platform.event_router")

EVENTING_DIR = Path(__file__).resolve().parents[2] / "knative" / "base" / "eventing"
NAMESPACE = "todo-platform"  # knative/base/kustomization.yaml puts everything there
RETRIED_STATUSES = frozenset({404, 408, 409, 429})
DELIVERY_TIMEOUT = 30.0  # seconds; a function's own timeoutSeconds
ERROR_DATA_BYTES = 1024  # Knative keeps this much of a failed answer in knativeerrordata
_ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


class ManifestError(ValueError):
    """A Trigger, Broker or PingSource the router cannot follow; the message names it."""


def iso_seconds(duration: str) -> float:
    """An ISO 8601 duration as Knative's delivery takes it (PT0.5S, PT2M, P1D) in seconds."""
    match = _ISO_DURATION.match(duration.strip())
    if match is None or duration.strip() in ("P", "PT"):
        raise ManifestError(f"{duration!r} is not an ISO 8601 duration such as PT0.5S")
    return sum(float(v) * _SECONDS[k] for k, v in match.groupdict().items() if v)


@dataclass(frozen=True)
class Destination:
    """Where events go: a Knative Service of the namespace (`ref`), a URI, or both (a path)."""

    service: str | None = None
    uri: str | None = None

    def url(self, address: Callable[[str], str]) -> str:
        if self.service is None:
            assert self.uri is not None
            return self.uri
        base = address(self.service)
        return base.rstrip("/") + "/" + self.uri.lstrip("/") if self.uri else base

    def __str__(self) -> str:
        return f"Service/{self.service}" if self.service else str(self.uri)


@dataclass(frozen=True)
class Delivery:
    """A `delivery` spec: retries, their backoff and the dead-letter sink."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.0
    dead_letter_sink: Destination | None = None
    timeout: float = DELIVERY_TIMEOUT

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before the n-th retry (n ≥ 1), as Knative's dispatcher computes it."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * retry
        return self.backoff_delay * 2 ** (retry - 1)


@dataclass(frozen=True)
class Trigger:
    """A subscription: events whose attributes equal every filter go to the subscriber."""

    name: str
    broker: str
    filters: tuple[tuple[str, str], ...]
    subscriber: Destination
    delivery: Delivery

    def matches(self, event: CloudEvent) -> bool:
        return all(event.get(name) == value for name, value in self.filters)


@dataclass(frozen=True)
class PingSource:
    """A schedule that sends `dev.knative.sources.ping` with its data to its sink."""

    name: str
    schedule: str
    timezone: str | None
    data: str | None
    content_type: str | None
    sink: Destination

    @property
    def parsed(self) -> Schedule:
        return parse_schedule(self.schedule, self.timezone)

    def event(self) -> CloudEvent:
        attributes = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/apis/v1/namespaces/{NAMESPACE}/pingsources/{self.name}",
            "type": KNATIVE_PING,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        data: Any = None
        if self.data is not None:
            attributes["datacontenttype"] = self.content_type or "text/plain"
            data = self.data.encode()
            if (self.content_type or "").startswith("application/json"):
                data = json.loads(self.data)
        return CloudEvent(attributes, data)


@dataclass(frozen=True)
class RoutingTable:
    """Everything the router follows, as the manifests say it."""

    triggers: tuple[Trigger, ...] = ()
    ping_sources: tuple[PingSource, ...] = ()


def load_routing_table(directory: Path = EVENTING_DIR) -> RoutingTable:
    """The Triggers and PingSources of every YAML file in directory (PyYAML, no kubectl)."""
    import yaml  # the local runtime only; functions never load it

    objects: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return routing_table(objects)


def routing_table(objects: Iterable[dict[str, Any]]) -> RoutingTable:
    """The routing table of a list of manifests (Brokers, Triggers, PingSources; rest ignored)."""
    objects = list(objects)
    broker_delivery = {
        _name(o): _delivery(o.get("spec", {}).get("delivery"), f"Broker/{_name(o)}")
        for o in objects
        if o.get("kind") == "Broker"
    }
    triggers = []
    for obj in (o for o in objects if o.get("kind") == "Trigger"):
        where = f"Trigger/{_name(obj)}"
        spec = obj.get("spec") or {}
        if spec.get("filters"):
            raise ManifestError(f"{where}: the local router supports `filter`, not `filters`")
        broker = spec.get("broker") or (spec.get("brokerRef") or {}).get("name", "default")
        if broker not in broker_delivery:
            raise ManifestError(f"{where}: no Broker {broker!r} in the manifests")
        delivery = spec.get("delivery")
        triggers.append(
            Trigger(
                name=_name(obj),
                broker=broker,
                filters=tuple(sorted(((spec.get("filter") or {}).get("attributes") or {}).items())),
                subscriber=_destination(spec.get("subscriber"), f"{where} subscriber"),
                delivery=_delivery(delivery, where) if delivery else broker_delivery[broker],
            )
        )
    ping_sources = []
    for obj in (o for o in objects if o.get("kind") == "PingSource"):
        where = f"PingSource/{_name(obj)}"
        spec = obj.get("spec") or {}
        source = PingSource(
            name=_name(obj),
            schedule=str(spec.get("schedule", "* * * * *")),
            timezone=spec.get("timezone"),
            data=spec.get("data"),
            content_type=spec.get("contentType"),
            sink=_destination(spec.get("sink"), f"{where} sink"),
        )
        try:
            source.parsed  # noqa: B018 — refuse a bad schedule when loading, not at 3 a.m.
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
        ping_sources.append(source)
    return RoutingTable(tuple(triggers), tuple(ping_sources))


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", "<unnamed>"))


def _destination(spec: dict[str, Any] | None, where: str) -> Destination:
    spec = spec or {}
    ref, uri = spec.get("ref"), spec.get("uri")
    if ref is not None and (ref.get("kind"), ref.get("apiVersion")) != (
        "Service",
        "serving.knative.dev/v1",
    ):
        raise ManifestError(f"{where}: locally only Knative Services can be addressed")
    if ref is None and uri is None:
        raise ManifestError(f"{where}: needs a ref or a uri")
    return Destination(ref.get("name") if ref else None, uri)


def _delivery(spec: dict[str, Any] | None, where: str) -> Delivery:
    spec = spec or {}
    try:
        policy = spec.get("backoffPolicy", "exponential")
        if policy not in ("exponential", "linear"):
            raise ManifestError(f"backoffPolicy must be exponential or linear, got {policy!r}")
        sink = spec.get("deadLetterSink")
        return Delivery(
            retry=int(spec.get("retry", 0)),
            backoff_policy=policy,
            backoff_delay=iso_seconds(spec["backoffDelay"]) if "backoffDelay" in spec else 0.0,
            dead_letter_sink=_destination(sink, f"{where} deadLetterSink") if sink else None,
            timeout=iso_seconds(spec["timeout"]) if "timeout" in spec else DELIVERY_TIMEOUT,
        )
    except ManifestError as exc:
        raise ManifestError(f"{where}: {exc}") from None


@dataclass
class _Job:
    """One event on its way to one destination, with its attempts so far."""

    event: CloudEvent
    url: str
    delivery: Delivery
    record: dict[str, Any]
    on_give_up: Callable[[_Job, int | None, bytes], None] | None = None
    attempts: int = 0


class _Scheduler:
    """Runs callables at given monotonic times on a pool: retries' backoff and ping ticks."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopped = False
        threading.Thread(target=self._run, name="event-router-timer", daemon=True).start()

    def at(self, when: float, work: Callable[[], None]) -> None:
        with self._changed:
            heapq.heappush(self._heap, (when, next(self._order), work))
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                if not self._heap:
                    self._changed.wait()
                    continue
                when, _, work = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._changed.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._pool.submit(work)


class EventRouter:
    """The broker of `todo-platform up`: ingress, Trigger deliveries, dead letters, PingSources.

    `address(service)` is the URL a Knative Service of the namespace has locally; `off`
    names the services that are not running here (a function whose settings are unset)
    and why: their Triggers' events are recorded as skipped, neither retried nor
    dead-lettered, as no subscriber exists for them.
    """

    def __init__(
        self,
        table: RoutingTable,
        address: Callable[[str], str],
        *,
        off: Mapping[str, str] | None = None,
        history: int = 200,
        workers: int = 8,
    ) -> None:
        self.table = table
        self.address = address
        self.off = dict(off or {})
        self._extra: list[Trigger] = []
        self._lock = threading.Lock()
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=history)
        self._dead_letters: deque[dict[str, Any]] = deque(maxlen=history)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="event-router")
        self._scheduler = _Scheduler(self._pool)
        self._started = False

    @classmethod
    def from_manifests(
        cls,
        address: Callable[[str], str],
        directory: Path = EVENTING_DIR,
        *,
        off: Mapping[str, str] | None = None,
    ) -> EventRouter:
        return cls(load_routing_table(directory), address, off=off)

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        return (*self.table.triggers, *self._extra)

    def add_trigger(self, trigger: Trigger) -> None:
        """Subscribe one more destination, beside the manifests' Triggers (tests, debugging)."""
        with self._lock:
            self._extra.append(trigger)

    def start(self) -> None:
        """Fire the PingSources on their schedules from now on."""
        if self._started:
            return
        self._started = True
        now = datetime.now(UTC)
        for source in self.table.ping_sources:
            self._schedule_ping(source, now)

    def stop(self) -> None:
        self._scheduler.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def publish(self, event: CloudEvent) -> int:
        """Accept an event, as the broker ingress does; returns how many Triggers match."""
        event["knativearrivaltime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        matching = [t for t in self.triggers if t.matches(event)]
        if not matching:
            self._remember(event, None, "no matching trigger", "dropped")
        for trigger in matching:
            reason = self.off.get(trigger.subscriber.service or "")
            if reason is not None:
                record = self._remember(event, trigger.name, str(trigger.subscriber), "skipped")
                self._update(record, error=reason)
                continue
            record = self._remember(event, trigger.name, str(trigger.subscriber), "pending")
            job = _Job(
                event,
                trigger.subscriber.url(self.address),
                trigger.delivery,
                record,
                on_give_up=self._dead_letter,
            )
            self._pool.submit(self._attempt, job)
        return len(matching)

    def fire(self, source: PingSource) -> None:
        """Send one tick of the PingSource now (one attempt: the next tick covers a miss)."""
        event = source.event()
        record = self._remember(event, f"PingSource/{source.name}", str(source.sink), "pending")
        job = _Job(event, source.sink.url(self.address), Delivery(), record)
        self._pool.submit(self._attempt, job)

    def _schedule_ping(self, source: PingSource, after: datetime) -> None:
        at = source.parsed.next_after(after)

        def tick() -> None:
            self._schedule_ping(source, at)
            self.fire(source)

        self._scheduler.at(time.monotonic() + (at - datetime.now(UTC)).total_seconds(), tick)

    def _attempt(self, job: _Job) -> None:
        job.attempts += 1
        status: int | None = None
        body = b""
        try:
            answer = post_event(job.url, job.event, timeout=job.delivery.timeout)
            status, body = answer.status, answer.body
            error = None if answer.accepted else f"HTTP {status}"
        except Unreachable as exc:
            error = str(exc)
        except Exception as exc:  # a router bug must not kill the pool thread silently
            log.exception("delivery to %s failed", job.url)
            error = f"{type(exc).__name__}: {exc}"
        retryable = status is None or status in RETRIED_STATUSES or status >= 500
        self._update(job.record, attempts=job.attempts, status=status, error=error)
        if error is None:
            self._update(job.record, outcome="delivered")
        elif retryable and job.attempts <= job.delivery.retry:
            self._update(job.record, outcome="retrying")
            delay = job.delivery.delay_before(job.attempts)
            self._scheduler.at(time.monotonic() + delay, lambda: self._attempt(job))
        else:
            self._update(job.record, outcome="failed")
            if job.on_give_up is not None:
                job.on_give_up(job, status, body)

    def _dead_letter(self, job: _Job, status: int | None, body: bytes) -> None:
        """Hand an event that could not be delivered to the dead-letter sink, as Knative does."""
        sink = job.delivery.dead_letter_sink
        letter: dict[str, Any] = {
            "time": _now(),
            "event_id": job.event["id"],
            "type": job.event["type"],
            "source": job.event["source"],
            "trigger": job.record["trigger"],
            "subscriber": job.url,
            "status": status,
            "error": job.record["error"],
            "dead_letter_sink": str(sink) if sink else None,
        }
        with self._lock:
            self._dead_letters.append(letter)
        if sink is None:
            log.warning("event %s to %s failed; no dead-letter sink", job.event["id"], job.url)
            return
        event = CloudEvent(dict(job.event.get_attributes()), job.event.get_data())
        event["knativeerrordest"] = job.url
        if status is not None:
            event["knativeerrorcode"] = str(status)
        if body:
            event["knativeerrordata"] = base64.b64encode(body[:ERROR_DATA_BYTES]).decode()
        # The sink gets the Trigger's retries too, but never a dead-letter sink of its own.
        delivery = replace(job.delivery, dead_letter_sink=None)
        sent = {"attempts": 0, "status": None, "error": None, "outcome": "pending"}
        self._update(letter, delivery_to_sink=sent)
        self._pool.submit(self._attempt, _Job(event, sink.url(self.address), delivery, sent))

    def _remember(
        self, event: CloudEvent, trigger: str | None, subscriber: str, outcome: str
    ) -> dict[str, Any]:
        record = {
            "time": _now(),
            "event_id": event["id"],
            "type": event["type"],
            "source": event["source"],
            "subject": event.get("subject"),
            "trigger": trigger,
            "subscriber": subscriber,
            "attempts": 0,
            "status": None,
            "error": None,
            "outcome": outcome,
        }
        with self._lock:
            self._deliveries.append(record)
        return record

    def _update(self, record: dict[str, Any], **changes: Any) -> None:
        with self._lock:
            record.update(changes)

    def report(self) -> dict[str, Any]:
        """Recent deliveries and dead letters (newest first) and the routing table."""
        with self._lock:
            deliveries = [dict(r) for r in reversed(self._deliveries)]
            dead = [dict(r) for r in reversed(self._dead_letters)]
        return {
            "deliveries": deliveries,
            "dead_letters": dead,
            "triggers": [_described(asdict(t)) for t in self.triggers],
            "ping_sources": [_described(asdict(p)) for p in self.table.ping_sources],
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The WSGI side of `handle` (the gateway's `/broker…`)."""
        from werkzeug import Request

        request = Request(environ)

        def body() -> bytes:
            if (request.content_length or 0) > MAX_EVENT_BYTES:
                return b"\0" * (MAX_EVENT_BYTES + 1)  # refused by size without reading it
            return request.stream.read(MAX_EVENT_BYTES + 1)

        status, headers, payload = self.handle(request.method, request.path, request.headers, body)
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [payload]

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: Callable[[], bytes]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The broker's HTTP API, whichever server carries it: `POST /broker` (the ingress)
        and `GET /broker/deliveries`; (status, headers, body). `body()` reads the request's
        body, at most MAX_EVENT_BYTES + 1 of it."""
        route = path.split("?", 1)[0].rstrip("/")
        allowed = {"/broker": "POST", "/broker/deliveries": "GET"}.get(route)
        error: ProblemError
        if allowed is None:
            error = NotFound(f"no route for {path}")
        elif method != allowed:
            error = MethodNotAllowed(f"{method} is not allowed here", headers={"Allow": allowed})
        elif allowed == "GET":
            report = json.dumps(self.report(), indent=2).encode()
            return 200, [("Content-Type", "application/json")], report
        else:
            answer = self.receive(headers, body(), path)
            kind = [("Content-Type", PROBLEM_JSON)] if answer.body else []
            return answer.status, kind, answer.body
        return (
            error.status,
            [("Content-Type", PROBLEM_JSON), *error.headers.items()],
            error.body(path),
        )

    def receive(self, headers: Mapping[str, str], body: bytes, path: str = "/broker") -> Answer:
        """The ingress itself: 202 for a CloudEvent (then routed), else a 400/413 problem."""
        try:
            received = parse(headers, body, None)
        except InvalidEvent as exc:
            log.warning("broker ingress refused an event: %s", exc.reason)
            error = PayloadTooLarge(exc.reason) if exc.too_large else BadRequest(exc.reason)
            return Answer(error.status, error.body(path))
        self.publish(received.event)
        return Answer(202, b"")


def _described(value: Any) -> Any:
    """A routing-table entry as JSON: Destinations as their short description."""
    if isinstance(value, dict):
        if set(value) == {"service", "uri"}:
            return str(Destination(**value))
        return {k: _described(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_described(v) for v in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
