"""The transactional outbox: facts recorded with their change, published after commit.

A write records its fact in `outbox` inside its own transaction (`Outbox.add`),
so a committed change always has its event and a rolled-back one never does.
After COMMIT the function's publisher thread sends those rows to K_SINK
(publisher.py, through `publish_rows`); whatever that misses — no K_SINK, the
broker down, the process gone — the outbox-relay publishes later (`relay`). Both claim rows with
`SELECT … FOR UPDATE SKIP LOCKED` in a short transaction that also marks them
published, so no row is ever sent by two of them at the same moment.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import Context
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cloudevents.http import CloudEvent
from pydantic import BaseModel

from events.envelope import new_event
from functions.core import metrics, spans, telemetry
from functions.core.db import Connection, Database
from functions.core.publish import Unreachable, post_event
from functions.core.tracing import event_traceparent

log = logging.getLogger("todo_platform.outbox")

PUBLISH_TIMEOUT = 1.0  # seconds per event: a slow broker must not hold a function for long
BACKOFF_CAP = 300  # seconds: a failing row is retried at least every five minutes
RELAY_BATCH = 50
RELAY_BUDGET = 20.0  # seconds per relay run, well inside the function's 30 s timeout
_COLUMNS = "id, event_id, event_type, source, subject, data, traceparent, created_at"


@dataclass
class Outbox:
    """Where one request's writes record their facts; `written` is what to publish after commit."""

    source: str
    written: list[int] = field(default_factory=list)

    def add(self, conn: Connection, type_: str, subject: str, data: BaseModel) -> None:
        """Record a fact in conn's transaction, as a child of the current trace."""
        with self.recording(type_, subject) as fact:
            row = conn.one(
                "INSERT INTO outbox (event_id, event_type, source, subject, data, traceparent) "
                "VALUES (:fact_id, :fact_type, :fact_source, :subject, CAST(:data AS jsonb), "
                ":fact_traceparent) RETURNING id",
                subject=subject,
                data=data.model_dump_json(),
                **fact,
            )
        assert row is not None
        self.keep(row["id"])

    @contextmanager
    def recording(self, type_: str, subject: str | None = None) -> Iterator[dict[str, Any]]:
        """Parameters of `fact_cte`, a fact of `type_` written by the very statement that
        makes it true; run that statement inside this block (the event's `create` span,
        whose context the row's traceparent carries), then `keep` the row's id. A statement
        that writes no row leaves the span with no event."""
        event_id = str(uuid.uuid4())
        facts = {"id": event_id, "type": type_, "source": self.source, "subject": subject}
        with spans.event_create(facts):
            yield {
                "fact_id": event_id,
                "fact_type": type_,
                "fact_source": self.source,
                "fact_traceparent": event_traceparent(),
            }

    def keep(self, row_id: int) -> None:
        """Publish this outbox row after commit (one written by `fact_cte`)."""
        self.written.append(row_id)


def fact_cte(data: str) -> str:
    """A CTE `fact` recording one event about each row of the CTE `t` (a write's RETURNING),
    its data the SQL expression `data` over `t`; the parameters come from `Outbox.recording`.

    A write and its fact in one statement: one round trip fewer, and the event's todo is
    PostgreSQL's JSON of the row as written, where building it in Python cost a create a
    fifth of its time (docs/events.md)."""
    return (
        "fact AS (INSERT INTO outbox (event_id, event_type, source, subject, data, traceparent) "
        "SELECT :fact_id, :fact_type, :fact_source, CAST(t.id AS text), "
        f"{data}, :fact_traceparent FROM t RETURNING id)"
    )


@dataclass(frozen=True)
class Published:
    """What one publishing pass did."""

    sent: int = 0
    failed: int = 0
    last_error: str | None = None
    sink_down: bool = False

    def __add__(self, other: Published) -> Published:
        return Published(
            self.sent + other.sent,
            self.failed + other.failed,
            other.last_error or self.last_error,
            other.sink_down,
        )


