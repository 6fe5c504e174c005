"""Shared fixtures: a real embedded PostgreSQL, the functions as real HTTP servers, owners."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from functions.core.auth import READ, WRITE, create_token
from functions.core.db import Database
from functions.core.migrate import apply_migrations
from functions.platform.embedded_pg import EmbeddedPostgres
from functions.registry import FUNCTIONS
from tests.otlp_receiver import OtlpReceiver
from tests.servers import Api, FunctionServer, free_port, running
from tests.slack_requests import BOT_TOKEN, NOTIFY_CHANNEL, SIGNING_SECRET
from tests.slack_standins import OpenAIStandIn, SlackStandIn

INTERNAL_TOKEN = "test-internal-" + uuid.uuid4().hex
# Short, so that the revocation test waits little; the default is 10 (functions/core/auth.py).
TOKEN_CACHE_SECONDS = 1


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server of our own (restartable, killable), migrated."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    apply_migrations(server.start())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def db(pg: EmbeddedPostgres) -> Iterator[Database]:
    database = Database(pg.url)
    yield database
    database.close_all()


def new_database(pg: EmbeddedPostgres, db: Database, prefix: str) -> str:
    """The URL of a new migrated database on pg, so its rows (outbox, todos) are one test's."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    db.read(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    url = pg.url.replace("/todo?", f"/{name}?", 1)
    apply_migrations(url)
    return url


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIStandIn]:
    """An OpenAI-compatible server answering from each test module's own script."""
    server = OpenAIStandIn()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """A stand-in OpenTelemetry Collector, one per test module."""
    collector = OtlpReceiver()
    yield collector
    collector.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    """Slack's Web API and response URLs for one test module's `up`, recorded."""
    server = SlackStandIn()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slack_api() -> Iterator[SlackStandIn]:
    """Slack's Web API and response URLs, recorded (SLACK_API_URL of every function)."""
    server = SlackStandIn()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def servers(pg: EmbeddedPostgres, slack_api: SlackStandIn) -> Iterator[dict[str, FunctionServer]]:
    env = {
        "DATABASE_URL": pg.url,
        "TODO_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "LOG_LEVEL": "WARNING",
        "TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack_api.api_url,
        "SLACK_NOTIFY_CHANNEL": NOTIFY_CHANNEL,
        # The agent's tools; its end-to-end tests run through `up`, with the real mcp function.
        "MCP_URL": "http://127.0.0.1:9/mcp",
    }
    # The WSGI functions; the mcp function (ASGI) is tested through `up` (tests/mcp_server).
    started = {
        spec.name: FunctionServer(spec, env) for spec in FUNCTIONS if spec.interface == "wsgi"
    }
    with running(started) as ready:
        yield ready


@pytest.fixture(scope="session")
def api(servers: dict[str, FunctionServer]) -> Api:
    return Api(servers)


class Owner:
    """A fresh owner with a read-write token and a read-only token."""

    def __init__(self, db: Database) -> None:
        self.name = f"user-{uuid.uuid4().hex[:12]}"
        self.token = create_token(db, self.name, [READ, WRITE])
        self.read_token = create_token(db, self.name, [READ])


@pytest.fixture
def alice(db: Database) -> Owner:
    return Owner(db)


@pytest.fixture
def bob(db: Database) -> Owner:
    return Owner(db)


# CloudEvents: the functions again, on a database of their own (so outbox counts belong to
# these tests alone), each with K_SINK at a broker port that tests serve a router on.


@pytest.fixture(scope="session")
def events_url(pg: EmbeddedPostgres, db: Database) -> str:
    db.read(lambda c: c.execute('CREATE DATABASE "events"'))
    url = pg.url.replace("/todo?", "/events?", 1)
    apply_migrations(url)
    return url


@pytest.fixture(scope="session")
def events_db(events_url: str) -> Iterator[Database]:
    database = Database(events_url)
    yield database
    database.close_all()


@pytest.fixture(scope="session")
def broker_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def event_servers(
    events_url: str, broker_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FunctionServer]]:
    logs = tmp_path_factory.mktemp("function-logs")
    env = {
        "DATABASE_URL": events_url,
        "TODO_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "K_SINK": f"http://127.0.0.1:{broker_port}/broker",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    started = {
        spec.name: FunctionServer(spec, env, logs / f"{spec.name}.log")
        for spec in FUNCTIONS
        # The readers play no part in events; the Slack functions have tests of their own.
        if (spec.events or spec.publishes) and not spec.name.startswith("slack-")
    }
    with running(started) as ready:
        yield ready


@pytest.fixture(scope="session")
def event_api(event_servers: dict[str, FunctionServer]) -> Api:
    return Api(event_servers)


@pytest.fixture
def outbox_url(pg: EmbeddedPostgres, db: Database) -> Iterator[str]:
    """A database of its own, so a publisher or relay sees exactly the rows a test put there."""
    name = f"outbox_{uuid.uuid4().hex[:10]}"
    db.read(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    url = pg.url.replace("/todo?", f"/{name}?", 1)
    apply_migrations(url)
    yield url
    db.read(lambda c: c.execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def outbox_db(outbox_url: str) -> Iterator[Database]:
    database = Database(outbox_url)
    yield database
    database.close_all()
