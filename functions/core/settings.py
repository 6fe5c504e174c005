"""Settings read once from the environment into a typed object; a missing one fails at start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


class ConfigError(SystemExit):
    """A required setting is missing or invalid; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    internal_token: str | None
    log_level: str
    log_format: str
    k_sink: str | None = None  # where events go: the broker (Knative's SinkBinding sets it)
    reminder_window_minutes: int = 15


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"todo-platform: {name} must be an integer, got {raw!r}") from None


def _positive(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise ConfigError(f"todo-platform: {name} must be at least 1, got {value}")
    return value


@cache
def settings() -> Settings:
    """The process's settings, read on first use; raises ConfigError with one clear line."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url:
        raise ConfigError("todo-platform: missing required setting DATABASE_URL")
    log_format = os.environ.get("LOG_FORMAT", "json")
    if log_format not in ("json", "text"):
        raise ConfigError(f"todo-platform: LOG_FORMAT must be json or text, got {log_format!r}")
    return Settings(
        database_url=database_url,
        internal_token=os.environ.get("TODO_INTERNAL_TOKEN") or None,
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        log_format=log_format,
        k_sink=os.environ.get("K_SINK") or None,
        reminder_window_minutes=_positive("REMINDER_WINDOW_MINUTES", 15),
    )
