"""PostgreSQL killed under concurrent creates through `todo-platform up`: no acknowledged write
is lost, no retried Idempotency-Key duplicates, and the functions serve again by themselves.

`up` runs against a PostgreSQL this test starts (DATABASE_URL), because `up` does not
restart an embedded server that died under it; the test kills that server with SIGKILL
(postmaster and every backend, as when its machine dies) and starts it again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil
import pytest
import requests

from functions.core.db import Database
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.helpers import TODOS
from tests.test_up import Platform, scratch_data_dir

pytestmark = pytest.mark.slow

CLIENTS = 16
BEFORE_CRASH = 2.0  # seconds of load before the kill
AFTER_RECOVERY = 3.0  # seconds of load once the functions serve again
GIVE_UP = 60.0  # a client retrying one create longer than this fails the test
RECOVERY_LIMIT = 15.0  # "within seconds": generous, on a shared two-core machine


@dataclass
class Create:
    """One create as a client sees it: every answer it got until the 201, and the replay."""

    key: str
    started: float
    answers: list[int | str] = field(default_factory=list)  # statuses, or the transport error
    todo_id: str | None = None
    acknowledged_at: float | None = None
    replay_id: str | None = None
    replay_flag: str | None = None


class Client(threading.Thread):
    """Creates todos one after another, each with its own Idempotency-Key.

    A create that fails (503, a dropped connection, a timeout) is retried with the
    same key and body until it is answered 201. Each acknowledged create is then
    sent once more, as a client that never heard the first answer would.
    """

    def __init__(self, url: str, token: str, name: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.name_, self.stop = url + TODOS, name, stop
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.creates: list[Create] = []
        self.failure: str | None = None

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                self.creates.append(self._create(f"{self.name_}-{n}"))
                n += 1
        except Exception as exc:  # reported by the test, not lost in a thread
            self.failure = f"{type(exc).__name__}: {exc}"

    def _create(self, key: str) -> Create:
        create = Create(key, time.monotonic())
        first = self._until_201(create)
        create.todo_id = first.json()["id"]
        create.acknowledged_at = time.monotonic()
        replay = self._until_201(create)
        create.replay_id = replay.json()["id"]
        create.replay_flag = replay.headers.get("Idempotent-Replayed")
        return create

    def _until_201(self, create: Create) -> requests.Response:
        while True:
            try:
                answer = self.session.post(
                    self.url,
                    json={"title": f"crash {create.key}"},
                    headers={"Idempotency-Key": create.key},
                    timeout=15,
                )
            except requests.RequestException as exc:
                create.answers.append(type(exc).__name__)
            else:
                create.answers.append(answer.status_code)
                if answer.status_code == 201:
                    return answer
            if time.monotonic() - create.started > GIVE_UP:
                raise AssertionError(f"{create.key}: no 201 after {GIVE_UP} s: {create.answers}")
            time.sleep(0.05)


def _burst(platform: Platform, n: int = 32) -> set[int]:
    """The statuses of n concurrent creates, one attempt each: enough to reach every thread."""
    auth = {"Authorization": f"Bearer {platform.token}"}

    def create(i: int) -> int:
        body = {"title": f"after the crash {i}"}
        return requests.post(platform.url + TODOS, json=body, headers=auth, timeout=15).status_code

    with ThreadPoolExecutor(n) as pool:
        return set(pool.map(create, range(n)))


@pytest.fixture
def postgres() -> Iterator[EmbeddedPostgres]:
    with scratch_data_dir() as data_dir:
        server = EmbeddedPostgres(data_dir / "postgres")
        server.start()
        try:
            yield server
        finally:
            server.stop()


def test_acknowledged_creates_survive_a_postgresql_crash_and_retries_never_duplicate(
    postgres: EmbeddedPostgres,
) -> None:
    with scratch_data_dir() as data_dir:
        platform = Platform(data_dir, env={"DATABASE_URL": postgres.url, "LOG_LEVEL": "WARNING"})
        try:
            _crash_under_load(platform, postgres)
        finally:
            assert platform.terminate() == 0


def _crash_under_load(platform: Platform, postgres: EmbeddedPostgres) -> None:
    serving = {p.pid for p in psutil.Process(platform.process.pid).children(recursive=True)}
    stop = threading.Event()
    clients = [Client(platform.url, platform.token, f"c{i}", stop) for i in range(CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(BEFORE_CRASH)

    killed_at = time.monotonic()
    postgres.crash_and_start()
    back_at = time.monotonic()

    def served_since_back() -> list[float]:
        return [
            c.acknowledged_at
            for client in clients
            for c in list(client.creates)
            if c.acknowledged_at and c.acknowledged_at >= back_at
        ]

    deadline = back_at + RECOVERY_LIMIT
    while not served_since_back() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(AFTER_RECOVERY)
    stop.set()
    for client in clients:
        client.join(GIVE_UP + 30)
    first = min(served_since_back(), default=None)

    creates = [c for client in clients for c in client.creates]
    answers = Counter(a for c in creates for a in c.answers)
    print(
        f"\n{len(creates)} creates by {CLIENTS} clients; answers {dict(answers)}; PostgreSQL "
        f"SIGKILLed and back in {back_at - killed_at:.2f} s; creates acknowledged again "
        + (f"{first - back_at:.2f} s after it was back" if first else "never")
    )
    assert [c.failure for c in clients if c.failure] == []
    assert first is not None and first - back_at < RECOVERY_LIMIT, (
        f"no create answered 201 within {RECOVERY_LIMIT} s of the restart"
    )
    # Every failed attempt was a clean "retry later", never a 500 or a dropped connection.
    assert set(answers) <= {201, 503}, answers
    assert answers[503] > 0, "the crash went unnoticed: the test did not test it"
    # The functions reconnected by themselves: same processes as before the crash, and
    # every worker thread (each with its own connection) serves at the first attempt.
    after = {p.pid for p in psutil.Process(platform.process.pid).children(recursive=True)}
    assert serving <= after, (serving, after)
    assert _burst(platform) == {201}

    database = Database(postgres.url)
    try:
        rows = database.read(
            lambda c: c.all(
                "SELECT id::text AS id, title FROM todos WHERE owner = 'local' AND title LIKE "
                "'crash %'"
            )
        )
    finally:
        database.close_all()
    per_key = Counter(row["title"].removeprefix("crash ") for row in rows)
    duplicated = {key: n for key, n in per_key.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} keys duplicated: {sorted(duplicated)[:5]}"
    stored = {row["title"].removeprefix("crash "): row["id"] for row in rows}
    lost = [c.key for c in creates if stored.get(c.key) != c.todo_id]
    assert not lost, f"{len(lost)} creates answered 201 are not stored as answered: {lost[:5]}"
    assert len(rows) == len(creates)
    # Sent again after its 201, each create answered the same todo, marked as a replay.
    replayed_wrong = [c.key for c in creates if (c.replay_id, c.replay_flag) != (c.todo_id, "true")]
    assert replayed_wrong == []
