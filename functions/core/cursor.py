"""Opaque, signed keyset-pagination cursors: forged or foreign ones are rejected."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


class InvalidCursor(ValueError):
    pass


def _sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:16]


def encode_cursor(key: bytes, position: dict[str, Any]) -> str:
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    token = payload + _sign(key, payload)
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(key: bytes, cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        raise InvalidCursor("not a cursor this API issued") from None
    payload, signature = raw[:-16], raw[-16:]
    if len(raw) <= 16 or not hmac.compare_digest(signature, _sign(key, payload)):
        raise InvalidCursor("not a cursor this API issued")
    position = json.loads(payload)
    if not isinstance(position, dict):
        raise InvalidCursor("not a cursor this API issued")
    return position
