"""The authorization matrix: every way in, aimed by alice at bob's todo, gets nothing of bob's;
and the abuse table: requests without the right credentials are refused with no effect.

One `todo-platform up` (the gateway, the mcp function, the Slack functions, the
function addresses command events go to) on a database of its own. Each row of
WAYS is one way in — a REST operation with its variants, an MCP tool or resource
through the official client, a command event, a Slack command or button — and
makes alice's request twice: once naming bob's todo, once naming a todo that does
not exist, named the same way. The answers must be the same once the names are
taken out (so alice cannot even tell that bob's todo exists), carry nothing of
bob's, and leave bob's rows, his events and Slack exactly as they were.

REFUSALS is the second table: MCP calls without a token, with a read-only token on a
write tool or from a foreign Origin, and Slack requests with a forged, stale or altered
signature, each aimed at alice's own todo. Each must be refused with its status, and
leave the todos, the outbox and the Slack stand-in (no outbound call) as they were.

A new way in is a new row.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import anyio
import pytest
import requests
from mcp.shared.exceptions import MCPError

from events import types
from events.types import COMMANDS, TODO_CREATE
from functions.core.db import Database
from functions.mcp_server.tools import TOOL_SCOPES
from functions.platform.embedded_pg import EmbeddedPostgres
from functions.registry import API, FUNCTIONS
from functions.slack.blocks import ACTIONS
from functions.slack.command_text import VERBS
from functions.slack.payloads import slack_owner
from functions.slack.signature import sign
from tests.conftest import Owner, new_database
from tests.eventing import command, post
from tests.helpers import TODOS, rows_of
from tests.mcp_server.conftest import connect
from tests.mcp_server.conftest import post as mcp_post
from tests.mcp_server.conftest import tool_call as mcp_call
from tests.slack_requests import (
    BOT_TOKEN,
    FORM,
    NOTIFY_CHANNEL,
    SIGNING_SECRET,
    TEAM,
    actions_body,
    command_body,
    new_user,
    post_signed,
    signed_headers,
)
from tests.slack_standins import SlackStandIn
from tests.test_up import Platform, scratch_data_dir

pytestmark = pytest.mark.slow

BOBS_NUMBER = 777_001  # bob's counter is moved on, so his number is unmistakable in any text
NOBODYS_NUMBER = 888_001


@dataclass(frozen=True)
class Target:
    """A todo alice aims at, as each way in can name it: bob's, or one that does not exist."""

    id: str
    number: int
    word: str  # in its title: what a search for it uses
    tag: str
    etag: str
    cursor: str  # a cursor someone else was given for their own list


def call(url: str, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    """One REST request to the platform with token as its bearer token."""
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(method, url + path, headers=headers, timeout=30, **kwargs)


@dataclass
class World:
    url: str
    db: Database
    slack: SlackStandIn
    alice: Owner  # alice as a REST and MCP caller (tokens)
    slack_user: str  # alice as a Slack user

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return call(self.url, self.alice.token, method, path, **kwargs)


Observation = Any
Way = Callable[[World, Target], Observation]


def fill(value: Any, target: Target) -> Any:
    """value with the placeholders ID, NUMBER, WORD, TAG, ETAG and CURSOR naming target."""
    if isinstance(value, dict):
        return {k: fill(v, target) for k, v in value.items()}
    names = {
        "ID": target.id,
        "NUMBER": target.number,
        "WORD": target.word,
        "TAG": target.tag,
        "ETAG": target.etag,
        "CURSOR": target.cursor,
    }
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, str):
        return re.sub(r"\b(NUMBER|TAG)\b", lambda m: str(names[m.group(1)]), value)
    return value


def _answer(response: requests.Response) -> Observation:
    """Status, content type and body: everything a caller can tell apart."""
    body: Any = response.text
    if response.headers.get("Content-Type", "").endswith("json") and body:
        body = response.json()
    return response.status_code, response.headers.get("Content-Type"), body


