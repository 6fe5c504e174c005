"""Pure rules: todo references, ETags and If-Match, request fingerprints, search text, sort keys."""

from __future__ import annotations

import uuid

import pytest

from functions.core.errors import BadRequest, PreconditionFailed
from functions.core.todo_rules import (
    MAX_NUMBER,
    SORT_KEYS,
    Sort,
    TodoRef,
    check_version,
    etag,
    parse_idempotency_key,
    parse_if_match,
    parse_ref,
    request_hash,
    search_terms,
)

# -- parse_ref ----------------------------------------------------------------------------------


def test_a_uuid_names_a_todo_by_id() -> None:
    value = uuid.uuid4()
    assert parse_ref(str(value)) == TodoRef(id=value)
    assert parse_ref(str(value).upper()) == TodoRef(id=value)


@pytest.mark.parametrize("raw", ["1", "12", "2147483647"])
def test_a_positive_integer_names_a_todo_by_number(raw: str) -> None:
    assert parse_ref(raw) == TodoRef(number=int(raw))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "0",
        "-1",
        "+1",
        "01",
        "1.0",
        "1e3",
        " 1",
        "1 ",
        "١٢",  # Arabic-Indic digits are digits to Python, not to us
        str(MAX_NUMBER + 1),
        "9" * 40,
        "abc",
        "{" + str(uuid.uuid4()) + "}",
        str(uuid.uuid4()).replace("-", ""),
        str(uuid.uuid4())[:-1],
        str(uuid.uuid4()) + "0",
        "00000000-0000-0000-0000-00000000000g",
        "1\n",  # `$` alone matches before a final newline
        str(uuid.uuid4()) + "\n",
    ],
)
def test_anything_else_is_a_bad_request_naming_id(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_ref(raw)
    assert [e.field for e in caught.value.errors] == ["id"]


# -- ETags and If-Match -------------------------------------------------------------------------


def test_etag_is_the_version_as_a_strong_tag() -> None:
    assert etag(3) == '"3"'


@pytest.mark.parametrize("header", [None, "*", " * "])
def test_absent_or_star_if_match_accepts_any_version(header: str | None) -> None:
    assert parse_if_match(header) is None
    check_version(41, parse_if_match(header))


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        ('"3"', {3}),
        (' "3" ', {3}),
        ('"3", "5"', {3, 5}),
        ('"3",W/"4"', {3}),
        ('W/"3"', set()),
        ('"abc"', set()),
        ('""', set()),
    ],
)
def test_if_match_lists_the_strong_versions(header: str, versions: set[int]) -> None:
    assert parse_if_match(header) == versions


def test_weak_tags_never_match() -> None:
    accepted = parse_if_match('W/"3"')
    with pytest.raises(PreconditionFailed):
        check_version(3, accepted)


@pytest.mark.parametrize("header", ["3", "abc", '"3', '3"', "W/3", '"3",', '"3" "4"', "", "**"])
def test_malformed_if_match_is_a_bad_request_naming_it(header: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_if_match(header)
    assert [e.field for e in caught.value.errors] == ["If-Match"]


def test_a_stale_version_is_412_carrying_the_current_etag() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        check_version(4, {3})
    assert caught.value.status == 412
    assert caught.value.headers == {"ETag": '"4"'}
    assert [e.field for e in caught.value.errors] == ["If-Match"]


def test_a_matching_version_passes() -> None:
    check_version(3, {3})
    check_version(3, {1, 3})


# -- Idempotency-Key and request fingerprints ---------------------------------------------------


@pytest.mark.parametrize("key", ["a", "order-42", "x" * 255, "!~", str(uuid.uuid4())])
def test_visible_ascii_keys_are_accepted(key: str) -> None:
    assert parse_idempotency_key(key) == key


def test_no_key_is_none() -> None:
    assert parse_idempotency_key(None) is None


@pytest.mark.parametrize("key", ["", " ", "a b", "x" * 256, "é", "tab\t", "nul\x00"])
def test_other_keys_are_a_bad_request_naming_the_header(key: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_idempotency_key(key)
    assert [e.field for e in caught.value.errors] == ["Idempotency-Key"]


def test_the_fingerprint_ignores_key_order() -> None:
    assert request_hash({"a": 1, "b": [1, 2]}) == request_hash({"b": [1, 2], "a": 1})


def test_the_fingerprint_sees_every_value() -> None:
    base = {"title": "x", "tags": ["a", "b"], "due_at": None}
    assert request_hash(base) != request_hash({**base, "title": "y"})
    assert request_hash(base) != request_hash({**base, "tags": ["b", "a"]})
    assert request_hash(base) != request_hash({**base, "due_at": "2026-01-01T00:00:00Z"})
    assert request_hash({"title": "é"}) != request_hash({"title": "e\u0301"})


# -- search text --------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["milk", "mil", "buy milk", "example.com", "e\u0301clair", "买", "3"])
def test_search_text_with_a_letter_or_digit_is_kept_as_typed(q: str) -> None:
    assert search_terms(q) == q


@pytest.mark.parametrize("q", ["%", "_", "%_%", "'", "\\", ":*", "& | !", "<->", "🎉", "   ", ""])
def test_search_text_without_a_word_is_a_bad_request_naming_q(q: str) -> None:
    with pytest.raises(BadRequest) as caught:
        search_terms(q)
    assert [e.field for e in caught.value.errors] == ["q"]


# -- sort keys ----------------------------------------------------------------------------------


def test_every_sort_has_a_total_key_ending_in_id() -> None:
    assert set(SORT_KEYS) == set(Sort)
    for sort, key in SORT_KEYS.items():
        assert key.columns[-1] == "id", sort
        assert key.descending == sort.value.startswith("-"), sort
        assert SORT_KEYS[Sort(sort.value.lstrip("-"))].columns == key.columns
