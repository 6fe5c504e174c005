"""Bad input: always a 4xx problem document naming the field, never a 500, never a change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import TODOS, create, ids, problem, rows_of
from tests.servers import Api

JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def existing(api: Api, db: Database, alice: Owner) -> Iterator[dict[str, Any]]:
    """One todo of alice's; after the test her todos must be exactly as before."""
    todo = create(api, alice, title="keep me", notes="as I am", tags=["safe"])
    before = rows_of(db, alice)
    yield todo
    assert rows_of(db, alice) == before, "a rejected request changed data"


def _raw(api: Api, owner: Owner, method: str, path: str, body: bytes | str, **headers: str):
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return api.request(
        method, path, token=owner.token, data=data, headers={**JSON_HEADERS, **headers}
    )


def _both(api: Api, owner: Owner, todo: dict[str, Any], body: bytes | str):
    """The same body sent to create and to update."""
    yield _raw(api, owner, "POST", TODOS, body)
    yield _raw(api, owner, "PATCH", f"{TODOS}/{todo['id']}", body)


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ['{"title": "x"', "{title: 'x'}", "", "   ", '{"title": "x"} trailing', "\x00", "[" * 5000],
)
def test_malformed_json_is_400(api: Api, alice: Owner, existing: dict[str, Any], body: str) -> None:
    for response in _both(api, alice, existing, body):
        problem(response, 400, "body")


@pytest.mark.parametrize("body", ["[]", '["title"]', '"title"', "1", "null", "true"])
def test_json_that_is_not_an_object_is_422(
    api: Api, alice: Owner, existing: dict[str, Any], body: str
) -> None:
    for response in _both(api, alice, existing, body):
        problem(response, 422, "body")


WRONG_TYPES = [
    ({"title": 1}, "title"),
    ({"title": ["x"]}, "title"),
    ({"title": {"text": "x"}}, "title"),
    ({"title": True}, "title"),
    ({"title": "x", "notes": 5}, "notes"),
    ({"title": "x", "priority": 3}, "priority"),
    ({"title": "x", "priority": "urgent"}, "priority"),
    ({"title": "x", "priority": "HIGH"}, "priority"),
    ({"title": "x", "tags": "a"}, "tags"),
    ({"title": "x", "tags": [1]}, "tags.0"),
    ({"title": "x", "tags": ["ok", ""]}, "tags.1"),
    ({"title": "x", "tags": ["two words"]}, "tags.0"),
    ({"title": "x", "tags": ["t" * 65]}, "tags.0"),
    ({"title": "x", "tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"title": "x", "due_at": True}, "due_at"),
    ({"title": "x", "due_at": 1_767_225_600}, "due_at"),
    ({"title": "x", "due_at": "1767225600"}, "due_at"),
    ({"title": "x", "due_at": ["2026-03-01T10:00:00Z"]}, "due_at"),
]


@pytest.mark.parametrize(("body", "field"), WRONG_TYPES)
def test_wrong_types_are_422_naming_the_field(
    api: Api, alice: Owner, existing: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    for response in _both(api, alice, existing, json.dumps(body)):
        problem(response, 422, field)


def test_unknown_fields_are_422(api: Api, alice: Owner, existing: dict[str, Any]) -> None:
    for response in _both(api, alice, existing, '{"title": "x", "colour": "red"}'):
        doc = problem(response, 422, "colour")
        assert {"field": "colour", "message": "unknown field"} in doc["errors"]


def test_missing_title_on_create_is_422(api: Api, alice: Owner, existing: dict[str, Any]) -> None:
    problem(_raw(api, alice, "POST", TODOS, '{"notes": "no title"}'), 422, "title")


def test_title_length_bounds(api: Api, alice: Owner, existing: dict[str, Any]) -> None:
    for title in ["", "x" * 501]:
        for response in _both(api, alice, existing, json.dumps({"title": title})):
            problem(response, 422, "title")
    ok = api.post(TODOS, token=alice.token, json={"title": "x" * 500})
    assert ok.status_code == 201
    assert ok.json()["title"] == "x" * 500
    assert api.delete(f"{TODOS}/{ok.json()['id']}", token=alice.token).status_code == 204


def test_notes_length_bounds(api: Api, alice: Owner, existing: dict[str, Any]) -> None:
    for response in _both(api, alice, existing, json.dumps({"title": "x", "notes": "n" * 10_001})):
        problem(response, 422, "notes")
    ok = api.post(TODOS, token=alice.token, json={"title": "x", "notes": "é" * 10_000})
    assert ok.status_code == 201
    assert api.delete(f"{TODOS}/{ok.json()['id']}", token=alice.token).status_code == 204


@pytest.mark.parametrize(
    "due_at",
    [
        "2026-02-30T10:00:00Z",
        "2026-13-01T10:00:00Z",
        "2026-03-01T25:00:00Z",
        "2026-03-01T10:00:00",
        "2026-03-01",
        "tomorrow",
        "",
    ],
)
def test_impossible_or_zoneless_dates_are_422(
    api: Api, alice: Owner, existing: dict[str, Any], due_at: str
) -> None:
    for response in _both(api, alice, existing, json.dumps({"title": "x", "due_at": due_at})):
        problem(response, 422, "due_at")


@pytest.mark.parametrize("due_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_dates_at_the_edge_of_the_calendar_are_never_a_500(
    api: Api, alice: Owner, existing: dict[str, Any], due_at: str
) -> None:
    """Years 1 and 9999 in a time zone fall outside them in UTC; refuse them cleanly."""
    for response in _both(api, alice, existing, json.dumps({"title": "x", "due_at": due_at})):
        problem(response, 422, "due_at")
    listed = api.get(f"{TODOS}?{urlencode({'due_before': due_at})}", token=alice.token)
    assert listed.status_code < 500, listed.text


@pytest.mark.parametrize("due_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"])
def test_the_first_and_last_representable_instants_round_trip(
    api: Api, alice: Owner, due_at: str
) -> None:
    todo = create(api, alice, due_at=due_at)
    assert todo["due_at"] == due_at
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).json()["due_at"] == due_at
    for sort in ["due", "-due"]:
        page = api.get(f"{TODOS}?sort={sort}&limit=1", token=alice.token).json()
        assert [t["id"] for t in page["items"]] == [todo["id"]]


# -- ids, query strings and headers -------------------------------------------------------------

BAD_IDS = [
    *("abc", "0", "-1", "00000000-0000-0000-0000-00000000000g", "9" * 30, str(2**31), "1e3"),
    *("1\n", "a\nb"),  # found by tests/test_fuzz_api.py: Flask's own routing missed them (HTML 404)
]


@pytest.mark.parametrize("ref", BAD_IDS)
def test_non_uuid_ids_are_400_on_every_operation(
    api: Api, alice: Owner, existing: dict[str, Any], ref: str
) -> None:
    path = f"{TODOS}/{quote(ref)}"
    for response in [
        api.get(path, token=alice.token),
        api.patch(path, token=alice.token, json={"notes": "x"}),
        api.post(f"{path}/complete", token=alice.token),
        api.post(f"{path}/reopen", token=alice.token),
        api.delete(path, token=alice.token),
    ]:
        problem(response, 400, "id")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("cursor=forged", "cursor"),
        ("cursor=" + "A" * 2000, "cursor"),
        ("due_before=2026-02-30T10:00:00Z", "due_before"),
        ("due_after=2026-03-01T10:00:00", "due_after"),
        ("due_after=1767225600", "due_after"),
        ("q=%00", "q"),
        ("tag=a%00", "tag"),
        ("status=", "status"),
    ],
)
def test_bad_query_strings_are_400(
    api: Api, alice: Owner, existing: dict[str, Any], query: str, field: str
) -> None:
    problem(api.get(f"{TODOS}?{query}", token=alice.token), 400, field)


