"""Parsing CloudEvents from HTTP: both content modes, and one clear reason for each refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events import types
from events.envelope import MAX_EVENT_BYTES, InvalidEvent, encode, new_event, parse
from events.models import CreateTodo, example_of

COMMAND = example_of(CreateTodo)


def binary(**overrides: Any) -> tuple[dict[str, str], bytes]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-source": "/test",
        "ce-type": types.TODO_CREATE,
        "Content-Type": "application/json",
    }
    body = overrides.pop("body", json.dumps(COMMAND).encode())
    for name, value in overrides.items():
        key = name.replace("_", "-")
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    return headers, body


def structured(**attributes: Any) -> tuple[dict[str, str], bytes]:
    envelope = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/test",
        "type": types.TODO_CREATE,
        "datacontenttype": "application/json",
        "data": COMMAND,
    }
    for name, value in attributes.items():
        if value is None:
            envelope.pop(name, None)
        else:
            envelope[name] = value
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(envelope).encode()


def reason(headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse(headers, body)
    return caught.value.reason


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_both_modes_round_trip_through_the_sdk(mode: str) -> None:
    sent = new_event(
        types.TODO_CREATE,
        "/test",
        CreateTodo.model_validate(COMMAND),
        subject="s-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    received = parse(*encode(sent, mode))  # type: ignore[arg-type]
    assert received.mode == mode
    assert (received.id, received.source, received.subject) == (sent["id"], "/test", "s-1")
    assert received.traceparent == sent["traceparent"]
    assert received.data == CreateTodo.model_validate(COMMAND)


def test_binary_mode_accepts_a_charset_and_any_header_case() -> None:
    headers, body = binary(Content_Type="application/json; charset=utf-8")
    assert parse({k.upper(): v for k, v in headers.items()}, body).id == "e-1"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (binary(ce_id=None), "missing required attribute id"),
        (binary(ce_source=None, ce_type=None), "missing required attribute source, type"),
        (structured(id=None), "missing required attribute id"),
        (structured(specversion=None), "missing required attribute specversion"),
        (binary(ce_specversion="0.3"), "specversion must be 1.0, got '0.3'"),
        (structured(specversion="2.0"), "specversion must be 1.0, got '2.0'"),
        (binary(ce_specversion=None), "not a CloudEvent"),
        (binary(Content_Type="text/plain"), "binary-mode data must be application/json"),
        (structured(datacontenttype="text/xml"), "datacontenttype must be application/json"),
        # Found by tests/test_parser_properties.py: these were an AttributeError (a 500).
        (structured(datacontenttype=True), "attribute datacontenttype must be a string"),
        (structured(subject=1), "attribute subject must be a string"),
        (binary(body=b'{"owner": '), "the data is not valid JSON"),
        (({"Content-Type": "application/cloudevents+json"}, b"{nope"), "not valid JSON"),
        (binary(body=b'{"owner": "alice"}'), "title: Field required"),
        (structured(data={**COMMAND, "colour": "red"}), "colour: unknown field"),
        (structured(data=None), "the event has no data"),
        (binary(ce_type="io.example.unknown.v1"), "unknown event type 'io.example.unknown.v1'"),
        (
            ({"Content-Type": "application/cloudevents-batch+json"}, b"[]"),
            "batched events are not accepted",
        ),
    ],
)
def test_each_bad_event_is_refused_with_a_clear_reason(request_, expected: str) -> None:
    assert expected in reason(*request_)


def test_an_event_larger_than_64_kib_is_refused_as_too_large() -> None:
    headers, _ = binary()
    body = json.dumps({**COMMAND, "notes": "x" * MAX_EVENT_BYTES}).encode()
    with pytest.raises(InvalidEvent) as caught:
        parse(headers, body)
    assert caught.value.too_large
    assert caught.value.reason == f"the event is larger than {MAX_EVENT_BYTES} bytes"


def test_a_catalog_type_a_function_does_not_take_is_named() -> None:
    headers, body = binary()
    with pytest.raises(InvalidEvent, match="this function does not accept"):
        parse(headers, body, {})


def test_without_models_any_type_and_content_is_accepted_as_the_broker_does() -> None:
    headers, _ = binary(ce_type="io.example.other.v1", Content_Type="text/plain")
    received = parse(headers, b"hello", None)
    assert (received.type, received.event.data, received.data) == (
        "io.example.other.v1",
        b"hello",
        None,
    )
    assert parse(*structured(type="io.example.other.v1"), None).event.data == COMMAND
    with pytest.raises(InvalidEvent, match="attribute datacontenttype must be a string"):
        parse(*structured(datacontenttype=["text/plain"]), None)
    with pytest.raises(InvalidEvent, match="missing required attribute id"):
        parse(*binary(ce_id=None), None)
