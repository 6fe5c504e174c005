"""The trace-context seam: events continue the request's trace, or start a new one."""

from __future__ import annotations

import pytest

from functions.core.tracing import (
    child_traceparent,
    continue_trace,
    current_traceparent,
    event_traceparent,
)

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_child_keeps_the_trace_and_flags_with_a_new_span() -> None:
    child = child_traceparent(PARENT)
    version, trace_id, span_id, flags = child.split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert span_id != "b7ad6b7169203331" and len(span_id) == 16
    assert child_traceparent(PARENT) != child


@pytest.mark.parametrize(
    "invalid",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    ],
)
def test_an_invalid_parent_starts_a_new_trace(invalid: str | None) -> None:
    child = child_traceparent(invalid)
    assert "0af7651916cd43dd8448eb211c80319c" not in child
    assert child_traceparent(child).split("-")[1] == child.split("-")[1]


def test_a_future_version_with_more_fields_is_continued() -> None:
    future = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next"
    assert child_traceparent(future).split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def test_the_current_trace_is_the_incoming_one_only_inside_the_block() -> None:
    assert current_traceparent() is None
    with continue_trace(PARENT):
        assert current_traceparent() == PARENT
    assert current_traceparent() is None
    with continue_trace("not a traceparent"):
        fresh = current_traceparent()
        assert fresh is not None and fresh != PARENT
        assert current_traceparent() == fresh  # one new trace for the whole block
        assert event_traceparent().split("-")[1] == fresh.split("-")[1]
