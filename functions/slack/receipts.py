"""Which Events API deliveries were already handed off: Slack retries with the same event_id.

A delivery is claimed by inserting its event_id in the transaction that records
its hand-off; a retry (X-Slack-Retry-Num) or any duplicate finds the row and
does nothing. A concurrent duplicate waits on the key until the first commits.
Slash commands handed to the agent are claimed the same way, as `command:<trigger_id>`.
"""

from __future__ import annotations

from functions.core.db import Connection

# Slack gives up retrying after about five minutes; a day is ample.
RETENTION = "1 day"


def claim_event(conn: Connection, event_id: str) -> bool:
    """True for the first delivery of event_id, False for every later one."""
    conn.execute(
        f"DELETE FROM slack_event_receipts WHERE received_at < now() - interval '{RETENTION}'"
    )
    row = conn.one(
        "INSERT INTO slack_event_receipts (event_id) VALUES (:id) "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        id=event_id,
    )
    return row is not None
