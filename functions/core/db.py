"""PostgreSQL access: one lazy pg8000 connection per worker thread, reconnecting by itself.

Reads that hit a dropped connection retry once on a fresh one. Writes run in an
explicit transaction and retry once only when the connection failed before
COMMIT was sent (PostgreSQL rolled the transaction back, so nothing ran); a
failure during COMMIT has an unknown outcome and is reported, never retried.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native
from pg8000.converters import timestamptz_in
from pg8000.exceptions import DatabaseError, InterfaceError

from functions.core import spans
from functions.core.errors import Unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

# SQLSTATEs that mean "this connection is gone or pointed at the wrong server".
_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03", "25006")
# SQLSTATEs of a server too busy to do the work now, with nothing done: a statement
# cancelled by statement_timeout (57014) or lock_timeout (55P03), a serialization failure
# or deadlock (40001, 40P01) rolls its transaction back; no connection slot free (53300)
# or resources exhausted (53xxx) means it never began. The caller gets 503, retry later.
_BUSY_STATES = ("57014", "55P03", "40001", "40P01", "53")


def connect_kwargs(url: str) -> dict[str, Any]:
    """Turn a libpq-style URL into pg8000 keyword arguments (TCP or Unix socket, TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("DATABASE_URL must start with postgresql://")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}  # values come out decoded
    kwargs: dict[str, Any] = {
        "user": unquote(parts.username) if parts.username else query.get("user", "postgres"),
        "database": unquote(parts.path.lstrip("/")) or query.get("dbname", "postgres"),
    }
    password = unquote(parts.password) if parts.password is not None else query.get("password")
    if password:
        kwargs["password"] = password
    # libpq names a socket directory in the host part as %2F…; hostname would lowercase it
    raw_host = parts.netloc.rpartition("@")[2]
    if parts.port is not None:
        raw_host = raw_host.rpartition(":")[0]
    socket_host = unquote(raw_host) if raw_host[:3].upper() == "%2F" else None
    host = query.get("host") or socket_host or parts.hostname or ""
    port = parts.port or int(query.get("port", 5432))
    if host.startswith("/"):
        kwargs["unix_sock"] = f"{host}/.s.PGSQL.{port}"
    else:
        kwargs["host"] = host or "127.0.0.1"
        kwargs["port"] = port
    sslmode = query.get("sslmode", "disable")
    if sslmode in ("require", "prefer", "allow"):
        # Encrypted, chain not verified: a bare client context. create_default_context
        # loads the system's whole CA bundle (25-45 ms of CPU and ~1 MB for each context)
        # only for a verification this mode switches off.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        kwargs["ssl_context"] = context
    elif sslmode == "disable":
        # pg8000 reads a missing ssl_context as "prefer": each connect builds a default
        # context (the whole CA bundle, for every thread's connection) and asks the server
        # for TLS first, one more round trip. False is its "never": plain from the first
        # byte, as libpq's sslmode=disable.
        kwargs["ssl_context"] = False
    elif sslmode in ("verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=query.get("sslrootcert"))
        context.check_hostname = sslmode == "verify-full"
        kwargs["ssl_context"] = context
    return kwargs


def _timestamptz(text: str) -> datetime | str:
    """PostgreSQL's timestamptz text (`2026-11-26 09:00:00.123+00`) as an aware datetime.

    pg8000 parses it with strptime, about 12 µs a value, which a page of 50 todos pays a
    hundred times; fromisoformat is C. pg8000's own parser stays for what fromisoformat
    refuses (infinity, years outside 1–9999).
    """
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return timestamptz_in(text)  # type: ignore[no-any-return]


def sqlstate(exc: DatabaseError) -> str | None:
    """The SQLSTATE of a server error (`23505`), if pg8000 got one."""
    if exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("C", "")) or None
    return None


def is_connection_error(exc: BaseException) -> bool:
    """True when the error means the connection is unusable (not a bad statement)."""
    if isinstance(exc, InterfaceError | OSError):
        return True
    if isinstance(exc, DatabaseError):
        code = sqlstate(exc) or ""
        return code.startswith(_CONNECTION_STATES[0]) or code in _CONNECTION_STATES[1:]
    return False