# -- REST ---------------------------------------------------------------------------------------


def _rest(method: str, suffix: str = "", ref: str = "ID", **kwargs: Any) -> Way:
    def way(world: World, target: Target) -> Observation:
        path = f"{TODOS}/{fill(ref, target)}{suffix}"
        return _answer(world.rest(method, path, **fill(kwargs, target)))

    return way


def _rest_list(**params: str) -> Way:
    def way(world: World, target: Target) -> Observation:
        return _answer(world.rest("GET", f"{TODOS}?{urlencode(fill(params, target))}"))

    return way


def _rest_create_with_bobs_idempotency_key(world: World, target: Target) -> Observation:
    """bob created his todo with Idempotency-Key = its word; alice's keys are her own."""
    body = {"title": "alice's own", "tags": ["mine"]}
    response = world.rest("POST", TODOS, json=body, headers={"Idempotency-Key": target.word})
    assert response.status_code == 201, response.text
    mine = response.json()
    return response.status_code, sorted(mine), mine["title"], mine["tags"]


# -- MCP (the official client) ------------------------------------------------------------------


def _mcp_tool(name: str, **arguments: Any) -> Way:
    def way(world: World, target: Target) -> Observation:
        async def use() -> Observation:
            async with connect(world.url + "/mcp", world.alice.token) as session:
                result = await session.call_tool(name, fill(arguments, target))
            texts = [getattr(c, "text", None) for c in result.content]
            return result.is_error, texts, result.structured_content

        return anyio.run(use)

    return way


def _mcp_resource(uri: str) -> Way:
    def way(world: World, target: Target) -> Observation:
        async def read() -> Observation:
            async with connect(world.url + "/mcp", world.alice.token) as session:
                try:
                    result = await session.read_resource(fill(uri, target))
                except MCPError as refused:
                    return "error", refused.error.code, refused.error.message
            return "read", [getattr(c, "text", None) for c in result.contents]

        return anyio.run(read)

    return way


# -- command events (to the function's own address, as the broker delivers them) ----------------


def _command(function: str, type_: str, **data: Any) -> Way:
    def way(world: World, target: Target) -> Observation:
        event = command(type_, {"owner": world.alice.name, "id": "ID", **fill(data, target)})
        event.data = fill(event.data, target)
        return _answer(post(f"{world.url}/_functions/{function}/", event))

    return way


# -- Slack --------------------------------------------------------------------------------------


def _slack_command(text: str) -> Way:
    def way(world: World, target: Target) -> Observation:
        reply_to = world.slack.response_url(f"{world.slack_user}-{uuid.uuid4().hex}")
        body = command_body(fill(text, target), world.slack_user, reply_to)
        return _answer(post_signed(world.url + "/slack/commands", body, FORM))

    return way


def _slack_button(action_id: str) -> Way:
    def way(world: World, target: Target) -> Observation:
        name = f"{world.slack_user}-{uuid.uuid4().hex}"
        value = json.dumps({"id": target.id, "view": "all"})
        body = actions_body(world.slack_user, action_id, value, world.slack.response_url(name))
        answered = _answer(post_signed(world.url + "/slack/interactions", body, FORM))
        (reply,) = world.slack.wait_for(lambda r: r.path == f"/response/{name}", 1, 10)
        return answered, reply.body

    return way


