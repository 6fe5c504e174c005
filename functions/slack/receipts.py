"""Which Events API deliveries were already handed off: Slack retries with the same event_id.

A delivery is claimed by inserting its event_id; a retry (X-Slack-Retry-Num) or
any duplicate finds the row and does nothing. A hand-off that fails releases
its claim, so Slack's next retry can act.
"""

from __future__ import annotations

from functions.core.db import Connection, Database

# Slack gives up retrying after about five minutes; a day is ample.
RETENTION = "1 day"


def claim_event(db: Database, event_id: str) -> bool:
    """True for the first delivery of event_id, False for every later one."""

    def work(conn: Connection) -> bool:
        conn.execute(
            f"DELETE FROM slack_event_receipts WHERE received_at < now() - interval '{RETENTION}'"
        )
        row = conn.one(
            "INSERT INTO slack_event_receipts (event_id) VALUES (:id) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            id=event_id,
        )
        return row is not None

    return db.transaction(work)


def release_event(db: Database, event_id: str) -> None:
    db.transaction(
        lambda c: c.execute("DELETE FROM slack_event_receipts WHERE event_id = :id", id=event_id)
    )
