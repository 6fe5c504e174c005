"""Pure rules for todos: references, ETags and If-Match, search terms and sort keys."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from functions.core.errors import BadRequest, FieldError, PreconditionFailed

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^[1-9][0-9]{0,9}$")
_ETAG = re.compile(r'^\s*(W/)?"([^"]*)"\s*$')
MAX_NUMBER = 2**31 - 1
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class TodoRef:
    """A todo named by its id (UUID) or by its owner's number for it."""

    id: UUID | None = None
    number: int | None = None


def parse_ref(raw: str) -> TodoRef:
    # fullmatch: `$` alone would let a final newline through ("1\n" naming todo 1).
    if _UUID.fullmatch(raw):
        return TodoRef(id=UUID(raw))
    if _NUMBER.fullmatch(raw) and int(raw) <= MAX_NUMBER:
        return TodoRef(number=int(raw))
    raise BadRequest(
        "a todo is named by its id (a UUID) or its number",
        errors=[FieldError("id", "must be a UUID or a positive todo number")],
    )


def ref_of(value: UUID | int) -> TodoRef:
    """The reference an event names: a UUID or a number (the catalog's TodoRef)."""
    return TodoRef(id=value) if isinstance(value, UUID) else TodoRef(number=value)


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> set[int] | None:
    """The versions If-Match accepts; None means any (absent or `*`)."""
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for part in header.split(","):
        m = _ETAG.match(part)
        if m is None:
            raise BadRequest(
                "If-Match must list entity tags",
                errors=[FieldError("If-Match", 'expected an ETag such as "3"')],
            )
        # Weak tags never match under If-Match's strong comparison (RFC 9110 §13.1.1).
        if m.group(1) is None and m.group(2).isdigit():
            versions.add(int(m.group(2)))
    return versions


def check_version(current: int, accepted: set[int] | None) -> None:
    if accepted is not None and current not in accepted:
        raise PreconditionFailed(
            "the todo changed since you read it; fetch it again",
            errors=[FieldError("If-Match", f"current version is {etag(current)}")],
            headers={"ETag": etag(current)},
        )


def request_hash(payload: dict[str, Any]) -> str:
    """A fingerprint of a request body, independent of key order and whitespace."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def search_terms(q: str) -> str:
    """The free text to search for, once it has a letter or digit.

    The store lets PostgreSQL split it into words with the parser and dictionary that built
    the `search` column, so the words always line up with the indexed ones (`example.com`,
    `v1.2`, `éclair` with a combining accent); each word then matches as a prefix.
    """
    if not any(ch.isalnum() for ch in q):
        raise BadRequest(
            "the search has no words", errors=[FieldError("q", "must contain a letter or digit")]
        )
    return q


# The orders `GET /api/v1/todos?sort=` offers; `-` is descending. (No docstring: it would
# become the enum's description in the served OpenAPI document.)
class Sort(StrEnum):
    created = "created"
    created_desc = "-created"
    due = "due"
    due_desc = "-due"
    priority = "priority"
    priority_desc = "-priority"


@dataclass(frozen=True)
class SortKey:
    """How a sort order maps onto its index: key columns, direction and cursor encoding."""

    columns: tuple[str, ...]  # ends with id; all compared as one row value
    descending: bool


SORT_KEYS: dict[Sort, SortKey] = {
    Sort.created: SortKey(("created_at", "id"), False),
    Sort.created_desc: SortKey(("created_at", "id"), True),
    Sort.due: SortKey(("due_key", "id"), False),
    Sort.due_desc: SortKey(("due_key", "id"), True),
    Sort.priority: SortKey(("priority_rank", "created_at", "id"), False),
    Sort.priority_desc: SortKey(("priority_rank", "created_at", "id"), True),
}


def parse_idempotency_key(header: str | None) -> str | None:
    if header is None:
        return None
    if not IDEMPOTENCY_KEY.match(header):
        raise BadRequest(
            "the Idempotency-Key header is not valid",
            errors=[FieldError("Idempotency-Key", "1–255 visible ASCII characters")],
        )
    return header