WAYS: dict[str, Way] = {
    # REST: every operation, by id and by number, with and without If-Match.
    "rest getTodo by id": _rest("GET"),
    "rest getTodo by number": _rest("GET", ref="NUMBER"),
    "rest updateTodo by id": _rest("PATCH", json={"title": "taken"}),
    "rest updateTodo by number": _rest("PATCH", ref="NUMBER", json={"title": "taken"}),
    "rest updateTodo with bob's etag": _rest(
        "PATCH", json={"title": "taken"}, headers={"If-Match": "ETAG"}
    ),
    "rest completeTodo by id": _rest("POST", "/complete"),
    "rest completeTodo by number with bob's etag": _rest(
        "POST", "/complete", ref="NUMBER", headers={"If-Match": "ETAG"}
    ),
    "rest reopenTodo by id": _rest("POST", "/reopen"),
    "rest reopenTodo with bob's etag": _rest("POST", "/reopen", headers={"If-Match": "ETAG"}),
    "rest deleteTodo by id": _rest("DELETE"),
    "rest deleteTodo by number": _rest("DELETE", ref="NUMBER"),
    "rest deleteTodo with bob's etag": _rest("DELETE", headers={"If-Match": "ETAG"}),
    "rest createTodo with bob's idempotency key": _rest_create_with_bobs_idempotency_key,
    "rest listTodos": _rest_list(),
    "rest listTodos q": _rest_list(q="WORD"),
    "rest listTodos tag": _rest_list(tag="TAG"),
    "rest listTodos status open": _rest_list(status="open"),
    "rest listTodos status done": _rest_list(status="done"),
    "rest listTodos due_before": _rest_list(due_before="2100-01-01T00:00:00Z"),
    "rest listTodos due_after": _rest_list(due_after="2000-01-01T00:00:00Z"),
    **{f"rest listTodos sort {s}": _rest_list(sort=s) for s in ("created", "-created", "due")},
    "rest listTodos sort -due": _rest_list(sort="-due", limit="1"),
    "rest listTodos sort priority": _rest_list(sort="priority", tag="TAG"),
    "rest listTodos sort -priority": _rest_list(sort="-priority", limit="200", q="WORD"),
    "rest listTodos with bob's cursor": _rest_list(limit="1", cursor="CURSOR"),
    # MCP: every tool and resource, by number and by id, with and without expected_version.
    "mcp get_todo by number": _mcp_tool("get_todo", todo="NUMBER"),
    "mcp get_todo by id": _mcp_tool("get_todo", todo="ID"),
    "mcp update_todo": _mcp_tool("update_todo", todo="NUMBER", changes={"title": "taken"}),
    "mcp update_todo with expected_version": _mcp_tool(
        "update_todo", todo="ID", changes={"title": "taken"}, expected_version=1
    ),
    "mcp complete_todo": _mcp_tool("complete_todo", todo="NUMBER"),
    "mcp complete_todo with expected_version": _mcp_tool(
        "complete_todo", todo="ID", expected_version=1
    ),
    "mcp reopen_todo": _mcp_tool("reopen_todo", todo="ID"),
    "mcp delete_todo": _mcp_tool("delete_todo", todo="NUMBER"),
    "mcp delete_todo with expected_version": _mcp_tool(
        "delete_todo", todo="ID", expected_version=1
    ),
    "mcp list_todos q": _mcp_tool("list_todos", q="WORD", limit=200),
    "mcp list_todos tag and status": _mcp_tool("list_todos", tag="TAG", status="open"),
    "mcp list_todos sort due": _mcp_tool("list_todos", sort="due"),
    "mcp list_todos with bob's cursor": _mcp_tool("list_todos", limit=1, cursor="CURSOR"),
    "mcp resource todo://": _mcp_resource("todo://NUMBER"),
    "mcp resource todos://open": _mcp_resource("todos://open"),
    # Command events, as the broker delivers them to each todo function.
    f"event {types.TODO_UPDATE}": _command("todo-update", types.TODO_UPDATE, title="taken"),
    f"event {types.TODO_UPDATE} by number with version": _command(
        "todo-update", types.TODO_UPDATE, id="NUMBER", title="taken", version=1
    ),
    f"event {types.TODO_COMPLETE}": _command("todo-complete", types.TODO_COMPLETE),
    f"event {types.TODO_COMPLETE} to reopen": _command(
        "todo-complete", types.TODO_COMPLETE, id="NUMBER", status="open"
    ),
    f"event {types.TODO_DELETE}": _command("todo-delete", types.TODO_DELETE),
    f"event {types.TODO_DELETE} with version": _command(
        "todo-delete", types.TODO_DELETE, version=1
    ),
    # Slack: each /todo command that names or lists todos, and each button, as a Slack user.
    "slack /todo done": _slack_command("done NUMBER"),
    "slack /todo reopen": _slack_command("reopen #NUMBER"),
    "slack /todo delete": _slack_command("delete NUMBER"),
    "slack /todo list all": _slack_command("list all"),
    "slack /todo list all #tag": _slack_command("list all #TAG"),
    "slack /todo list done": _slack_command("list done"),
    "slack button todo_complete": _slack_button("todo_complete"),
    "slack button todo_reopen": _slack_button("todo_reopen"),
    "slack button todo_delete": _slack_button("todo_delete"),
}


