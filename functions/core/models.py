"""Pydantic models for every todo payload that crosses a boundary, and the list query."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


_DATE_TIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _date_time_text(value: Any) -> Any:
    # Pydantic would read a number (or a string of digits) as a Unix timestamp.
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME_TEXT.match(value)):
        return value
    raise ValueError("must be an RFC 3339 date-time string with a time zone")


def _representable(value: datetime) -> datetime:
    # Year 1 at +01:00 is year 0 in UTC: neither Python nor the driver can hold that instant.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 in UTC") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
DateTime = Annotated[
    AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(_representable)
]
Title = Annotated[Text, Field(min_length=1, max_length=500, description="1–500 characters.")]
Notes = Annotated[Text, Field(max_length=10_000, description="Up to 10 000 characters.")]
Tag = Annotated[Text, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Tags = Annotated[
    list[Tag], Field(max_length=20, description="Up to 20 tags, each 1–64 non-space characters.")
]


class Status(StrEnum):
    open = "open"
    done = "done"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"


class Sort(StrEnum):
    created = "created"
    created_desc = "-created"
    due = "due"
    due_desc = "-due"
    priority = "priority"
    priority_desc = "-priority"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class TodoCreate(_Strict):
    """The body of `POST /api/v1/todos`."""

    title: Title
    notes: Notes = ""
    priority: Priority = Priority.normal
    due_at: DateTime | None = Field(
        default=None, description="RFC 3339 date-time with a time zone."
    )
    tags: Tags = Field(default_factory=list)


class TodoPatch(_Strict):
    """The body of `PATCH /api/v1/todos/{id}`: only the fields present change; null clears."""

    title: Title | None = None
    notes: Notes | None = None
    priority: Priority | None = None
    due_at: DateTime | None = None
    tags: Tags | None = None


class Todo(BaseModel):
    """A todo as the API returns it; `version` is also its ETag."""

    id: UUID
    number: int = Field(description="Per-owner number humans use: 'complete 12'.")
    title: str
    notes: str
    status: Status
    priority: Priority
    due_at: datetime | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int


class TodoPage(BaseModel):
    """One page of `GET /api/v1/todos`; pass `next_cursor` back as `cursor` for the next."""

    items: list[Todo]
    next_cursor: str | None


class ListQuery(_Strict):
    """The query string of `GET /api/v1/todos`."""

    status: Status | None = None
    tag: Tag | None = None
    due_before: DateTime | None = None
    due_after: DateTime | None = None
    q: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    sort: Sort = Sort.created_desc
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=1000)] | None = None
