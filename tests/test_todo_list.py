"""todo-list: filters, search, every sort order and keyset pagination, on a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest

from functions.core.db import Connection, Database
from functions.core.models import ListQuery
from functions.core.todo_rules import Sort
from functions.core.todo_store import list_todos
from tests.conftest import Owner
from tests.helpers import TODOS, create, ids, problem
from tests.servers import Api

T = TypeVar("T")


def _list(api: Api, owner: Owner, **params: Any) -> list[str]:
    return ids(api.get(f"{TODOS}?{urlencode(params)}", token=owner.token))


def _page(api: Api, owner: Owner, **params: Any) -> dict[str, Any]:
    response = api.get(f"{TODOS}?{urlencode(params)}", token=owner.token)
    assert response.status_code == 200, response.text
    return response.json()


def _all_pages(api: Api, owner: Owner, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        page = _page(api, owner, **params, **({"cursor": cursor} if cursor else {}))
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- filters ------------------------------------------------------------------------------------


def test_status_filter(api: Api, alice: Owner) -> None:
    a, b, c = (create(api, alice, title=t) for t in "abc")
    assert api.post(f"{TODOS}/{b['id']}/complete", token=alice.token).status_code == 200
    assert set(_list(api, alice, status="done")) == {b["id"]}
    assert set(_list(api, alice, status="open")) == {a["id"], c["id"]}
    assert set(_list(api, alice)) == {a["id"], b["id"], c["id"]}


def test_tag_filter(api: Api, alice: Owner) -> None:
    both = create(api, alice, tags=["home", "urgent"])
    home = create(api, alice, tags=["home"])
    create(api, alice, tags=[])
    create(api, alice, tags=["homework"])
    assert set(_list(api, alice, tag="home")) == {both["id"], home["id"]}
    assert _list(api, alice, tag="urgent") == [both["id"]]
    assert _list(api, alice, tag="nothing") == []


def test_due_before_and_due_after(api: Api, alice: Owner) -> None:
    march = create(api, alice, due_at="2026-03-01T12:00:00Z")
    april = create(api, alice, due_at="2026-04-01T12:00:00Z")
    may = create(api, alice, due_at="2026-05-01T12:00:00+02:00")
    create(api, alice)  # no due date: never matches a due filter
    assert set(_list(api, alice, due_before="2026-04-15T00:00:00Z")) == {march["id"], april["id"]}
    assert set(_list(api, alice, due_after="2026-03-15T00:00:00Z")) == {april["id"], may["id"]}
    assert _list(
        api, alice, due_after="2026-03-15T00:00:00Z", due_before="2026-04-15T00:00:00Z"
    ) == [april["id"]]
    # due_before is exclusive and due_after inclusive, compared as instants
    assert _list(api, alice, due_before="2026-03-01T14:00:00+02:00") == []
    assert _list(api, alice, due_after="2026-05-01T10:00:00Z") == [may["id"]]


def test_filters_combine(api: Api, alice: Owner) -> None:
    hit = create(api, alice, title="call mum", tags=["family"], due_at="2026-03-01T00:00:00Z")
    create(api, alice, title="call mum", tags=["work"], due_at="2026-03-01T00:00:00Z")
    create(api, alice, title="call dad", tags=["family"], due_at="2026-03-01T00:00:00Z")
    create(api, alice, title="call mum", tags=["family"], due_at="2026-09-01T00:00:00Z")
    found = _list(
        api, alice, q="mum", tag="family", status="open", due_before="2026-06-01T00:00:00Z"
    )
    assert found == [hit["id"]]


def test_q_searches_title_and_notes_by_word_prefix(api: Api, alice: Owner) -> None:
    milk = create(api, alice, title="Buy milk", notes="from the corner shop")
    bread = create(api, alice, title="bake bread", notes="buy flour first")
    create(api, alice, title="unrelated")
    assert _list(api, alice, q="milk") == [milk["id"]]
    assert _list(api, alice, q="mil") == [milk["id"]]  # prefix
    assert _list(api, alice, q="MILK") == [milk["id"]]  # case-insensitive
    assert _list(api, alice, q="corner") == [milk["id"]]  # notes
    assert set(_list(api, alice, q="buy")) == {milk["id"], bread["id"]}  # title or notes
    assert _list(api, alice, q="buy flo") == [bread["id"]]  # every word must appear
    assert _list(api, alice, q="ilk") == []  # prefix, not substring
    assert _list(api, alice, q="milk bread") == []


@pytest.mark.parametrize(
    ("text", "q"),
    [
        ("deploy to example.com", "example.com"),
        ("upgrade to v1.2 today", "v1.2"),
        ("write to a.b@mail.org", "a.b@mail.org"),
        ("clean /usr/local/bin", "/usr/local"),
        ("fix the foo_bar job", "foo_bar"),
        ("pay 3.14 euros", "3.14"),
        ("it's a well-known bug", "well-known it's"),
    ],
)
def test_q_finds_hosts_versions_and_addresses_as_typed(
    api: Api, alice: Owner, text: str, q: str
) -> None:
    todo = create(api, alice, title=text)
    create(api, alice, title="nothing like it")
    assert _list(api, alice, q=q) == [todo["id"]]


def test_q_without_any_word_is_400(api: Api, alice: Owner) -> None:
    problem(api.get(f"{TODOS}?q=%25%20--", token=alice.token), 400, "q")


# -- sort orders --------------------------------------------------------------------------------


@pytest.fixture
def sortable(api: Api, alice: Owner) -> list[dict[str, Any]]:
    """Todos in creation order with mixed priorities and due dates, including ties."""
    specs = [
        ("normal", "2026-05-01T00:00:00Z"),
        ("high", None),
        ("low", "2026-03-01T00:00:00Z"),
        ("high", "2026-05-01T00:00:00Z"),
        ("normal", None),
        ("low", "2026-01-01T00:00:00Z"),
        ("high", "2026-02-01T00:00:00Z"),
        ("normal", "2026-05-01T00:00:00Z"),
    ]
    return [create(api, alice, priority=p, due_at=d) for p, d in specs]


RANK = {"low": 1, "normal": 2, "high": 3}
ORDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "created": lambda t: (_when(t["created_at"]).timestamp(), t["id"]),
    "due": lambda t: (
        t["due_at"] is None,
        _when(t["due_at"]).timestamp() if t["due_at"] else 0,
        t["id"],
    ),
    "priority": lambda t: (RANK[t["priority"]], _when(t["created_at"]).timestamp(), t["id"]),
}


@pytest.mark.parametrize("sort", [s.value for s in Sort])
def test_every_sort_returns_the_right_order(
    api: Api, alice: Owner, sortable: list[dict[str, Any]], sort: str
) -> None:
    expected = sorted(sortable, key=ORDERS[sort.lstrip("-")], reverse=sort.startswith("-"))
    assert _list(api, alice, sort=sort) == [t["id"] for t in expected]


def test_default_sort_is_newest_first(
    api: Api, alice: Owner, sortable: list[dict[str, Any]]
) -> None:
    assert _list(api, alice) == [t["id"] for t in reversed(sortable)]


def test_due_sort_puts_todos_without_a_due_date_last(
    api: Api, alice: Owner, sortable: list[dict[str, Any]]
) -> None:
    items = _page(api, alice, sort="due")["items"]
    assert [t["due_at"] is None for t in items] == [False] * 6 + [True] * 2
    assert items[0]["due_at"].startswith("2026-01-01")


def test_priority_sort_is_low_first_and_minus_priority_high_first(
    api: Api, alice: Owner, sortable: list[dict[str, Any]]
) -> None:
    assert _page(api, alice, sort="priority")["items"][0]["priority"] == "low"
    assert _page(api, alice, sort="-priority")["items"][0]["priority"] == "high"


# -- pagination ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", [s.value for s in Sort])
def test_keyset_pages_return_every_row_once_in_order(
    api: Api, alice: Owner, sortable: list[dict[str, Any]], sort: str
) -> None:
    more = [create(api, alice, priority="normal", due_at="2026-05-01T00:00:00Z") for _ in range(9)]
    everything = _list(api, alice, sort=sort, limit=200)
    assert len(everything) == len(sortable) + len(more)
    paged = _all_pages(api, alice, sort=sort, limit=3)
    assert [t["id"] for t in paged] == everything


def test_last_page_has_no_next_cursor(api: Api, alice: Owner) -> None:
    for _ in range(4):
        create(api, alice)
    first = _page(api, alice, limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = _page(api, alice, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    assert _page(api, alice, limit=4)["next_cursor"] is None


def test_an_owner_with_no_todos_gets_an_empty_page(api: Api, alice: Owner) -> None:
    assert _page(api, alice) == {"items": [], "next_cursor": None}


def _insert_backdated(db: Database, owner: Owner, number: int, created_at: datetime) -> None:
    db.transaction(
        lambda c: c.execute(
            "INSERT INTO todos (id, owner, number, title, created_at, updated_at) "
            "VALUES (gen_random_uuid(), :owner, :number, 'backdated', :at, :at)",
            owner=owner.name,
            number=number,
            at=created_at,
        )
    )


@pytest.mark.slow
def test_pagination_while_rows_are_inserted_sees_every_existing_row_once(
    api: Api, db: Database, alice: Owner
) -> None:
    """A writer inserts new todos and back-dated ones (landing behind and ahead of the cursor)
    while a reader pages in `created` order: nothing that existed is skipped or repeated."""
    before = [create(api, alice, title=f"existing {i}") for i in range(30)]
    existing = {t["id"] for t in before}
    created_times = [_when(t["created_at"]) for t in before]
    paging, done = threading.Event(), threading.Event()
    inserted_while_paging = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            paging.wait(10)
            for i in range(60):
                if done.is_set():
                    return
                if i % 2:
                    create(api, alice, title=f"new {i}")
                else:
                    # between two existing rows: offset paging would repeat or skip a row
                    at = (
                        created_times[(i * 7) % 29]
                        + (created_times[(i * 7) % 29 + 1] - created_times[(i * 7) % 29]) / 2
                    )
                    _insert_backdated(db, alice, 1000 + i, at)
                inserted_while_paging.append(i)
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[dict[str, Any]] = []
    try:
        cursor = None
        paging.set()
        while True:
            page = _page(
                api, alice, sort="created", limit=3, **({"cursor": cursor} if cursor else {})
            )
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
            time.sleep(0.01)
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    assert len(inserted_while_paging) >= 5, "the writer did not run while paging"
    seen_ids = [t["id"] for t in seen]
    assert len(seen_ids) == len(set(seen_ids)), "a row was returned twice"
    assert existing <= set(seen_ids), "an existing row was skipped"
    keys = [(_when(t["created_at"]), t["id"]) for t in seen]
    assert keys == sorted(keys)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", ""])
def test_limit_out_of_range_is_400(api: Api, alice: Owner, limit: str) -> None:
    problem(api.get(f"{TODOS}?limit={limit}", token=alice.token), 400, "limit")


def test_limit_bounds_are_accepted(api: Api, alice: Owner) -> None:
    for _ in range(3):
        create(api, alice)
    assert len(_page(api, alice, limit=1)["items"]) == 1
    assert len(_page(api, alice, limit=200)["items"]) == 3
    assert len(_page(api, alice)["items"]) == 3


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


@pytest.fixture
def paged_owner(api: Api, alice: Owner) -> tuple[Owner, str]:
    for _ in range(3):
        create(api, alice)
    cursor = _page(api, alice, limit=1)["next_cursor"]
    assert cursor
    return alice, cursor


def test_random_cursor_is_400(api: Api, paged_owner: tuple[Owner, str]) -> None:
    owner, _ = paged_owner
    for forged in [secrets.token_urlsafe(40), "abc", "!!!!", "é", _b64(b"{}" + bytes(16))]:
        response = api.get(f"{TODOS}?{urlencode({'cursor': forged})}", token=owner.token)
        problem(response, 400, "cursor")


def test_tampered_cursor_is_400(api: Api, paged_owner: tuple[Owner, str]) -> None:
    owner, cursor = paged_owner
    raw = _unb64(cursor)
    payload, signature = raw[:-16], raw[-16:]
    position = json.loads(payload)
    position["k"][0] = "1970-01-01 00:00:00+00"
    moved = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    flipped = bytes([raw[0] ^ 1]) + raw[1:]
    for tampered in [_b64(moved + signature), _b64(flipped), _b64(raw[:-1]), cursor[:-4]]:
        response = api.get(f"{TODOS}?{urlencode({'cursor': tampered})}", token=owner.token)
        problem(response, 400, "cursor")
    # the untouched cursor still works
    assert _page(api, owner, limit=1, cursor=cursor)["items"]


def test_another_owners_cursor_is_400(api: Api, paged_owner: tuple[Owner, str], bob: Owner) -> None:
    _, cursor = paged_owner
    create(api, bob)
    create(api, bob)
    response = api.get(f"{TODOS}?{urlencode({'cursor': cursor, 'limit': 1})}", token=bob.token)
    problem(response, 400, "cursor")


@pytest.mark.parametrize(
    "other", [{"sort": "created"}, {"sort": "due"}, {"status": "open"}, {"q": "todo"}]
)
def test_cursor_from_another_filter_or_sort_is_400(
    api: Api, paged_owner: tuple[Owner, str], other: dict[str, str]
) -> None:
    owner, cursor = paged_owner
    response = api.get(f"{TODOS}?{urlencode({**other, 'cursor': cursor})}", token=owner.token)
    problem(response, 400, "cursor")


def test_cursor_works_with_another_limit(api: Api, paged_owner: tuple[Owner, str]) -> None:
    owner, cursor = paged_owner
    assert len(_page(api, owner, limit=5, cursor=cursor)["items"]) == 2


def test_unknown_query_parameter_is_400(api: Api, alice: Owner) -> None:
    problem(api.get(f"{TODOS}?colour=red", token=alice.token), 400, "colour")
    problem(api.get(f"{TODOS}?offset=10", token=alice.token), 400, "offset")


def test_repeated_query_parameter_is_400(api: Api, alice: Owner) -> None:
    problem(api.get(f"{TODOS}?status=open&status=done", token=alice.token), 400, "status")


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "finished"),
        ("sort", "title"),
        ("due_before", "tomorrow"),
        ("due_after", "2026-03-01T10:00:00"),
        ("tag", "two words"),
        ("q", "x" * 201),
    ],
)
def test_invalid_filter_values_are_400(api: Api, alice: Owner, param: str, value: str) -> None:
    response = api.get(f"{TODOS}?{urlencode({param: value})}", token=alice.token)
    problem(response, 400, param)


# -- query plans --------------------------------------------------------------------------------


class _ExplainingConnection(Connection):
    """The real connection; before each SELECT on todos it runs EXPLAIN of that same statement."""

    def __init__(self, conn: Connection, plans: list[dict[str, Any]]) -> None:
        super().__init__(conn.raw)
        self.plans = plans

    def all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        if sql.startswith("SELECT") and " FROM todos " in sql:
            rows = super().all("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, **params)
            self.plans.append(rows[0]["QUERY PLAN"][0])
        return super().all(sql, **params)


class _ExplainingDatabase(Database):
    """Our Database, recording the plan of the store's own list query when `explain` is on."""

    def __init__(self, url: str) -> None:
        super().__init__(url, name="plan-test")
        self.explain = False
        self.plans: list[dict[str, Any]] = []

    def read(self, work: Callable[[Connection], T]) -> T:
        if not self.explain:
            return super().read(work)
        return super().read(lambda conn: work(_ExplainingConnection(conn, self.plans)))


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