# -- the platform, bob's todo and nobody's -------------------------------------------------------


@pytest.fixture(scope="module")
def platform_db(pg: EmbeddedPostgres, db: Database) -> Iterator[Database]:
    """A database of the platform's own, so its outbox belongs to these tests."""
    url = new_database(pg, db, "authz")
    database = Database(url)
    database.url = url  # type: ignore[attr-defined]
    yield database
    database.close_all()


@pytest.fixture(scope="module")
def platform_url(platform_db: Database, slack: SlackStandIn) -> Iterator[str]:
    env = {
        "DATABASE_URL": platform_db.url,  # type: ignore[attr-defined]
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_NOTIFY_CHANNEL": NOTIFY_CHANNEL,
        "LOG_LEVEL": "WARNING",
    }
    with scratch_data_dir() as data_dir:
        running = Platform(data_dir, env=env)
        try:
            yield running.url
        finally:
            assert running.terminate() == 0


def _cursor_of(url: str, owner: Owner) -> str:
    page = call(url, owner.token, "GET", f"{TODOS}?limit=1").json()
    assert page["next_cursor"], page
    return page["next_cursor"]


@pytest.fixture
def bob(platform_url: str, platform_db: Database) -> tuple[Owner, Target]:
    """A fresh bob for each row (so a row that got through cannot hide the rows after it),
    with his todo numbered BOBS_NUMBER (open, tagged, due) and one more."""
    owner = Owner(platform_db)
    platform_db.transaction(
        lambda c: c.execute(
            "INSERT INTO owner_counters (owner, last_number) VALUES (:o, :n)",
            o=owner.name,
            n=BOBS_NUMBER - 1,
        )
    )
    word, tag = f"bobsecret{uuid.uuid4().hex[:8]}", f"bobtag{uuid.uuid4().hex[:6]}"
    response = call(
        platform_url,
        owner.token,
        "POST",
        TODOS,
        json={"title": f"{word} todo", "tags": [tag], "due_at": "2050-01-01T00:00:00Z"},
        headers={"Idempotency-Key": word},
    )
    assert response.status_code == 201, response.text
    todo = response.json()
    assert todo["number"] == BOBS_NUMBER
    second = call(platform_url, owner.token, "POST", TODOS, json={"title": f"{word} second"})
    assert second.status_code == 201, second.text
    target = Target(todo["id"], BOBS_NUMBER, word, tag, response.headers["ETag"], "")
    return owner, Target(**{**target.__dict__, "cursor": _cursor_of(platform_url, owner)})


@pytest.fixture(scope="module")
def nobody(platform_url: str, platform_db: Database) -> Target:
    """A todo that does not exist, named like bob's; its cursor is a third owner's."""
    carol = Owner(platform_db)
    for title in ("one", "two"):
        assert call(platform_url, carol.token, "POST", TODOS, json={"title": title}).ok
    word, tag = f"nobody{uuid.uuid4().hex[:8]}", f"nobodytag{uuid.uuid4().hex[:6]}"
    return Target(
        str(uuid.uuid4()), NOBODYS_NUMBER, word, tag, '"1"', _cursor_of(platform_url, carol)
    )


