"""Pydantic models for every todo payload that crosses a boundary, and the list query."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

# The field types are shared with the event catalog, which must not import functions.
from events.fields import DateTime, Notes, Priority, Status, Tag, Tags, Text, Title
from functions.core.todo_rules import Sort  # with its keys there, where no pydantic is needed

# Every model here builds its validator on first use, not at import: a function pays only
# for the models it uses (todo-get never builds TodoCreate), and cold start is a feature.
_LAZY = ConfigDict(defer_build=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True)


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

    model_config = _LAZY

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

    model_config = _LAZY

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
