"""Process-wide logging: JSON lines (or text) on stderr, configured once from the settings."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import TextIO

_configured = False
_lock = threading.Lock()
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, service, logger and any `extra` facts."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "service": self.service,
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def service_name() -> str:
    return (
        os.environ.get("OTEL_SERVICE_NAME")
        or os.environ.get("K_SERVICE")
        or os.environ.get("FUNCTION_TARGET", "todo-platform").replace("_", "-")
    )


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Install the platform's handler on the root logger; later calls do nothing."""
    global _configured
    with _lock:
        if _configured:
            return
        handler = _StderrHandler()
        if fmt == "json":
            handler.setFormatter(JsonFormatter(service_name()))
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(level)
        _configured = True