def test_a_body_over_64_kib_is_413(api: Api, alice: Owner, existing: dict[str, Any]) -> None:
    big = json.dumps({"title": "x", "notes": "n" * (65 * 1024)})
    for response in _both(api, alice, existing, big):
        problem(response, 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
        yield b'{"title": "x", "notes": "'
        for _ in range(65):
            yield b"n" * 1024
        yield b'"}'

    chunked = api.post(TODOS, token=alice.token, data=chunks(), headers=JSON_HEADERS)
    problem(chunked, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(
    api: Api, alice: Owner, existing: dict[str, Any], content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for method, path in [("POST", TODOS), ("PATCH", f"{TODOS}/{existing['id']}")]:
        response = api.request(
            method, path, token=alice.token, data=b'{"title": "x"}', headers=headers
        )
        problem(response, 415, "Content-Type")


# -- text that PostgreSQL or UTF-8 cannot hold --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"title": "a\\u0000b"}', "title"),
        ('{"title": "x", "notes": "\\u0000"}', "notes"),
        ('{"title": "x", "tags": ["a\\u0000"]}', "tags.0"),
    ],
)
def test_nul_characters_are_422(
    api: Api, alice: Owner, existing: dict[str, Any], body: str, field: str
) -> None:
    for response in _both(api, alice, existing, body):
        problem(response, 422, field)


@pytest.mark.parametrize(
    "body",
    [
        '{"title": "\\ud800"}',
        '{"title": "x\\udc00y"}',
        '{"title": "x", "tags": ["\\ud83d"]}',
        b'{"title": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8 bytes
        b'{"title": "\xff\xfe"}',  # not UTF-8 at all
    ],
)
def test_lone_surrogates_and_invalid_utf8_are_4xx(
    api: Api, alice: Owner, existing: dict[str, Any], body: str | bytes
) -> None:
    for response in _both(api, alice, existing, body):
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["Content-Type"].startswith("application/problem+json")


# -- text that is stored verbatim ---------------------------------------------------------------

VERBATIM = [
    ("'; DROP TABLE todos; --", "drop"),
    ("100% done_ish", "done_ish"),
    ("back\\slash \\\\ and \\n literal", "slash"),
    ("quotes \" and ' and `", "quotes"),
    ("Robert'); DELETE FROM api_tokens;--", "robert"),
    ("party 🎉🎉 time", "party"),
    ("שלום עולם", "עולם"),
    ("مرحبا بالعالم", "بالعالم"),
    ("café naïve", "café"),
    ("cafe\u0301 e\u0301clair", "e\u0301clair"),
    ("买牛奶 明天", "买牛奶"),
    ("日本語のテキスト", "日本語のテキスト"),
    ("Ärger Über Straße", "über"),
    ("tab\there\nnewline", "newline"),
]


@pytest.mark.parametrize(("text", "word"), VERBATIM)
def test_sql_metacharacters_and_unicode_round_trip_and_are_searchable(
    api: Api, alice: Owner, text: str, word: str
) -> None:
    tags = [part for part in text.split() if part][:3]
    created = api.post(
        TODOS, token=alice.token, json={"title": text, "notes": f"notes: {text}", "tags": tags}
    )
    assert created.status_code == 201, created.text
    todo = created.json()
    assert (todo["title"], todo["notes"], todo["tags"]) == (text, f"notes: {text}", tags)
    fetched = api.get(f"{TODOS}/{todo['id']}", token=alice.token).json()
    assert (fetched["title"], fetched["notes"], fetched["tags"]) == (text, f"notes: {text}", tags)
    create(api, alice, title="decoy")
    found = api.get(f"{TODOS}?{urlencode({'q': word})}", token=alice.token)
    assert ids(found) == [todo["id"]], f"q={word!r} did not find {text!r}"
    for tag in tags:
        assert ids(api.get(f"{TODOS}?{urlencode({'tag': tag})}", token=alice.token)) == [todo["id"]]


@pytest.mark.parametrize("q", ["%", "_", "%_%", "\\", "'", "*", ":*", "&", "!", "|", "(", "<->"])
def test_search_operators_and_wildcards_are_not_special(api: Api, alice: Owner, q: str) -> None:
    create(api, alice, title="anything at all")
    response = api.get(f"{TODOS}?{urlencode({'q': q})}", token=alice.token)
    # no words to search for: a clear 400 naming q, not every todo and not a 500
    problem(response, 400, "q")
    response = api.get(f"{TODOS}?{urlencode({'q': 'anything ' + q})}", token=alice.token)
    assert len(ids(response)) == 1


def test_the_todos_table_survives(api: Api, db: Database, alice: Owner) -> None:
    evil = "'; DROP TABLE todos; --"
    create(api, alice, title=evil)
    assert api.get(f"{TODOS}?{urlencode({'q': evil, 'tag': 'x'})}", token=alice.token).ok
    assert db.read(lambda c: c.one("SELECT to_regclass('todos') IS NOT NULL AS ok"))["ok"]


# -- properties ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["title", "notes", "priority", "due_at", "tags", "status", "id"]
bodies = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
    st.fixed_dictionaries(
        {"title": st.text(max_size=600)},
        optional={
            "notes": st.text(),
            "priority": st.sampled_from(["low", "normal", "high", "", "HIGH"]),
            "due_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
            | st.text(max_size=30),
            "tags": st.lists(st.text(max_size=70), max_size=22),
        },
    ),
)


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_arbitrary_json_bodies_never_produce_a_5xx(api: Api, alice: Owner, body: Any) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    todo_path = f"{TODOS}/1"
    for method, path in [("POST", TODOS), ("PATCH", todo_path)]:
        response = _raw(api, alice, method, path, raw)
        assert response.status_code < 500, (method, body, response.text)
        if response.status_code >= 400:
            assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.slow
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["status", "tag", "due_before", "due_after", "q", "sort", "limit", "cursor"]
        ),
        st.text(max_size=40),
        max_size=4,
    )
)
def test_arbitrary_query_strings_never_produce_a_5xx(
    api: Api, alice: Owner, params: dict[str, str]
) -> None:
    query = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in params.items()})
    response = api.get(f"{TODOS}?{query}", token=alice.token)
    assert response.status_code < 500, (params, response.text)


def test_error_bodies_never_leak_a_stack_trace(api: Api, alice: Owner) -> None:
    for response in [
        api.post(TODOS, token=alice.token, data=b"{", headers=JSON_HEADERS),
        api.get(f"{TODOS}/abc", token=alice.token),
        api.get(f"{TODOS}?limit=x", token=alice.token),
    ]:
        assert "Traceback" not in response.text
        assert 'File "' not in response.text
