"""Slack request signing: fresh signed requests pass; forged, stale, altered or unsigned 401."""

from __future__ import annotations

import pytest

from functions.core.errors import Unauthorized
from functions.slack.signature import sign, verify_slack_signature

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"token=x&team_id=T1&user_id=U1&command=%2Ftodo&text=list"
NOW = 1_700_000_000


def headers(signature: str, timestamp: int | str = NOW) -> dict[str, str]:
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(timestamp)}


def test_slacks_documented_example_verifies() -> None:
    # The worked example in Slack's "Verifying requests from Slack" guide.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
        b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
        b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert sign(SECRET, "1531420618", body) == expected
    verify_slack_signature(SECRET, headers(expected, 1531420618), body, now=1531420618 + 60)


def test_a_fresh_signed_request_passes() -> None:
    verify_slack_signature(SECRET, headers(sign(SECRET, str(NOW), BODY)), BODY, now=NOW + 299)


@pytest.mark.parametrize(
    ("case", "request_headers", "body"),
    [
        ("forged", headers(sign("another-secret", str(NOW), BODY)), BODY),
        ("body changed", headers(sign(SECRET, str(NOW), BODY)), BODY + b"&text=delete+1"),
        ("stale", headers(sign(SECRET, str(NOW - 301), BODY), NOW - 301), BODY),
        ("future", headers(sign(SECRET, str(NOW + 301), BODY), NOW + 301), BODY),
        ("no signature", {"X-Slack-Request-Timestamp": str(NOW)}, BODY),
        ("no timestamp", {"X-Slack-Signature": sign(SECRET, str(NOW), BODY)}, BODY),
        ("timestamp not a number", headers(sign(SECRET, "1e9", BODY), "1e9"), BODY),
        ("other version", headers("v1=" + sign(SECRET, str(NOW), BODY)[3:]), BODY),
        ("non-ASCII signature", headers("v0=ü"), BODY),
    ],
)
def test_bad_signatures_are_refused_with_401(
    case: str, request_headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(Unauthorized) as refused:
        verify_slack_signature(SECRET, request_headers, body, now=NOW)
    assert refused.value.status == 401
