"""Which database a local command uses: DATABASE_URL, or the embedded one in the data dir.

`up`, `migrate` and `token create` all go through `local_database`, so a
`token create` beside a running `up` attaches to the same embedded server
(pgserver counts the processes holding it and stops it with the last one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DATA_DIR_ENV = "TODO_PLATFORM_DATA_DIR"
DEFAULT_DATA_DIR = ".todo-platform"


class PlatformError(Exception):
    """A local command cannot go on; the message is one line for the terminal."""


@dataclass(frozen=True)
class LocalDatabase:
    url: str
    embedded_in: Path | None  # the data dir when the database is the embedded one
    applied: tuple[str, ...]  # migrations applied on the way in

    def describe(self) -> str:
        if self.embedded_in is not None:
            return f"embedded PostgreSQL in {self.embedded_in}"
        return f"DATABASE_URL {redact(self.url)}"


def data_dir(given: str | None) -> Path:
    """--data-dir, else $TODO_PLATFORM_DATA_DIR, else ./.todo-platform."""
    return Path(given or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser().resolve()


def redact(url: str) -> str:
    """The URL without its password, fit for a terminal or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


@contextmanager
def local_database(given_data_dir: str | None) -> Iterator[LocalDatabase]:
    """DATABASE_URL when set; otherwise the embedded server, started or attached to, migrated.

    The embedded server is released on exit only by the process that entered:
    gunicorn forks its worker inside this block, and the worker must not let go.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        yield LocalDatabase(url, None, tuple(migrate(url)))
        return
    from functions.platform.embedded_pg import EmbeddedPostgres

    directory = data_dir(given_data_dir)
    server = EmbeddedPostgres(directory / "postgres")
    owner_pid = os.getpid()
    try:
        url = server.start()
    except BaseException as exc:
        server.stop()
        if not isinstance(exc, Exception):
            raise
        raise PlatformError(
            f"todo-platform: the embedded PostgreSQL in {directory} did not start: {exc} "
            f"(its log: {directory / 'postgres' / 'log'})"
        ) from exc
    try:
        yield LocalDatabase(url, directory, tuple(migrate(url)))
    finally:
        if os.getpid() == owner_pid:
            server.stop()


def migrate(url: str) -> list[str]:
    """Apply pending migrations; any failure becomes one clear line."""
    from pg8000.exceptions import DatabaseError, InterfaceError

    from functions.core.migrate import MigrationError, apply_migrations

    try:
        return apply_migrations(url)
    except ValueError as exc:
        raise PlatformError(f"todo-platform: invalid DATABASE_URL: {exc}") from exc
    except (InterfaceError, OSError) as exc:
        raise PlatformError(
            f"todo-platform: cannot reach the database at {redact(url)}: {exc}"
        ) from exc
    except (DatabaseError, MigrationError) as exc:
        raise PlatformError(f"todo-platform: migrating {redact(url)} failed: {exc}") from exc