def _blocks(plan: dict[str, Any]) -> int:
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


INDEX_OF = {
    "created": "todos_owner_created",
    "due": "todos_owner_due",
    "priority": "todos_owner_priority",
}
PLAN_ROWS = 20_000


@pytest.fixture(scope="module")
def many_rows(pg: Any, db: Database) -> str:
    """One owner with 20 000 todos, inserted with one SQL statement, and fresh statistics."""
    owner = f"plan-{secrets.token_hex(6)}"
    db.transaction(
        lambda c: c.execute(
            "INSERT INTO todos (id, owner, number, title, notes, priority, due_at, tags, "
            "created_at, updated_at) "
            "SELECT gen_random_uuid(), :owner, i, 'row ' || i, '', "
            "(ARRAY['low', 'normal', 'high'])[1 + i % 3], "
            "CASE WHEN i % 4 = 0 THEN NULL ELSE now() + (i % 997) * interval '1 hour' END, "
            "ARRAY['t' || (i % 10)], "
            "now() - i * interval '1 second', now() - i * interval '1 second' "
            "FROM generate_series(1, :n) AS i",
            owner=owner,
            n=PLAN_ROWS,
        )
    )
    db.read(lambda c: c.execute("ANALYZE todos"))
    return owner


@pytest.mark.slow
@pytest.mark.parametrize("sort", list(Sort), ids=lambda s: s.value)
def test_first_and_deep_pages_use_the_owner_index_without_sorting(
    pg: Any, many_rows: str, sort: Sort
) -> None:
    """EXPLAIN of the store's own SQL (recorded as list_todos runs it): an index scan on the
    sort's owner index, no Sort and no Seq Scan, and a deep keyset page reads about as many
    buffers as the first one."""
    explaining = _ExplainingDatabase(pg.url)
    try:
        pages = []
        query = ListQuery(sort=sort)
        explaining.explain = True
        items, cursor = list_todos(explaining, many_rows, query)
        pages.append(explaining.plans.pop())
        explaining.explain = False
        for _ in range(PLAN_ROWS * 9 // 10 // 200):  # walk ~90 % of the way down
            _, cursor = list_todos(
                explaining, many_rows, ListQuery(sort=sort, limit=200, cursor=cursor)
            )
            assert cursor
        explaining.explain = True
        deep_items, _ = list_todos(explaining, many_rows, ListQuery(sort=sort, cursor=cursor))
        pages.append(explaining.plans.pop())
    finally:
        explaining.close_all()
    assert len(items) == len(deep_items) == 50
    index = INDEX_OF[sort.value.lstrip("-")]
    for page in pages:
        nodes = _nodes(page["Plan"])
        types = [n["Node Type"] for n in nodes]
        assert "Sort" not in types and "Incremental Sort" not in types, types
        assert "Seq Scan" not in types and "Bitmap Heap Scan" not in types, types
        scans = [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan")]
        assert [s["Index Name"] for s in scans] == [index], scans
        assert "Filter" not in scans[0], scans[0]
    first, deep = pages
    # the keyset bound is part of the index condition, not a filter over skipped rows
    bound = deep["Plan"]["Plans"][0]["Index Cond"]
    assert "ROW(" in bound and "owner =" in bound, bound
    assert _blocks(deep["Plan"]) <= 2 * _blocks(first["Plan"]) + 8, (first, deep)
