"""Versioned `.sql` migrations, applied in order under an advisory lock (safe twice or at once)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import pg8000.native

from functions.core.db import connect_kwargs

# Any constant works; it only has to be the same for every migrator of this database.
_LOCK_ID = 7_261_001


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """An applied migration's file changed, or a migration failed."""


def available() -> list[Migration]:
    folder = resources.files("functions.core") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [Migration(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


def apply_migrations(database_url: str) -> list[str]:
    """Apply every pending migration; returns the versions this call applied."""
    conn = pg8000.native.Connection(**connect_kwargs(database_url), application_name="migrate")
    try:
        conn.run("SELECT pg_advisory_lock(:id)", id=_LOCK_ID)
        try:
            conn.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = dict(conn.run("SELECT version, checksum FROM schema_migrations"))
            done: list[str] = []
            for migration in available():
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version} changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                conn.run("START TRANSACTION")
                try:
                    conn.run(migration.sql)
                    conn.run(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (:v, :c)",
                        v=migration.version,
                        c=migration.checksum,
                    )
                    conn.run("COMMIT")
                except Exception:
                    conn.run("ROLLBACK")
                    raise
                done.append(migration.version)
            return done
        finally:
            conn.run("SELECT pg_advisory_unlock(:id)", id=_LOCK_ID)
    finally:
        conn.close()
