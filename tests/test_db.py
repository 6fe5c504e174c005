"""The Database class and the functions' database access against a real, restartable PostgreSQL."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from functions.core.db import Connection, Database, connect_kwargs
from functions.core.errors import Unavailable
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.conftest import Owner
from tests.helpers import TODOS, count_of, create, ids
from tests.servers import Api


@pytest.fixture
def fresh(pg: EmbeddedPostgres) -> Iterator[Database]:
    """A Database of its own, so that killing its connection touches no other test."""
    database = Database(pg.url, name=f"test-{uuid.uuid4().hex[:8]}")
    yield database
    database.close_all()


@pytest.fixture
def scratch_table(db: Database) -> Iterator[str]:
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    db.transaction(lambda c: c.execute(f"CREATE TABLE {name} (n integer)"))
    yield name
    db.transaction(lambda c: c.execute(f"DROP TABLE {name}"))


def _backend_pid(conn: Connection) -> int:
    row = conn.one("SELECT pg_backend_pid() AS pid")
    assert row is not None
    return row["pid"]


def _terminate(db: Database, pid: int) -> None:
    """Kill one backend from another connection, as a failover or an admin would."""
    killed = db.read(lambda c: c.one("SELECT pg_terminate_backend(:pid) AS ok", pid=pid))
    assert killed and killed["ok"]


def _count(db: Database, table: str) -> int:
    row = db.read(lambda c: c.one(f"SELECT count(*) AS n FROM {table}"))
    assert row is not None
    return row["n"]


# -- the Database class -------------------------------------------------------------------------


def test_a_read_retries_once_after_its_connection_drops(db: Database, fresh: Database) -> None:
    pid = fresh.read(_backend_pid)
    _terminate(db, pid)
    attempts: list[int] = []

    def work(conn: Connection) -> int:
        attempts.append(1)
        return _backend_pid(conn)

    new_pid = fresh.read(work)
    assert new_pid != pid
    assert len(attempts) == 2  # the first hit the dead connection, the retry succeeded


def test_a_read_that_fails_twice_is_unavailable(db: Database, fresh: Database) -> None:
    def work(conn: Connection) -> int:
        pid = _backend_pid(conn)
        _terminate(db, pid)
        return _backend_pid(conn)

    with pytest.raises(Unavailable):
        fresh.read(work)
    assert fresh.read(lambda c: c.one("SELECT 1 AS one")) == {"one": 1}


def test_a_statement_error_is_not_retried(fresh: Database) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> Any:
        attempts.append(1)
        return conn.all("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no_such_table"):
        fresh.read(work)
    assert attempts == [1]
    assert fresh.read(lambda c: c.one("SELECT 2 AS two")) == {"two": 2}


def test_a_write_that_fails_before_commit_is_retried_exactly_once(
    db: Database, fresh: Database, scratch_table: str
) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)")
        if len(attempts) == 1:
            _terminate(db, _backend_pid(conn))
            conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (2)")

    fresh.transaction(work)
    assert len(attempts) == 2
    rows = db.read(lambda c: c.all(f"SELECT n FROM {scratch_table}"))
    assert rows == [{"n": 1}]  # the first attempt rolled back; the retry ran once


def test_a_write_that_fails_twice_is_unavailable_and_changes_nothing(
    db: Database, fresh: Database, scratch_table: str
) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)")
        _terminate(db, _backend_pid(conn))
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (2)")

    with pytest.raises(Unavailable):
        fresh.transaction(work)
    assert len(attempts) == 2
    assert _count(db, scratch_table) == 0


def test_a_connection_lost_during_commit_is_unavailable_and_not_retried(
    fresh: Database, db: Database, scratch_table: str
) -> None:
    """A deferred trigger kills the backend while COMMIT runs: the outcome is unknown to the
    client, so the work must not run a second time."""
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        conn.execute(
            "CREATE FUNCTION pg_temp.die() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
        )
        conn.execute("CREATE TEMP TABLE doomed (n integer)")
        conn.execute(
            "CREATE CONSTRAINT TRIGGER die AFTER INSERT ON doomed "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.die()"
        )
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)")
        conn.execute("INSERT INTO doomed (n) VALUES (1)")

    with pytest.raises(Unavailable, match="outcome is unknown"):
        fresh.transaction(work)
    assert attempts == [1]
    assert _count(db, scratch_table) == 0
    assert fresh.read(lambda c: c.one("SELECT 3 AS three")) == {"three": 3}


def test_a_python_error_in_a_transaction_rolls_back_and_is_not_retried(
    db: Database, fresh: Database, scratch_table: str
) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)")
        raise LookupError("not found")

    with pytest.raises(LookupError):
        fresh.transaction(work)
    assert attempts == [1]
    assert _count(db, scratch_table) == 0


def test_each_statement_is_prepared_once_per_connection_and_past_the_cap_runs_unnamed(
    fresh: Database, scratch_table: str
) -> None:
    insert = f"INSERT INTO {scratch_table} (n) SELECT generate_series(1, :k)"
    count = f"SELECT count(*) AS n FROM {scratch_table} WHERE n <= :k"

    def work(conn: Connection) -> tuple[int, list[dict[str, Any]], int, list[dict[str, Any]]]:
        first = conn.execute(insert, k=3)
        prepared = conn._prepared[insert]
        assert conn.execute(insert, k=2) == 2 and conn._prepared[insert] is prepared
        conn.PREPARED_MAX = len(conn._prepared)  # full: what is new runs unnamed
        try:
            rows = conn.all(count, k=2)
            assert count not in conn._prepared
            return (
                first,
                rows,
                conn.execute(f"DELETE FROM {scratch_table} WHERE n = :k", k=1),
                conn.all(count, k=9),
            )
        finally:
            del conn.PREPARED_MAX

    assert fresh.transaction(work) == (3, [{"n": 4}], 2, [{"n": 3}])


def test_a_statement_cancelled_by_its_timeout_is_unavailable_and_commits_nothing(
    db: Database, fresh: Database, scratch_table: str
) -> None:
    def work(conn: Connection) -> None:
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)")
        conn.control("SET LOCAL statement_timeout = '50ms'")
        conn.all("SELECT pg_sleep(2)")

    with pytest.raises(Unavailable) as raised:
        fresh.transaction(work)
    assert raised.value.status == 503 and raised.value.headers["Retry-After"] == "1"
    assert _count(db, scratch_table) == 0
    assert fresh.read(lambda c: c.one("SELECT 1 AS one")) == {"one": 1}  # the connection lives


def test_a_read_cancelled_by_its_timeout_is_unavailable(fresh: Database) -> None:
    def work(conn: Connection) -> None:
        conn.control("SET statement_timeout = '50ms'")
        try:
            conn.all("SELECT pg_sleep(2)")
        finally:
            conn.control("RESET statement_timeout")

    with pytest.raises(Unavailable):
        fresh.read(work)


def test_a_lock_wait_past_its_timeout_is_unavailable(
    db: Database, fresh: Database, scratch_table: str
) -> None:
    db.transaction(lambda c: c.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)"))
    holding = threading.Event()
    release = threading.Event()

    def hold(conn: Connection) -> None:
        conn.execute(f"UPDATE {scratch_table} SET n = 2")
        holding.set()
        release.wait(10)

    holder = threading.Thread(target=lambda: db.transaction(hold))
    holder.start()
    try:
        assert holding.wait(10)

        def work(conn: Connection) -> None:
            conn.control("SET LOCAL lock_timeout = '50ms'")
            conn.execute(f"UPDATE {scratch_table} SET n = 3")

        with pytest.raises(Unavailable):
            fresh.transaction(work)
    finally:
        release.set()
        holder.join(10)
    assert db.read(lambda c: c.all(f"SELECT n FROM {scratch_table}")) == [{"n": 2}]


OUT_OF_RANGE = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # year 0 in UTC


def test_a_value_the_driver_cannot_send_does_not_shift_later_answers(fresh: Database) -> None:
    """pg8000 fails after part of the statement was sent; that connection's later replies must
    never be read as the answers to other statements (they could be another owner's rows)."""
    with pytest.raises(OverflowError):
        fresh.read(lambda c: c.all("SELECT CAST(:d AS timestamptz) AS d", d=OUT_OF_RANGE))
    for i in range(3):
        assert fresh.read(lambda c, i=i: c.all("SELECT CAST(:i AS int) AS i", i=i)) == [{"i": i}]


def test_a_driver_failure_in_a_transaction_commits_nothing(
    db: Database, fresh: Database, scratch_table: str
) -> None:
    def work(conn: Connection) -> None:
        conn.execute(f"INSERT INTO {scratch_table} (n) VALUES (1)")
        conn.all("SELECT CAST(:d AS timestamptz) AS d", d=OUT_OF_RANGE)

    with pytest.raises(OverflowError):
        fresh.transaction(work)
    fresh.transaction(lambda c: c.execute(f"INSERT INTO {scratch_table} (n) VALUES (2)"))
    assert db.read(lambda c: c.all(f"SELECT n FROM {scratch_table}")) == [{"n": 2}]
    assert fresh.read(lambda c: c.all("SELECT 'x' AS s")) == [{"s": "x"}]


def test_each_thread_has_its_own_connection(fresh: Database) -> None:
    barrier = threading.Barrier(4)

    def pid(_: int) -> int:
        barrier.wait()
        return fresh.read(_backend_pid)

    with ThreadPoolExecutor(4) as pool:
        assert len(set(pool.map(pid, range(4)))) == 4


def test_sessions_use_utc_and_the_database_timeouts(pg: EmbeddedPostgres) -> None:
    """Set as startup parameter and database defaults, so they hold behind PgBouncer too."""
    database = Database(pg.url)
    try:
        assert database.read(lambda c: c.one("SHOW TIME ZONE"))["TimeZone"] == "UTC"
        assert database.read(lambda c: c.one("SHOW statement_timeout"))["statement_timeout"] == "5s"
        idle = database.read(lambda c: c.one("SHOW idle_in_transaction_session_timeout"))
        assert idle == {"idle_in_transaction_session_timeout": "30s"}
    finally:
        database.close_all()


def test_an_unreachable_database_is_unavailable(tmp_path: Any) -> None:
    database = Database(f"postgresql://postgres@/todo?host={tmp_path}&port=1")
    with pytest.raises(Unavailable):
        database.read(lambda c: c.all("SELECT 1"))
    with pytest.raises(Unavailable):
        database.transaction(lambda c: c.all("SELECT 1"))


# -- connect_kwargs -----------------------------------------------------------------------------


def test_connect_kwargs_tcp_url() -> None:
    kwargs = connect_kwargs("postgresql://app:s%40cret%2F@db.example.com:6432/todos")
    assert kwargs == {
        "user": "app",
        "password": "s@cret/",
        "database": "todos",
        "host": "db.example.com",
        "port": 6432,
        "ssl_context": False,
    }


def test_connect_kwargs_defaults() -> None:
    assert connect_kwargs("postgres://localhost") == {
        "user": "postgres",
        "database": "postgres",
        "host": "localhost",
        "port": 5432,
        "ssl_context": False,
    }


def test_connect_kwargs_unix_socket_url() -> None:
    kwargs = connect_kwargs("postgresql://postgres@/todo?host=/var/run/postgresql")
    assert kwargs == {
        "user": "postgres",
        "database": "todo",
        "unix_sock": "/var/run/postgresql/.s.PGSQL.5432",
        "ssl_context": False,
    }
    encoded = connect_kwargs("postgresql:///todo?host=%2Ftmp%2FPG%20dir&port=6543&user=me")
    assert encoded["unix_sock"] == "/tmp/PG dir/.s.PGSQL.6543"
    assert encoded["user"] == "me"


def test_connect_kwargs_query_parameters() -> None:
    kwargs = connect_kwargs("postgresql://h/db?user=u&password=p%20w&dbname=ignored")
    assert (kwargs["user"], kwargs["password"], kwargs["database"]) == ("u", "p w", "db")


def test_connect_kwargs_tls_modes() -> None:
    # False, not absent: pg8000 reads an absent ssl_context as "try TLS first".
    assert connect_kwargs("postgresql://h/db")["ssl_context"] is False
    assert connect_kwargs("postgresql://h/db?sslmode=disable")["ssl_context"] is False
    required = connect_kwargs("postgresql://h/db?sslmode=require")["ssl_context"]
    assert required.verify_mode == ssl.CERT_NONE and not required.check_hostname
    # No verification, so no CA bundle loaded for it.
    assert required.cert_store_stats()["x509_ca"] == 0
    full = connect_kwargs("postgresql://h/db?sslmode=verify-full")["ssl_context"]
    assert full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname


def _first_message(url_query: str) -> bytes:
    """The first 8 bytes a Database connecting with `?url_query` sends to a listening socket."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        received: list[bytes] = []

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(8))  # then closed: the client's connect fails

        thread = threading.Thread(target=accept)
        thread.start()
        database = Database(f"postgresql://u@127.0.0.1:{port}/db?{url_query}")
        with pytest.raises(Unavailable):
            database.ping()
        thread.join(5)
    return received[0]


def test_sslmode_disable_sends_no_tls_request() -> None:
    # Int32 length, then the SSLRequest code 80877103 or the protocol version 3.0.
    ssl_request = struct.pack("!ii", 8, 80877103)
    assert _first_message("sslmode=disable")[4:] == struct.pack("!i", 196608)
    assert _first_message("")[4:] == struct.pack("!i", 196608)
    assert _first_message("sslmode=require") == ssl_request


def test_connect_kwargs_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        connect_kwargs("mysql://h/db")


def test_the_fixture_url_connects(pg: EmbeddedPostgres) -> None:
    assert "unix_sock" in connect_kwargs(pg.url)
    database = Database(pg.url)
    try:
        assert database.read(lambda c: c.one("SELECT current_database() AS d")) == {"d": "todo"}
    finally:
        database.close_all()


# -- the running functions ----------------------------------------------------------------------


def test_readyz_is_200_on_every_function(api: Api) -> None:
    for server in api.servers.values():
        assert api.session.get(server.url + "/healthz", timeout=10).json() == {"status": "ok"}
        ready = api.session.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200, (server.spec.name, ready.text)
        assert ready.json() == {"status": "ready"}


def _every_thread(api: Api, owner: Owner, path: str, n: int = 24) -> list[int]:
    """n concurrent GETs, so that every worker thread (and its connection) is exercised."""

    def get(_: int) -> int:
        return api.get(path, token=owner.token).status_code

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(get, range(n)))


@pytest.mark.slow
def test_functions_survive_a_postgresql_restart_without_restarting(
    api: Api, pg: EmbeddedPostgres, db: Database, alice: Owner
) -> None:
    todo = create(api, alice, title="before the restart")
    pids = {name: server.process.pid for name, server in api.servers.items()}
    # warm every thread's connection first, so that each holds one the restart will cut
    assert set(_every_thread(api, alice, f"{TODOS}/{todo['id']}")) == {200}
    assert set(_every_thread(api, alice, TODOS)) == {200}

    pg.restart()

    # the very first read on each function after the restart succeeds (read retry)
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).status_code == 200
    assert ids(api.get(TODOS, token=alice.token)) == [todo["id"]]
    assert set(_every_thread(api, alice, f"{TODOS}/{todo['id']}")) == {200}
    assert set(_every_thread(api, alice, TODOS)) == {200}
    # writes succeed on every write function
    second = create(api, alice, title="after the restart")
    patched = api.patch(f"{TODOS}/{todo['id']}", token=alice.token, json={"notes": "still here"})
    assert patched.status_code == 200, patched.text
    assert api.post(f"{TODOS}/{todo['id']}/complete", token=alice.token).status_code == 200
    assert api.delete(f"{TODOS}/{second['id']}", token=alice.token).status_code == 204
    assert count_of(db, alice) == 1
    for server in api.servers.values():
        assert api.session.get(server.url + "/readyz", timeout=10).status_code == 200
    assert {name: server.process.pid for name, server in api.servers.items()} == pids
    assert all(server.process.poll() is None for server in api.servers.values())


@pytest.mark.slow
def test_acknowledged_writes_survive_a_crash(api: Api, pg: EmbeddedPostgres, alice: Owner) -> None:
    created = [create(api, alice, title=f"durable {i}") for i in range(5)]
    done = api.post(f"{TODOS}/{created[0]['id']}/complete", token=alice.token)
    assert done.status_code == 200

    pg.crash_and_start()

    listed = api.get(f"{TODOS}?sort=created", token=alice.token)
    assert ids(listed) == [t["id"] for t in created]
    assert listed.json()["items"][0]["status"] == "done"
    assert create(api, alice, title="after the crash")["number"] == 6


def test_connect_kwargs_decodes_each_part_once() -> None:
    kwargs = connect_kwargs("postgresql://h/db?user=a%252Fb&password=p%2525")
    assert (kwargs["user"], kwargs["password"]) == ("a%2Fb", "p%25")


def test_connect_kwargs_percent_encoded_socket_host() -> None:
    """libpq's form for a socket directory in the host part: postgresql://%2Fvar%2Frun/db."""
    kwargs = connect_kwargs("postgresql://me@%2FTmp%2FSockets:6432/todo")
    assert kwargs["unix_sock"] == "/Tmp/Sockets/.s.PGSQL.6432"
    assert "host" not in kwargs
