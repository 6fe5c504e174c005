"""Process-wide logging: JSON lines (or text) on stderr, configured once, secrets redacted.

A JSON line carries time, level, message, service, logger, the `trace_id` and `span_id`
of the active span (telemetry on) and any `extra` facts. Every handler, the OTLP one
included, first passes the record through `Redact`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TextIO

from functions.core import telemetry

_configured = False
_lock = threading.Lock()
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

REDACTED = "[redacted]"
# Extra keys whose values are never written: `Authorization`, `api_token`, `client_secret` ...
_SENSITIVE_KEY = re.compile(r"authorization|token|secret|password|passwd|cookie|api[_-]?key", re.I)
# Credentials that may hide inside free text (a message, an exception, a DSN); one search
# for any of them first, so the common clean line costs one regex pass.
_MAYBE_SENSITIVE = re.compile(r"(?i)bearer|basic|://|tp_|xox|xapp|sk-|sk_|password|secret|token")
# The same search on ASCII text, lowercased first: a case-insensitive alternation costs
# 3.4 us a line, this 0.4 (every request writes an access line of four such strings).
_MAYBE_SENSITIVE_LOWER = re.compile(_MAYBE_SENSITIVE.pattern.removeprefix("(?i)"))
_SENSITIVE_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(://[^/\s:@]+):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
    (re.compile(r"\b(tp|xox[abpr]|xapp|sk)[_-][\w-]{16,}"), REDACTED),
    (re.compile(r"(?i)\b(password|secret|token)=[^\s&]+"), r"\1=" + REDACTED),
)


def scrub(text: str) -> str:
    """Text with bearer tokens, URL passwords and API keys replaced by `[redacted]`."""
    if text.isascii():
        if not _MAYBE_SENSITIVE_LOWER.search(text.lower()):
            return text
    elif not _MAYBE_SENSITIVE.search(text):  # (?i) also matches "K" (Kelvin) for "k", ...
        return text
    for pattern, replacement in _SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=1024)
def sensitive_key(key: str) -> bool:
    return bool(_SENSITIVE_KEY.search(key))


_PLAIN = frozenset({int, float, bool, type(None)})


def redact(value: Any, key: str = "") -> Any:
    """A value safe to log: sensitive keys' values replaced, strings scrubbed, recursively."""
    if key and sensitive_key(key):
        return REDACTED
    if type(value) in _PLAIN:  # a status, a duration: no Mapping check (an ABC, slow)
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class Redact(logging.Filter):
    """Rewrites a record in place before any handler formats it, once however many handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "_extras" in record.__dict__:
            return True  # another handler's filter got here first
        try:
            message = record.getMessage()
        except Exception:  # a bad format string; the handler reports it when it formats
            return True
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        facts = {key: redact(value, key) for key, value in extras(record).items()}
        record.__dict__.update(facts)
        record._extras = facts
        return True


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The facts a call site passed with `extra=` (redacted, once `Redact` has seen it)."""
    known = record.__dict__.get("_extras")
    if known is not None:
        return known
    return {
        k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, service, logger, trace ids, `extra` facts."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "service": telemetry.current_service() or self.service,
            "logger": record.name,
        }
        ids = telemetry.current_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        line.update(extras(record))
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
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
        handler.addFilter(Redact())
        if fmt == "json":
            handler.setFormatter(JsonFormatter(service_name()))
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        # Neither format shows where a record was made or by which thread or process: skip
        # collecting it on every record (the logging HOWTO's "Optimization" section).
        logging._srcfile = None  # type: ignore[attr-defined]
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        root = logging.getLogger()
        # Telemetry's OTLP handler may already be there (the gateway configures it first).
        kept = [h for h in root.handlers if getattr(h, "platform_handler", False)]
        root.handlers[:] = [handler, *kept]
        root.setLevel(level)
        _configured = True