def _anonymized(observation: Observation, target: Target) -> str:
    """The observation as text with the target's names taken out (and nothing else)."""
    text = json.dumps(observation, sort_keys=True, default=str)
    for name, value in (
        ("ID", target.id),
        ("WORD", target.word),
        ("TAG", target.tag),
        ("CURSOR", target.cursor),
    ):
        text = text.replace(value, f"<{name}>")
    return re.sub(rf"\b{target.number}\b", "<NUMBER>", text)


def _bobs_side(db: Database, bob: Owner, slack: SlackStandIn) -> tuple[Any, ...]:
    """Bob's rows, every event about his todos, and what Slack was sent: none may change."""
    events = db.read(
        lambda c: c.all(
            "SELECT event_id, event_type FROM outbox WHERE data->>'owner' = :o ORDER BY id",
            o=bob.name,
        )
    )
    return rows_of(db, bob), events, len(slack.posts())


@pytest.mark.parametrize("way", list(WAYS))
def test_alice_gets_nothing_of_bobs_todo(
    way: str,
    platform_url: str,
    platform_db: Database,
    slack: SlackStandIn,
    bob: tuple[Owner, Target],
    nobody: Target,
) -> None:
    bob_owner, bobs = bob
    world = World(platform_url, platform_db, slack, Owner(platform_db), new_user())
    before = _bobs_side(platform_db, bob_owner, slack)
    theirs = WAYS[way](world, bobs)
    nobodys = WAYS[way](world, nobody)
    # Indistinguishable from a todo that does not exist: same status, same body shape.
    assert _anonymized(theirs, bobs) == _anonymized(nobodys, nobody), (theirs, nobodys)
    # Nothing of bob's in it beyond the names alice gave: no title, id, tag or owner of his.
    seen = _anonymized(theirs, bobs)
    for row in rows_of(platform_db, bob_owner):
        assert row["id"] not in seen and row["title"] not in seen, (way, row)
    assert bob_owner.name not in seen
    # Nor anyone else's: the only todos alice may see are her own.
    others = platform_db.read(
        lambda c: c.all("SELECT id::text AS id FROM todos WHERE owner <> :o", o=world.alice.name)
    )
    assert [row["id"] for row in others if row["id"] in seen] == [], way
    assert _bobs_side(platform_db, bob_owner, slack) == before


def test_the_matrix_has_a_row_for_every_way_in() -> None:
    """Each todo operation, MCP tool and resource, command type and Slack button has a row."""
    rows = " ".join(WAYS)
    operations = {
        route.operation_id
        for spec in FUNCTIONS
        for route in spec.routes
        if route.path.startswith(f"{API}/todos")
    }
    expected = [f"rest {operation}" for operation in sorted(operations)]
    # add_todo and todo.create name no existing todo; createTodo's row replays bob's key.
    expected += [f"mcp {tool}" for tool in TOOL_SCOPES if tool != "add_todo"]
    expected += ["mcp resource todo://", "mcp resource todos://open"]
    expected += [
        f"event {command_type}" for command_type in COMMANDS if command_type != TODO_CREATE
    ]
    expected += [f"slack button {action}" for action in ACTIONS]
    expected += [f"slack /todo {verb}" for verb in VERBS if verb not in ("add", "help")]
    assert [name for name in expected if name not in rows] == []


# -- refused outright ---------------------------------------------------------------------------

MCP_WRITES: dict[str, dict[str, Any]] = {
    "add_todo": {"title": "not allowed"},
    "update_todo": {"todo": 1, "changes": {"title": "not allowed"}},
    "complete_todo": {"todo": 1},
    "reopen_todo": {"todo": 1},
    "delete_todo": {"todo": 1},
}


@dataclass
class Victim:
    """alice, with todo number 1 as a REST/MCP owner and as a Slack user."""

    url: str
    slack: SlackStandIn
    owner: Owner
    slack_user: str
    slack_todo: str  # the id of her Slack todo


