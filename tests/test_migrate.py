"""Migrations: applied once, in order, under an advisory lock; an edited applied one is refused."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pg8000.native
import pytest

from functions.core.db import connect_kwargs
from functions.core.migrate import MigrationError, apply_migrations, available
from functions.platform.embedded_pg import EmbeddedPostgres


def _admin(pg: EmbeddedPostgres) -> pg8000.native.Connection:
    kwargs = connect_kwargs(pg.url)
    kwargs["database"] = "postgres"
    return pg8000.native.Connection(**kwargs)


@pytest.fixture
def scratch_url(pg: EmbeddedPostgres) -> Iterator[str]:
    """A brand-new, empty database on the fixture's server, dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = _admin(pg)
    try:
        admin.run(f'CREATE DATABASE "{name}"')
        yield f"postgresql://postgres@/{name}?host={quote(pg.socket_dir)}"
        admin.run(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.close()


def _run(url: str, sql: str, **params: object) -> list:
    conn = pg8000.native.Connection(**connect_kwargs(url))
    try:
        return conn.run(sql, **params)
    finally:
        conn.close()


def _tables(url: str) -> list[str]:
    rows = _run(
        url,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' ORDER BY table_name",
    )
    return [row[0] for row in rows]


EXPECTED_TABLES = [
    "api_tokens",
    "dead_letters",
    "idempotency_keys",
    "outbox",
    "owner_counters",
    "platform_secrets",
    "processed_events",
    "schema_migrations",
    "todo_reminders",
    "todos",
]


def test_migrations_are_found_in_order() -> None:
    versions = [m.version for m in available()]
    assert versions[0] == "0001_todos"
    assert versions == sorted(versions)
    assert all(m.sql.strip() for m in available())


def test_a_fresh_database_gets_the_whole_schema(scratch_url: str) -> None:
    assert apply_migrations(scratch_url) == [m.version for m in available()]
    assert _tables(scratch_url) == EXPECTED_TABLES
    applied = _run(scratch_url, "SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert applied == [[m.version, m.checksum] for m in available()]
    assert len(_run(scratch_url, "SELECT value FROM platform_secrets")) == 1


def test_applying_twice_is_a_no_op(scratch_url: str) -> None:
    apply_migrations(scratch_url)
    key = _run(scratch_url, "SELECT value FROM platform_secrets")
    assert apply_migrations(scratch_url) == []
    assert _tables(scratch_url) == EXPECTED_TABLES
    assert _run(scratch_url, "SELECT count(*) FROM schema_migrations") == [[len(available())]]
    # the cursor-signing key was not regenerated
    assert _run(scratch_url, "SELECT value FROM platform_secrets") == key


def test_the_test_database_is_up_to_date(pg: EmbeddedPostgres) -> None:
    assert apply_migrations(pg.url) == []


@pytest.mark.parametrize("runners", [2, 4])
def test_concurrent_migrators_on_a_fresh_database_both_succeed(
    scratch_url: str, runners: int
) -> None:
    barrier = threading.Barrier(runners)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            barrier.wait()
            results.append(apply_migrations(scratch_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    every = [m.version for m in available()]
    # exactly one of them applied everything; the others found nothing left to do
    assert sorted(results, key=len) == [[]] * (runners - 1) + [every]
    assert _tables(scratch_url) == EXPECTED_TABLES
    assert _run(scratch_url, "SELECT count(*) FROM schema_migrations") == [[len(every)]]
    assert _run(scratch_url, "SELECT count(*) FROM platform_secrets") == [[1]]


def test_a_changed_applied_migration_is_reported(scratch_url: str) -> None:
    apply_migrations(scratch_url)
    _run(
        scratch_url,
        "UPDATE schema_migrations SET checksum = 'edited' WHERE version = :v",
        v=available()[0].version,
    )
    with pytest.raises(MigrationError, match=available()[0].version):
        apply_migrations(scratch_url)
    # the advisory lock was released: another migrator is not stuck behind it
    assert _run(
        scratch_url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    ) == [[0]]


def test_a_row_for_a_migration_that_was_never_applied_is_reported(scratch_url: str) -> None:
    """A stray row with a wrong checksum (someone edited the file after it ran elsewhere)."""
    _run(
        scratch_url,
        "CREATE TABLE schema_migrations (version text PRIMARY KEY, checksum text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())",
    )
    _run(
        scratch_url,
        "INSERT INTO schema_migrations (version, checksum) VALUES (:v, 'not-the-checksum')",
        v=available()[0].version,
    )
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(scratch_url)
    assert "todos" not in _tables(scratch_url)
