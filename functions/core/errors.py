"""One error hierarchy for the platform; each way in maps it to its own wire format in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PROBLEM_BASE = "https://todo-platform.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    """One invalid input: `field` names it (`title`, `tags.2`, `query.limit`, `header.If-Match`)."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ProblemError(Exception):
    """An error a caller can act on; becomes an RFC 9457 problem document over HTTP."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        if self.errors:
            doc["errors"] = [e.as_dict() for e in self.errors]
        return doc

    def body(self, instance: str | None = None) -> bytes:
        """The problem document as sent: UTF-8 JSON."""
        return json.dumps(self.problem(instance), ensure_ascii=False).encode()


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation", "Invalid input"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class IdempotencyConflict(ProblemError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency key reused"


class Unavailable(ProblemError):
    """The database could not be reached or the outcome is unknown; safe to retry."""

    status, slug, title = 503, "unavailable", "Service unavailable"


class InternalError(ProblemError):
    """A bug: the details go to the log, never to the caller."""

    status, slug, title = 500, "internal", "Internal error"