Refusal = Callable[[Victim], int]


def _mcp_refused(tool: str, credential: str, **headers: str) -> Refusal:
    def way(victim: Victim) -> int:
        token = {"none": None, "read-only": victim.owner.read_token}.get(
            credential, victim.owner.token
        )
        answer = mcp_post(victim.url + "/mcp", mcp_call(tool, MCP_WRITES[tool]), token, **headers)
        return answer.status_code

    return way


def _slack_refused(path: str, forgery: str) -> Refusal:
    def way(victim: Victim) -> int:
        reply_to = victim.slack.response_url(victim.slack_user)
        if path == "/slack/commands":
            body = command_body("delete 1", victim.slack_user, reply_to)
        else:
            value = json.dumps({"id": victim.slack_todo, "view": "all"})
            body = actions_body(victim.slack_user, "todo_delete", value, reply_to)
        headers = signed_headers(body, FORM)
        if forgery == "forged":
            headers = {**headers, "X-Slack-Signature": sign("not-the-secret", "1", body)}
        elif forgery == "stale":  # a captured request replayed after the five minutes
            headers = signed_headers(body, FORM, timestamp=int(time.time()) - 301)
        else:  # signed, then changed on the way
            body = body.replace(b"delete", b"donee").replace(b"todo_donee", b"todo_complete")
        return requests.post(victim.url + path, data=body, headers=headers, timeout=30).status_code

    return way


REFUSALS: dict[str, tuple[Refusal, int]] = {
    **{f"mcp {tool} without a token": (_mcp_refused(tool, "none"), 401) for tool in MCP_WRITES},
    **{
        f"mcp {tool} with a read-only token": (_mcp_refused(tool, "read-only"), 403)
        for tool in MCP_WRITES
    },
    **{
        f"mcp {tool} from a foreign origin": (
            _mcp_refused(tool, "full", Origin="https://evil.example"),
            403,
        )
        for tool in MCP_WRITES
    },
    **{
        f"slack {path.rsplit('/', 1)[1]} {forgery}": (_slack_refused(path, forgery), 401)
        for path in ("/slack/commands", "/slack/interactions")
        for forgery in ("forged", "stale", "body changed after signing")
    },
}


@pytest.fixture(scope="module")
def victim(platform_url: str, platform_db: Database, slack: SlackStandIn) -> Victim:
    owner = Owner(platform_db)
    assert call(platform_url, owner.token, "POST", TODOS, json={"title": "mine"}).ok
    user = new_user()
    reply_to = slack.response_url(user)
    added = post_signed(
        platform_url + "/slack/commands", command_body("add mine", user, reply_to), FORM
    )
    assert added.status_code == 200 and added.json()["text"].startswith("Added #1"), added.text
    row = platform_db.read(
        lambda c: c.one(
            "SELECT id::text AS id FROM todos WHERE owner = :o", o=slack_owner(TEAM, user)
        )
    )
    assert row is not None
    return Victim(platform_url, slack, owner, user, row["id"])


def _everything(db: Database, slack: SlackStandIn) -> tuple[Any, ...]:
    """All todos, the whole outbox and every request Slack got: what a refusal must not touch."""
    todos = db.read(lambda c: c.all("SELECT id::text AS id, version FROM todos ORDER BY id"))
    outbox = db.read(lambda c: c.one("SELECT count(*) AS n, max(id) AS last FROM outbox"))
    return todos, outbox, len(slack.received)


@pytest.mark.parametrize("way", list(REFUSALS))
def test_refused_with_no_effect(
    way: str, victim: Victim, platform_db: Database, slack: SlackStandIn
) -> None:
    before = _everything(platform_db, slack)
    refusal, status = REFUSALS[way]
    assert refusal(victim) == status
    time.sleep(0.1)  # a reply to Slack would be on its way by now
    assert _everything(platform_db, slack) == before
