"""Slack request signing: proves a request came from Slack, unchanged and recently.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with the app's signing
secret (HMAC-SHA256) and sends `v0=<hex>` as X-Slack-Signature. The check runs
over the raw bytes before anything parses them, compares in constant time, and
refuses timestamps more than five minutes away from now, so a captured request
cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from functions.core.errors import Unauthorized

VERSION = "v0"
REPLAY_WINDOW_SECONDS = 5 * 60
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Slack-Signature value for body sent at timestamp (what Slack computes)."""
    base = f"{VERSION}:{timestamp}:".encode() + body
    return f"{VERSION}=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _refused(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers={"WWW-Authenticate": 'Slack-Signature realm="slack"'})


def verify_slack_signature(
    secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> None:
    """Raise Unauthorized (401) unless body carries a valid, fresh Slack signature."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not signature:
        raise _refused(f"send {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise _refused(f"{TIMESTAMP_HEADER} must be Unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise _refused("the request is older than five minutes (or from the future)")
    expected = sign(secret, timestamp, body)
    # compare_digest on bytes: constant time, and no error on non-ASCII input.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise _refused("the Slack signature does not match")