def publish_rows(
    db: Database, sink: str, ids: list[int], contexts: Mapping[int, Context] | None = None
) -> Published:
    """Claim those of `ids` still unpublished and send them in one transaction; never raises.

    Runs after COMMIT, off the request (publisher.py): a failure here only leaves the
    rows for the relay. Each row's send runs in `contexts[id]` when given: the context
    of the request that wrote it, so its span joins that request's function and trace.
    """
    try:
        result = db.transaction(
            lambda conn: _send(
                conn,
                sink,
                conn.all(
                    f"SELECT {_COLUMNS} FROM outbox "
                    "WHERE id = ANY(CAST(:ids AS bigint[])) AND published_at IS NULL "
                    "ORDER BY id FOR UPDATE SKIP LOCKED",
                    ids=ids,
                ),
                contexts or {},
            )
        )
    except Exception as exc:
        log.warning("could not publish %d event(s) after commit: %s; the relay will", len(ids), exc)
        return Published(failed=len(ids), last_error=str(exc))
    if result.failed:
        log.warning(
            "could not publish %d event(s) to K_SINK: %s; the relay will retry",
            result.failed,
            result.last_error,
        )
    return result


def relay(
    db: Database, sink: str, *, batch: int = RELAY_BATCH, budget: float = RELAY_BUDGET
) -> Published:
    """Publish every due unpublished row, oldest first, in batches no one else holds.

    Stops when nothing is due, when the sink is unreachable (the rest waits for the
    next run), or when the time budget is spent.
    """
    deadline = time.monotonic() + budget
    total = Published()
    while True:
        result, claimed = db.transaction(lambda conn: _send_due(conn, sink, batch))
        total += result
        if result.sink_down or claimed < batch or time.monotonic() > deadline:
            return total


def measure_backlog(db: Database) -> tuple[int, float]:
    """(unpublished rows, age in seconds of the oldest), recorded as the outbox gauges."""
    row = db.read(
        lambda conn: conn.one(
            "SELECT count(*) AS backlog, "
            "coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS lag "
            "FROM outbox WHERE published_at IS NULL"
        )
    )
    assert row is not None
    backlog, lag = int(row["backlog"]), float(row["lag"])
    metrics.OUTBOX_BACKLOG.record(backlog)
    metrics.OUTBOX_LAG.record(lag)
    return backlog, lag


def _send_due(conn: Connection, sink: str, batch: int) -> tuple[Published, int]:
    """Claim up to `batch` due rows that no one else holds, oldest first, and send them."""
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM outbox "
        "WHERE published_at IS NULL AND next_attempt_at <= now() "
        "ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED",
        batch=batch,
    )
    return _send(conn, sink, rows), len(rows)


def _send(
    conn: Connection, sink: str, rows: list[dict[str, Any]], contexts: Mapping[int, Context] = {}
) -> Published:
    """Send claimed rows one by one, in conn's transaction: the sent marked published in
    one statement at the end, each failure backed off by its own."""
    sent: list[int] = []
    failed = 0
    last_error: str | None = None
    sink_down = False
    for row in rows:
        context = contexts.get(row["id"])
        error, sink_down = context.run(_send_one, sink, row) if context else _send_one(sink, row)
        if error is None:
            sent.append(row["id"])
            continue
        # Exponential backoff per row from its own attempts (the old value, before + 1).
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = :error, "
            "next_attempt_at = now() + make_interval(secs => "
            "least(:cap, power(2, least(attempts, 20)))) WHERE id = :id",
            error=error[:500],
            cap=BACKOFF_CAP,
            id=row["id"],
        )
        failed += 1
        last_error = error
        if sink_down:
            break  # every other row would fail the same way; they wait, unclaimed
    if sent:
        conn.execute(
            "UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL "
            "WHERE id = ANY(CAST(:ids AS bigint[]))",
            ids=sent,
        )
    return Published(len(sent), failed, last_error, sink_down)


def _send_one(sink: str, row: dict[str, Any]) -> tuple[str | None, bool]:
    """POST one row's event: (None, False) when accepted, else (what went wrong, sink down)."""
    event = _event_of(row)
    with spans.event_send(event.get_attributes(), urlsplit(sink).hostname or sink) as span:
        headers: dict[str, str] = {}
        telemetry.inject(headers)  # the broker's own spans join the send's trace
        try:
            answer = post_event(sink, event, timeout=PUBLISH_TIMEOUT, headers=headers)
        except Unreachable as exc:
            span.fail("unreachable")
            return f"unreachable: {exc}", True
        span.set(spans.STATUS, answer.status)
        if answer.accepted:
            return None, False
        span.fail(str(answer.status))
        return f"HTTP {answer.status}: {answer.body[:200]!r}", False


def _event_of(row: dict[str, Any]) -> CloudEvent:
    return new_event(
        row["event_type"],
        row["source"],
        row["data"],
        subject=row["subject"],
        traceparent=row["traceparent"],
        id_=row["event_id"],
        time=row["created_at"],
    )
