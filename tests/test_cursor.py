"""Signed pagination cursors: what was issued decodes; anything forged or tampered does not."""

from __future__ import annotations

import base64
import json

import pytest

from functions.core.cursor import InvalidCursor, decode_cursor, encode_cursor

KEY = b"k" * 32
POSITION = {"s": "scope123", "k": ["2026-03-01 10:00:00.123456+00", "3f0e…", 2]}


def _raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_an_issued_cursor_decodes_to_its_position() -> None:
    assert decode_cursor(KEY, encode_cursor(KEY, POSITION)) == POSITION


def test_cursors_are_url_safe_and_unpadded() -> None:
    cursor = encode_cursor(KEY, POSITION)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor


def test_the_same_position_gives_the_same_cursor() -> None:
    assert encode_cursor(KEY, POSITION) == encode_cursor(KEY, dict(reversed(POSITION.items())))


def test_another_key_rejects_the_cursor() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(b"other" * 8, encode_cursor(KEY, POSITION))


def test_a_changed_payload_with_the_old_signature_is_rejected() -> None:
    raw = _raw(encode_cursor(KEY, POSITION))
    payload, signature = raw[:-16], raw[-16:]
    moved = json.loads(payload)
    moved["k"][0] = "1970-01-01 00:00:00+00"
    forged = json.dumps(moved, separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(InvalidCursor):
        decode_cursor(KEY, _b64(forged + signature))
    other_scope = payload.replace(b"scope123", b"scope999")
    with pytest.raises(InvalidCursor):
        decode_cursor(KEY, _b64(other_scope + signature))


def test_every_single_bit_flip_is_rejected() -> None:
    raw = _raw(encode_cursor(KEY, POSITION))
    for i in range(len(raw)):
        for bit in (1, 0x80):
            flipped = raw[:i] + bytes([raw[i] ^ bit]) + raw[i + 1 :]
            with pytest.raises(InvalidCursor):
                decode_cursor(KEY, _b64(flipped))


def test_truncated_or_extended_cursors_are_rejected() -> None:
    cursor = encode_cursor(KEY, POSITION)
    raw = _raw(cursor)
    for bad in [_b64(raw[:-1]), _b64(raw[1:]), _b64(raw + b"x"), _b64(raw[:16]), _b64(raw[:10])]:
        with pytest.raises(InvalidCursor):
            decode_cursor(KEY, bad)


@pytest.mark.parametrize(
    "forged", ["", "a", "!!!!", "é", "\x00", "AAAA", "A" * 100, "null", "e30", "=" * 8, " " * 4]
)
def test_garbage_is_rejected_with_invalid_cursor(forged: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(KEY, forged)


def test_a_signed_payload_that_is_not_an_object_is_rejected() -> None:
    """Even signed with the right key, only a JSON object is a position."""
    import hashlib
    import hmac

    payload = b"[1,2]"
    signature = hmac.new(KEY, payload, hashlib.sha256).digest()[:16]
    with pytest.raises(InvalidCursor):
        decode_cursor(KEY, _b64(payload + signature))


def test_invalid_cursor_is_a_value_error() -> None:
    assert issubclass(InvalidCursor, ValueError)
