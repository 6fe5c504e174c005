"""Properties of the parsers at the edges: CloudEvents, Slack payloads and the `/todo` grammar.

Arbitrary input only ever raises the parser's own error, which its caller answers
with a 4xx (InvalidEvent → 400/413, BadRequest → 400) — never anything else, which
would be a 500 — and valid input comes back out as it went in. The MCP tools'
arguments have the same properties, over the wire: tests/mcp_server/test_tool_arguments.py.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from events.envelope import InvalidEvent, encode, new_event, parse
from events.models import MODELS, example_of
from events.types import TODO_CREATE
from functions.core.errors import BadRequest
from functions.core.models import Priority, TodoCreate
from functions.slack.buttons import ButtonValue, parse_value
from functions.slack.command_text import Add, Agent, Command, Help, Usage, parse_command
from functions.slack.inbound import form_fields, json_object, validated
from functions.slack.payloads import BlockActions, EventCallback, SlashCommand, UrlVerification

EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
printable = st.text(alphabet=string.ascii_letters + string.digits + "-_./:", min_size=1)
storable = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


def json_bytes(values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[bytes]:
    return values.map(lambda v: json.dumps(v).encode())


# -- CloudEvents --------------------------------------------------------------------------------

ATTRIBUTES = ["specversion", "id", "source", "type", "subject", "time", "datacontenttype"]
header_names = st.sampled_from(
    [f"ce-{a}" for a in ATTRIBUTES] + ["Content-Type", "content-type", "ce-traceparent"]
) | st.text(max_size=12)
# HTTP header values carry no line breaks (WSGI servers refuse them).
header_values = st.sampled_from(
    ["1.0", "0.3", "application/json", "application/cloudevents+json", "", *sorted(MODELS)]
) | st.text(st.characters(blacklist_characters="\r\n"), max_size=40)


def _cased(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.upper(), name.title()])


@EXAMPLES
@given(
    required=st.fixed_dictionaries({name: printable for name in ("ce-id", "ce-source", "ce-type")}),
    extra=st.dictionaries(
        st.sampled_from(["ce-subject", "ce-time", "ce-traceparent", "ce-knativearrivaltime"])
        | st.text(string.ascii_lowercase + "-", min_size=1, max_size=10),
        header_values,
        max_size=5,
    ),
    content_type=st.none() | st.sampled_from(["application/json", "text/plain; charset=utf-8"]),
    body=st.binary(max_size=100) | json_bytes(),
    case=st.data(),
)
def test_a_binary_event_parses_as_the_sdks_from_http_makes_it(
    required: dict[str, str],
    extra: dict[str, str],
    content_type: str | None,
    body: bytes,
    case: st.DataObject,
) -> None:
    from cloudevents.http import from_http

    headers = {**extra, "ce-specversion": "1.0", **required}
    if content_type is not None:
        headers["content-type"] = content_type
    headers = {case.draw(_cased(k)): v for k, v in headers.items()}
    try:
        received = parse(headers, body, None)
    except InvalidEvent:
        return  # refused before the SDK was ever asked (e.g. an empty id)
    sdk = from_http(dict(headers), body, data_unmarshaller=lambda raw: raw)
    mine, theirs = dict(received.event.get_attributes()), dict(sdk.get_attributes())
    if not any(k.lower() == "ce-time" for k in headers):  # both default it to their own now
        mine.pop("time"), theirs.pop("time")
    assert mine == theirs
    sdk.data = None if sdk.data in (None, b"", "") else sdk.data
    raw = body or None
    assert sdk.data == raw
    decoded = received.event.data
    if raw is not None and decoded != raw:  # JSON data comes back decoded, the rest as sent
        assert decoded == json.loads(raw)


@EXAMPLES
@given(
    headers=st.dictionaries(header_names, header_values, max_size=8),
    body=st.binary(max_size=200) | json_bytes(),
    typed=st.booleans(),
)
def test_any_request_is_an_event_or_an_invalid_event(
    headers: dict[str, str], body: bytes, typed: bool
) -> None:
    try:
        received = parse(headers, body, MODELS if typed else None)
    except InvalidEvent as refused:
        assert refused.reason and "\n" not in refused.reason
    else:
        assert received.id and received.source and received.type


@EXAMPLES
@given(
    envelope=st.dictionaries(
        st.sampled_from([*ATTRIBUTES, "data", "data_base64"]) | st.text(max_size=8),
        st.sampled_from(["1.0", *sorted(MODELS), "application/json"]) | json_values,
        max_size=9,
    ),
    typed=st.booleans(),
)
def test_any_structured_envelope_is_an_event_or_an_invalid_event(
    envelope: dict[str, Any], typed: bool
) -> None:
    body = json.dumps(envelope).encode()
    try:
        parse({"Content-Type": "application/cloudevents+json"}, body, MODELS if typed else None)
    except InvalidEvent as refused:
        assert refused.reason


create_data = st.fixed_dictionaries(
    {
        "owner": st.text(
            st.characters(min_codepoint=0x20, blacklist_characters="\x7f"), min_size=1
        ).filter(lambda s: len(s) <= 200),
        "title": storable.filter(lambda s: 1 <= len(s) <= 500),
        "notes": storable.filter(lambda s: len(s) <= 10_000),
        "priority": st.sampled_from([p.value for p in Priority]),
        "tags": st.lists(
            st.text(
                st.characters(blacklist_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=64
            ).filter(lambda s: not any(c.isspace() for c in s)),
            max_size=20,
        ),
    }
)


@EXAMPLES
@given(
    type_data=st.sampled_from(sorted(MODELS)).map(lambda t: (t, example_of(MODELS[t])))
    | create_data.map(lambda data: (TODO_CREATE, data)),
    id_=printable,
    source=printable.map(lambda s: "/" + s),
    subject=st.none() | printable,
    mode=st.sampled_from(["binary", "structured"]),
)
def test_a_valid_event_round_trips_in_both_modes(
    type_data: tuple[str, dict[str, Any]], id_: str, source: str, subject: str | None, mode: Any
) -> None:
    type_, data = type_data
    event = new_event(type_, source, data, subject=subject, id_=id_)
    headers, body = encode(event, mode)
    received = parse(headers, body)
    assert (received.id, received.source, received.type, received.subject) == (
        id_,
        source,
        type_,
        subject,
    )
    assert received.mode == mode
    assert isinstance(received.data, BaseModel)
    assert received.data == MODELS[type_].model_validate(data)


# -- Slack payloads -----------------------------------------------------------------------------


@EXAMPLES
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_form_body_is_fields_or_a_400(body: bytes) -> None:
    try:
        fields = form_fields(body)
    except BadRequest as refused:
        assert refused.status == 400
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


PAYLOADS: list[tuple[type[BaseModel], str]] = [
    (SlashCommand, "slash command"),
    (BlockActions, "payload"),
    (EventCallback, "event"),
    (UrlVerification, "url_verification"),
]


@EXAMPLES
@given(raw=st.binary(max_size=300) | json_bytes(), index=st.integers(0, len(PAYLOADS) - 1))
def test_any_payload_parses_or_is_a_400_naming_what_is_wrong(raw: bytes, index: int) -> None:
    model, what = PAYLOADS[index]
    try:
        validated(model, json_object(raw, what), what)
    except BadRequest as refused:
        assert refused.status == 400 and refused.detail


slack_ids = st.from_regex(r"\A[A-Z0-9][A-Z0-9_-]{1,39}\Z")


@EXAMPLES
@given(
    team=slack_ids,
    user=slack_ids,
    channel=slack_ids,
    text=storable.filter(lambda s: len(s) <= 4000),
    trigger=st.text(alphabet=string.ascii_letters + string.digits + ".", max_size=50),
)
def test_a_slash_command_form_round_trips(
    team: str, user: str, channel: str, text: str, trigger: str
) -> None:
    form = {
        "team_id": team,
        "user_id": user,
        "channel_id": channel,
        "command": "/todo",
        "text": text,
        "response_url": "https://hooks.slack.com/commands/T1/2/abc",
        "trigger_id": trigger,
    }
    parsed = validated(SlashCommand, form_fields(urlencode(form).encode()), "slash command")
    assert parsed.model_dump() == form


@EXAMPLES
@given(raw=st.text(max_size=200) | json_bytes().map(bytes.decode))
def test_any_button_value_is_ours_or_none(raw: str) -> None:
    value = parse_value(raw)
    assert value is None or isinstance(value, ButtonValue)


# -- the /todo grammar --------------------------------------------------------------------------


@EXAMPLES
@given(text=st.text(max_size=300))
def test_any_command_text_parses_to_a_command(text: str) -> None:
    command: Command = parse_command(text, NOW)
    if not text.split():
        assert isinstance(command, Help)
    if isinstance(command, Agent):
        assert command.text == text.strip()


title_words = st.lists(
    st.text(
        st.characters(blacklist_categories=["Cs", "Z", "Cc"], blacklist_characters="\x00\x85"),
        min_size=1,
        max_size=12,
    ).filter(
        lambda w: (
            not w.startswith(("#", "!")) and not w.lower().startswith("due:") and w.split() == [w]
        )
    ),
    min_size=1,
    max_size=8,
)


@EXAMPLES
@given(
    words=title_words,
    tags=st.lists(st.from_regex(r"\A[a-z0-9_-]{1,20}\Z"), max_size=5),
    priority=st.sampled_from(list(Priority)),
    due=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
    ),
)
def test_an_add_command_round_trips(
    words: list[str], tags: list[str], priority: Priority, due: datetime
) -> None:
    text = " ".join(
        ["add", *words, *(f"#{t}" for t in tags), f"!{priority.value}", f"due:{due:%Y-%m-%d@%H:%M}"]
    )
    command = parse_command(text, NOW)
    if len(" ".join(words)) > 500:
        assert isinstance(command, Usage)
        return
    assert command == Add(
        TodoCreate(title=" ".join(words), priority=priority, due_at=due, tags=tags)
    ), text
