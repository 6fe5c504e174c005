"""The bench's PostgreSQL: embedded, migrated, with tokens, a todo to read and the scale data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pg8000.native

from functions.core.auth import create_token
from functions.core.db import Database, connect_kwargs
from functions.core.migrate import apply_migrations
from functions.core.models import TodoCreate
from functions.core.outbox import Outbox
from functions.core.todo_store import create_todo
from functions.platform.embedded_pg import EmbeddedPostgres

OWNER = "bench"
SCALE_OWNERS = 1_000
SCALE_PER_OWNER = 1_000


@dataclass
class BenchDatabase:
    url: str
    db: Database
    token: str
    todo_number: int
    _users: list[str] = field(default_factory=list)

    def new_todo(self) -> int:
        """A fresh todo of the bench owner (for update, complete and delete): its number."""
        todo, _ = create_todo(
            self.db, OWNER, TodoCreate(title="bench todo"), None, outbox=Outbox("bench")
        )
        return todo.number

    def users(self, count: int) -> list[str]:
        """Tokens of `count` owners (`bench-user-NNN`), each with todo number 1.

        Many users, because one user's creates take turns by design (per-owner numbers:
        the counter row stays locked until COMMIT), which no function speed changes.
        """
        for i in range(len(self._users), count):
            owner = f"bench-user-{i:03d}"
            self._users.append(create_token(self.db, owner, name="bench"))
            create_todo(self.db, owner, TodoCreate(title="mine"), None, outbox=Outbox("bench"))
        return self._users[:count]

    def seed_scale(self) -> str:
        """1 000 000 todos across 1 000 owners (idempotent); a token of one of them."""
        owner = f"scale-{SCALE_OWNERS // 2:04d}"
        have = self.db.read(
            lambda c: c.one("SELECT count(*) AS n FROM todos WHERE owner = :o", o=owner)
        )
        if not have or have["n"] < SCALE_PER_OWNER:
            # A connection of its own: the seeding runs for minutes, far past the database's
            # statement timeout, and VACUUM cannot run inside a transaction.
            conn = pg8000.native.Connection(**connect_kwargs(self.url))
            try:
                conn.run("SET statement_timeout = 0")
                conn.run("DELETE FROM todos WHERE owner LIKE 'scale-%'")
                # One statement: ids, per-owner numbers, spread creation times and due dates.
                conn.run(
                    "INSERT INTO todos "
                    "(id, owner, number, title, priority, due_at, tags, created_at) "
                    "SELECT gen_random_uuid(), 'scale-' || lpad((o - 1)::text, 4, '0'), n, "
                    "'todo ' || n || ' of owner ' || o, "
                    "(ARRAY['low','normal','high'])[1 + (n % 3)], "
                    "CASE WHEN n % 4 = 0 THEN NULL ELSE now() + (n || ' hours')::interval END, "
                    "ARRAY['tag' || (n % 10)], now() - ((o * :per + n) || ' seconds')::interval "
                    "FROM generate_series(1, :owners) AS o, generate_series(1, :per) AS n",
                    owners=SCALE_OWNERS,
                    per=SCALE_PER_OWNER,
                )
                conn.run(
                    "INSERT INTO owner_counters (owner, last_number) "
                    "SELECT DISTINCT owner, CAST(:per AS integer) FROM todos "
                    "WHERE owner LIKE 'scale-%' "
                    "ON CONFLICT (owner) DO UPDATE SET last_number = EXCLUDED.last_number",
                    per=SCALE_PER_OWNER,
                )
                conn.run("VACUUM ANALYZE todos")
            finally:
                conn.close()
        return create_token(self.db, owner, name="bench")


@contextmanager
def bench_database() -> Iterator[BenchDatabase]:
    data = Path(tempfile.mkdtemp(prefix="todo-bench-"))
    os.chmod(data, 0o755)  # PostgreSQL runs as its own user under root
    server = EmbeddedPostgres(data / "postgres")
    url = server.start()
    db = Database(url, name="bench")
    try:
        apply_migrations(url)
        token = create_token(db, OWNER, name="bench")
        bench = BenchDatabase(url, db, token, 0)
        bench.todo_number = bench.new_todo()
        yield bench
    finally:
        db.close_all()
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
