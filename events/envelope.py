"""Build, encode and parse CloudEvents over HTTP (binary and structured mode) with the SDK.

`new_event` and `encode` make what the platform sends; `parse` checks what it
receives and says in one line why it refuses an event: missing attributes, a
specversion other than 1.0, a wrong content type, data that is not JSON or does
not match its model, an unknown type, or more than 64 KiB.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cloudevents import exceptions as sdk_errors
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from pydantic import BaseModel, ValidationError

from events.models import MODELS
from events.types import ALL

SPECVERSION = "1.0"
MAX_EVENT_BYTES = 64 * 1024
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "type")
# Context attributes whose value is a string (CloudEvents 1.0: String, URI-reference, Timestamp).
STRING_ATTRIBUTES = ("specversion", *REQUIRED, "subject", "datacontenttype", "dataschema", "time")

Mode = Literal["binary", "structured"]


class InvalidEvent(ValueError):
    """The request is not an event we accept; `reason` says why in one line."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


@dataclass(frozen=True)
class Received:
    """An accepted event: the SDK's CloudEvent, its validated data and how it arrived."""

    event: CloudEvent
    data: BaseModel | None  # None when parsed without models (any type accepted)
    mode: Mode

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def source(self) -> str:
        return str(self.event["source"])

    @property
    def type(self) -> str:
        return str(self.event["type"])

    @property
    def subject(self) -> str | None:
        return self.event.get("subject")

    @property
    def traceparent(self) -> str | None:
        return self.event.get("traceparent")


def new_event(
    type_: str,
    source: str,
    data: BaseModel | Mapping[str, Any],
    *,
    subject: str | None = None,
    traceparent: str | None = None,
    id_: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """A CloudEvent 1.0 with JSON data; a fresh UUID id and the current time unless given."""
    attributes: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id_ or str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": JSON,
    }
    if subject is not None:
        attributes["subject"] = subject
    if traceparent is not None:
        attributes["traceparent"] = traceparent
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
    return CloudEvent(attributes, payload)


def encode(event: CloudEvent, mode: Mode = "binary") -> tuple[dict[str, str], bytes]:
    """HTTP headers and body for the event in the given content mode."""
    headers, body = to_binary(event) if mode == "binary" else to_structured(event)
    return dict(headers), body if isinstance(body, bytes) else body.encode()


def _mimetype(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether the request claims to be a CloudEvent (binary or structured mode)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return "ce-specversion" in lowered or _mimetype(lowered.get("content-type")) in (
        STRUCTURED,
        BATCH,
    )


def parse(
    headers: Mapping[str, str],
    body: bytes,
    models: Mapping[str, type[BaseModel]] | None = MODELS,
) -> Received:
    """The event in an HTTP request, checked; raises InvalidEvent with the reason.

    With `models`, only those types are accepted and the data must be JSON that
    validates against the type's model. With None any type and content is
    accepted (the broker's ingress, the dead-letter sink).
    """
    if len(body) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"the event is larger than {MAX_EVENT_BYTES} bytes", too_large=True)
    lowered = {k.lower(): v for k, v in headers.items()}
    mimetype = _mimetype(lowered.get("content-type"))
    mode: Mode
    if "ce-specversion" in lowered:
        mode = "binary"
        attributes: Mapping[str, Any] = {
            k[3:]: v for k, v in lowered.items() if k.startswith("ce-")
        }
        if models is not None and mimetype != JSON:
            raise InvalidEvent(
                f"binary-mode data must be {JSON}, got Content-Type {mimetype or 'none'}"
            )
    elif mimetype == STRUCTURED:
        mode = "structured"
        attributes = _structured_attributes(body, json_only=models is not None)
    elif mimetype == BATCH:
        raise InvalidEvent("batched events are not accepted; send one event per request")
    else:
        raise InvalidEvent(
            "not a CloudEvent: send binary mode (ce-* headers, Content-Type: application/json) "
            f"or structured mode (Content-Type: {STRUCTURED}); got Content-Type "
            f"{mimetype or 'none'}"
        )
    _check_attributes(attributes)
    if mode == "binary":
        # What from_http makes of binary mode, without its marshaller's machinery (a third
        # of the broker ingress's time per event); tests/test_parser_properties.py holds
        # the two to equality.
        if "content-type" in lowered:
            attributes = {**attributes, "datacontenttype": lowered["content-type"]}
        event = CloudEvent.create(attributes, body or None)
    else:
        try:
            # Keep the data as sent: it is validated (or kept as bytes) below.
            event = from_http(dict(headers), body, data_unmarshaller=lambda raw: raw)
        except sdk_errors.GenericException as exc:
            raise InvalidEvent(f"not a valid CloudEvent: {exc}") from None
    if models is None:
        event.data = _decoded(event)
        return Received(event, None, mode)
    return Received(*_validated(event, models), mode)


def _structured_attributes(body: bytes, *, json_only: bool) -> dict[str, Any]:
    try:
        envelope = json.loads(body)
    except ValueError:
        raise InvalidEvent("the structured event is not valid JSON") from None
    if not isinstance(envelope, dict):
        raise InvalidEvent("a structured event is a JSON object")
    for name in STRING_ATTRIBUTES:  # extensions may be other JSON types; these may not
        if name in envelope and not isinstance(envelope[name], str):
            raise InvalidEvent(f"attribute {name} must be a string")
    if json_only:
        if "data_base64" in envelope:
            raise InvalidEvent("the data must be JSON; data_base64 is not accepted")
        declared = _mimetype(envelope.get("datacontenttype", JSON))
        if declared != JSON:
            raise InvalidEvent(f"datacontenttype must be {JSON}, got {declared or 'none'}")
    return envelope


def _check_attributes(attributes: Mapping[str, Any]) -> None:
    specversion = attributes.get("specversion")
    if specversion is None:
        raise InvalidEvent("missing required attribute specversion")
    if specversion != SPECVERSION:
        raise InvalidEvent(f"specversion must be {SPECVERSION}, got {specversion!r}")
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"missing required attribute {', '.join(missing)}")
    for name in REQUIRED:
        if not isinstance(attributes[name], str):
            raise InvalidEvent(f"attribute {name} must be a string")


def _decoded(event: CloudEvent) -> Any:
    """Data as a JSON value when it is JSON, else the raw bytes (the broker forwards it)."""
    raw = event.data
    if raw in (None, "", b""):
        return None
    declared = _mimetype(event.get("datacontenttype"))
    if declared in ("", JSON) or declared.endswith("+json"):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw if isinstance(raw, bytes) else str(raw).encode()


def _validated(
    event: CloudEvent, models: Mapping[str, type[BaseModel]]
) -> tuple[CloudEvent, BaseModel]:
    type_ = str(event["type"])
    model = models.get(type_)
    if model is None:
        if type_ in ALL:
            raise InvalidEvent(f"this function does not accept {type_} events")
        raise InvalidEvent(f"unknown event type {type_!r}")
    raw = event.data
    if raw in (None, "", b""):
        raise InvalidEvent(f"the event has no data; {type_} needs a JSON object")
    try:
        data = model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidEvent("the data is not valid JSON") from None
        raise InvalidEvent(f"the data does not match the {type_} schema: {_summary(exc)}") from None
    event.data = json.loads(raw)
    return event, data


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "data"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
