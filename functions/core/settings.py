"""Settings read once from the environment into a typed object; a missing one fails at start.

Every function needs DATABASE_URL. Beyond that each function declares in the
registry (`FunctionSpec.requires`) the settings it cannot start without, and
`require` checks exactly those: the todo functions never need Slack's secrets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

SLACK_API_DEFAULT = "https://slack.com/api/"


class ConfigError(SystemExit):
    """A required setting is missing or invalid; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    internal_token: str | None
    log_level: str
    log_format: str
    slack_signing_secret: str | None = None
    slack_bot_token: str | None = None
    slack_api_url: str = SLACK_API_DEFAULT
    slack_notify_channel: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    mcp_url: str | None = None
    k_sink: str | None = None
    agent_timeout_seconds: int = 25
    reminder_window_minutes: int = 15
    # How long a checked token is trusted without asking PostgreSQL again: a revocation
    # takes effect within this many seconds (0: every request asks). docs/api.md.
    token_cache_seconds: int = 10


# The optional settings by environment name: `require` checks these by that name.
OPTIONAL = {
    "TODO_INTERNAL_TOKEN": "internal_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_NOTIFY_CHANNEL": "slack_notify_channel",
    "OPENAI_API_KEY": "openai_api_key",
    "OPENAI_BASE_URL": "openai_base_url",
    "OPENAI_MODEL": "openai_model",
    "MCP_URL": "mcp_url",
    "K_SINK": "k_sink",
}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"todo-platform: {name} must be an integer, got {raw!r}") from None


def _url(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"todo-platform: {name} must be an http(s) URL, got {value!r}")
    return value if value.endswith("/") else value + "/"


def _positive(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise ConfigError(f"todo-platform: {name} must be at least 1, got {value}")
    return value


def _non_negative(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 0:
        raise ConfigError(f"todo-platform: {name} must be 0 or more, got {value}")
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
    optional = {attribute: os.environ.get(env) or None for env, attribute in OPTIONAL.items()}
    return Settings(
        database_url=database_url,
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        log_format=log_format,
        slack_api_url=_url("SLACK_API_URL", SLACK_API_DEFAULT),
        agent_timeout_seconds=_int("AGENT_TIMEOUT_SECONDS", 25),
        reminder_window_minutes=_positive("REMINDER_WINDOW_MINUTES", 15),
        token_cache_seconds=_non_negative("TOKEN_CACHE_SECONDS", 10),
        **optional,
    )


def missing(names: Iterable[str]) -> list[str]:
    """Which of the named settings (environment names from OPTIONAL) are unset."""
    config = settings()
    return [name for name in names if getattr(config, OPTIONAL[name]) is None]


def require(names: Iterable[str]) -> Settings:
    """The settings, once every named one is set; else ConfigError naming the first missing."""
    config = settings()
    absent = missing(names)
    if absent:
        raise ConfigError(f"todo-platform: missing required setting {absent[0]}")
    return config
