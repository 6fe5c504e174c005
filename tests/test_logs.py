"""`logs.scrub`: credentials in free text are redacted whatever their case or script."""

from __future__ import annotations

import pytest

from functions.core.logs import REDACTED, scrub

SECRET = "tp_" + "a1b2c3d4" * 6


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"Authorization: BeArEr {SECRET}", SECRET),
        (f"basic {SECRET}", SECRET),
        ("postgresql://todo:hunter2@db/todo", "hunter2"),
        (f"key {SECRET} here", SECRET),
        ("slack xoxb-1234567890-abcdefghijkl", "xoxb-1234567890-abcdefghijkl"),
        ("openai sk-abcdefghijklmnopqrstuvwx", "sk-abcdefghijklmnopqrstuvwx"),
        ("GET /x?PASSWORD=hunter2&a=1", "hunter2"),
        # Not ASCII: the case-insensitive search, not the lowercased one, decides.
        (f"café — Bearer {SECRET}", SECRET),
        ("stra\u00dfe token=hunter2", "hunter2"),
        ("to\u212aen=hunter2", "hunter2"),  # KELVIN SIGN matches k case-insensitively
    ],
)
def test_a_credential_in_text_is_redacted(text: str, gone: str) -> None:
    scrubbed = scrub(text)
    assert gone not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize("text", ["GET /api/v1/todos/12 200", "café crème", "", "tokens"])
def test_clean_text_is_left_as_it_is(text: str) -> None:
    assert scrub(text) == text
