"""Field types shared by the REST bodies (functions) and the event catalog (events).

They live here, in the catalog package, because `events` must not import
`functions`: the todo functions import them from here instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

from events.patterns import OWNER_PATTERN


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

# Who a todo belongs to (events.patterns): functions.core.auth checks owners with it too.
Owner = Annotated[str, Field(pattern=OWNER_PATTERN, description="The todo's owner.")]

MAX_NUMBER = 2**31 - 1
TodoNumber = Annotated[int, Field(ge=1, le=MAX_NUMBER, description="Per-owner todo number.")]
TodoRef = Annotated[
    UUID | TodoNumber,
    Field(description="The todo's id (UUID) or its per-owner number, as in the REST paths."),
]


class Status(StrEnum):
    open = "open"
    done = "done"


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