def is_busy_error(exc: BaseException) -> bool:
    """True when the server refused or cancelled the work for load, not for what it was."""
    if not isinstance(exc, DatabaseError) or isinstance(exc, InterfaceError):
        return False
    code = sqlstate(exc) or ""
    return code in _BUSY_STATES or code.startswith("53")


def _busy(exc: BaseException) -> Unavailable:
    log.warning("the database is busy (SQLSTATE %s); answering 503", sqlstate(exc))  # type: ignore[arg-type]
    return Unavailable("the database is busy; retry shortly", headers={"Retry-After": "1"})


def span_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What every SQL span says about the server: the system and the database, no more.

    The platform has one database behind one address; repeating the address on every
    span would cost more (each attribute is cleaned, encoded, sent) than it tells.
    """
    return {"db.system.name": "postgresql", "db.namespace": kwargs.get("database")}


def text_array(values: list[Any] | tuple[Any, ...]) -> str:
    """A PostgreSQL array literal of text in which every element is quoted.

    pg8000 quotes an element only when it must, and takes "NULL" to need it but not
    "null" or "nULL", which PostgreSQL reads, unquoted, as a NULL element: a tag
    "nULL" became a NULL in todos.tags (found by tests/test_bad_input.py's fuzzing).
    Send it with `CAST(:name AS text[])`.
    """
    quoted = ('"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"


class Connection:
    """A thin wrapper over a pg8000 native connection that returns rows as dicts.

    Each distinct SQL text is prepared once per connection and then runs in one round
    trip (Bind/Execute/Sync); pg8000's unnamed path takes three (Parse, Describe, then
    Bind/Execute) and re-parses the SQL for its :names in Python every time. Our SQL
    texts are parameterized, so they are few; past PREPARED_MAX the rest run unnamed.
    In the cluster PgBouncer (transaction mode) tracks them (`max_prepared_statements`
    in cnpg/cluster/pooler.yaml, which must stay above PREPARED_MAX).

    Every statement it runs, transaction control included, gets a span (`spans.sql`).
    """

    PREPARED_MAX = 100

    def __init__(
        self, raw: pg8000.native.Connection, attributes: dict[str, Any] | None = None
    ) -> None:
        self.raw = raw
        self.attributes = attributes or {"db.system.name": "postgresql"}
        self._prepared: dict[str, pg8000.native.PreparedStatement] = {}
        # True once pg8000 failed on our side mid-statement (a value it cannot encode or
        # decode): replies may be left unread, and the next statement would read this one's
        # answers as its own. Such a connection is closed, never reused.
        self.broken = False

    def _run(self, sql: str, params: dict[str, Any]) -> tuple[list[Any], Any, int]:
        """(rows, column descriptions, row count) of one statement."""
        for name, value in params.items():
            if isinstance(value, list | tuple):
                params[name] = text_array(value)
        with spans.sql(sql, self.attributes) as span:
            try:
                statement = self._prepared.get(sql)
                if statement is None and len(self._prepared) < self.PREPARED_MAX:
                    statement = self._prepared[sql] = self.raw.prepare(sql)
                if statement is None:
                    rows = self.raw.run(sql, **params)
                    return rows, self.raw.columns, self.raw.row_count
                rows = statement.run(**params)
                # pg8000's PreparedStatement has no row_count of its own; its context has.
                return rows, statement.columns, statement._context.row_count
            except DatabaseError as exc:
                code = sqlstate(exc)
                # The SQLSTATE only: the server's message may quote the values.
                span.set("db.response.status_code", code)
                if code == "0A000":  # "cached plan must not change result type": a migration
                    self._prepared.pop(sql, None)
                raise  # the server's error: pg8000 read up to ReadyForQuery, still in step
            except BaseException:
                self.broken = True
                raise

    def control(self, sql: str) -> None:
        """START TRANSACTION, COMMIT, ROLLBACK: outside the broken-connection bookkeeping."""
        with spans.sql(sql, self.attributes):
            self.raw.run(sql)  # no parameters: the simple protocol, one round trip

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        rows, columns, _ = self._run(sql, params)
        if not columns:
            return []
        names = [c["name"] for c in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def one(self, sql: str, **params: Any) -> dict[str, Any] | None:
        rows = self.all(sql, **params)
        return rows[0] if rows else None

    def execute(self, sql: str, **params: Any) -> int:
        return self._run(sql, params)[2]


class _CommitFailed(Exception):
    """The connection broke while COMMIT was in flight: the outcome is unknown."""


class Transactions(Protocol):
    """What the store needs: a Database, or a wrapper that adds a step to each transaction."""

    def read(self, work: Callable[[Connection], T]) -> T: ...

    def transaction(self, work: Callable[[Connection], T]) -> T: ...


class Database:
    """Lazily opened, per-thread connections to one PostgreSQL database."""

    def __init__(self, url: str, *, name: str = "todo-platform"):
        self._kwargs = connect_kwargs(url)
        self._kwargs.setdefault("application_name", name)
        self._kwargs.setdefault("timeout", 10)
        # A startup parameter, not a SET: PgBouncer re-applies it on every server connection.
        # Statement timeouts are database defaults (migration 0002) for the same reason.
        self._kwargs.setdefault("startup_params", {"TimeZone": "UTC"})
        self._attributes = span_attributes(self._kwargs)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[pg8000.native.Connection] = set()

    def _connect(self) -> Connection:
        raw = pg8000.native.Connection(**self._kwargs)
        raw.register_in_adapter(pg8000.native.TIMESTAMPTZ, _timestamptz)
        with self._lock:
            self._open.add(raw)
        return Connection(raw, self._attributes)

    def _conn(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except Exception as exc:
                if is_connection_error(exc):
                    raise Unavailable("the database is not reachable; retry shortly") from exc
                if is_busy_error(exc):
                    raise _busy(exc) from exc
                raise
            self._local.conn = conn
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                self._open.discard(conn.raw)
            # it is already broken; closing is best effort
            with contextlib.suppress(Exception):
                conn.raw.close()

    def read(self, work: Callable[[Connection], T]) -> T:
        """Run read-only work in autocommit; one retry on a fresh connection if it dropped."""
        for attempt in (1, 2):
            conn = self._conn()
            try:
                return work(conn)
            except Exception as exc:
                if not is_connection_error(exc):
                    if conn.broken:
                        self._discard()
                    if is_busy_error(exc):
                        raise _busy(exc) from exc
                    raise
                self._discard()
                if attempt == 2:
                    raise Unavailable("the database connection was lost; retry shortly") from exc
                log.warning("database connection lost during a read; retrying once")
        raise AssertionError("unreachable")

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run work in one transaction; retried once only if it provably did not commit."""
        for attempt in (1, 2):
            conn = self._conn()
            try:
                return self._run_transaction(conn, work)
            except _CommitFailed as exc:
                self._discard()
                raise Unavailable(
                    "the database connection was lost while committing; the outcome is "
                    "unknown, retry with the same Idempotency-Key"
                ) from exc.__cause__
            except Exception as exc:
                if not is_connection_error(exc):
                    if conn.broken:
                        self._discard()  # closing it rolls the transaction back
                    if is_busy_error(exc):
                        raise _busy(exc) from exc  # rolled back: nothing was written
                    raise
                self._discard()
                if attempt == 2:
                    raise Unavailable("the database connection was lost; retry shortly") from exc
                log.warning("database connection lost before commit; retrying the transaction")
        raise AssertionError("unreachable")

    @staticmethod
    def _run_transaction(conn: Connection, work: Callable[[Connection], T]) -> T:
        conn.control("START TRANSACTION")
        try:
            result = work(conn)
        except BaseException:
            if conn.broken:
                raise  # out of step: a ROLLBACK would read stale replies; the caller closes it
            try:
                conn.control("ROLLBACK")
            except Exception as rollback_exc:
                if not is_connection_error(rollback_exc):
                    raise
            raise
        try:
            conn.control("COMMIT")
        except Exception as exc:
            if is_connection_error(exc):
                raise _CommitFailed() from exc
            raise
        return result

    def ping(self) -> None:
        self.read(lambda c: c.all("SELECT 1"))

    def close_all(self) -> None:
        with self._lock:
            conns, self._open = list(self._open), set()
        for raw in conns:
            with contextlib.suppress(Exception):
                raw.close()
        self._local = threading.local()


_database: Database | None = None
_database_lock = threading.Lock()


def database() -> Database:
    """The process-wide Database, created once on first use from the settings."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                from functions.core.settings import settings

                s = settings()
                _database = Database(s.database_url)
    return _database
