"""Reading a Slack request: the raw body, its signature checked first, then the payload parsed.

Every Slack entry point calls `signed_body` before it looks at anything else in
the request, so a forged, stale or altered request is refused with a 401 and
has no effect.
"""

from __future__ import annotations

import json
from typing import TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from functions.core.errors import BadRequest, FieldError, PayloadTooLarge
from functions.core.http import Call, field_errors
from functions.core.settings import settings
from functions.slack.signature import verify_slack_signature
from functions.slack.web_api import is_slack_url

M = TypeVar("M", bound=BaseModel)

# Interaction payloads repeat the whole message they came from (up to 50 blocks).
MAX_SLACK_BODY_BYTES = 256 * 1024


def signed_body(call: Call) -> bytes:
    """The raw body, once its Slack signature is valid and fresh; 401 (or 413) otherwise."""
    request = call.request
    if request.content_length is not None and request.content_length > MAX_SLACK_BODY_BYTES:
        raise PayloadTooLarge(f"Slack requests are limited to {MAX_SLACK_BODY_BYTES} bytes")
    body = request.stream.read(MAX_SLACK_BODY_BYTES + 1)
    if len(body) > MAX_SLACK_BODY_BYTES:
        raise PayloadTooLarge(f"Slack requests are limited to {MAX_SLACK_BODY_BYTES} bytes")
    secret = settings().slack_signing_secret
    assert secret is not None, "the registry requires SLACK_SIGNING_SECRET"
    verify_slack_signature(secret, request.headers, body)
    return body


def form_fields(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as single values (the last of repeats)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def validated(model: type[M], data: object, what: str) -> M:
    """data as model, or a 400 naming the fields that are wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(f"the {what} is not valid", errors=field_errors(exc)) from None


def json_object(raw: str | bytes, what: str) -> dict[str, object]:
    """raw parsed as a JSON object, or a 400 saying it is not one."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise BadRequest(
            f"the {what} is not valid JSON", errors=[FieldError(what, "malformed JSON")]
        ) from None
    if not isinstance(value, dict):
        raise BadRequest(f"the {what} must be a JSON object")
    return value


def slack_reply_url(url: str) -> str:
    """url, if it points at Slack (see is_slack_url); a 400 before anything is done otherwise."""
    if not is_slack_url(url, settings().slack_api_url):
        raise BadRequest(
            "response_url must point at Slack", errors=[FieldError("response_url", "not Slack's")]
        )
    return url
