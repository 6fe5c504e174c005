"""The todo store: every SQL statement on todos, each scoped to its owner and parameterized."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from functions.core.cursor import InvalidCursor, decode_cursor, encode_cursor
from functions.core.db import Connection, Database, Transactions
from functions.core.errors import (
    BadRequest,
    FieldError,
    IdempotencyConflict,
    NotFound,
    ValidationFailed,
)
from functions.core.todo_rules import (
    SORT_KEYS,
    TodoRef,
    check_version,
    request_hash,
    search_terms,
)

if TYPE_CHECKING:
    from functions.core.models import ListQuery, Status, Todo, TodoCreate, TodoPatch
    from functions.core.outbox import Outbox
    from functions.core.todo_facts import Fact

COLUMNS = (
    "id, number, title, notes, status, priority, due_at, tags, "
    "created_at, updated_at, completed_at, version"
)


def _api_time(column: str) -> str:
    """A timestamptz as the API writes it (pydantic's form): `…T09:00:00Z`, `…T09:00:00.250000Z`."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )


def todo_json(row: str) -> str:
    """The todo `row` (a table or CTE name) as the API's JSON, made by PostgreSQL.

    Same fields, order and values as `Todo.model_dump_json()`; tests/test_todo_json.py
    holds the two to equality.
    """
    return (
        f"(SELECT CAST(row_to_json(j) AS text) FROM (SELECT {row}.id, {row}.number, "
        f"{row}.title, {row}.notes, {row}.status, {row}.priority, "
        f"{_api_time(f'{row}.due_at')} AS due_at, {row}.tags, "
        f"{_api_time(f'{row}.created_at')} AS created_at, "
        f"{_api_time(f'{row}.updated_at')} AS updated_at, "
        f"{_api_time(f'{row}.completed_at')} AS completed_at, {row}.version) AS j)"
    )


# The read functions send it as it comes, without decoding twelve columns into Python and
# encoding them again (a page of 50 spent most of its time there).
TODO_JSON = todo_json("todos")
_KEY_TYPES = {
    "created_at": "timestamptz",
    "due_key": "timestamptz",
    "priority_rank": "smallint",
    "id": "uuid",
}
IDEMPOTENCY_TTL = "24 hours"
# Every word of the search as a prefix (`mil` finds `milk`), all required. The words come from
# to_tsvector with the configuration of the `search` column, so they match what was indexed.
SEARCH_QUERY = (
    r"(SELECT CAST(string_agg('''' || replace(replace(word, '\', '\\'), '''', '''''') "
    r"|| ''':*', ' & ') AS tsquery) "
    r"FROM unnest(tsvector_to_array(to_tsvector('simple', :q))) AS word)"
)


def _facts() -> ModuleType:
    # Every write records its fact in the same transaction. The event catalog loads with the
    # first write, so the functions that only read (get, list) never import it.
    from functions.core import todo_facts

    return todo_facts


def _todo(row: dict[str, Any]) -> Todo:
    # Imported here: todo-get sends PostgreSQL's JSON (get_todo_json) and never loads pydantic.
    from functions.core.models import Todo

    return Todo.model_validate(row)


def _where_ref(ref: TodoRef) -> tuple[str, dict[str, Any]]:
    if ref.id is not None:
        return "id = :ref_id", {"ref_id": str(ref.id)}
    return "number = :ref_number", {"ref_number": ref.number}


def _subject(ref: TodoRef) -> str | None:
    """The fact's subject (the todo's id) when the reference gives it before the write."""
    return str(ref.id) if ref.id is not None else None


def _not_found(ref: TodoRef) -> NotFound:
    name = str(ref.id) if ref.id is not None else f"number {ref.number}"
    return NotFound(f"no todo {name}")


def get_todo(conn: Connection, owner: str, ref: TodoRef, *, lock: bool = False) -> Todo:
    where, params = _where_ref(ref)
    row = conn.one(
        f"SELECT {COLUMNS} FROM todos WHERE owner = :owner AND {where}"
        + (" FOR UPDATE" if lock else ""),
        owner=owner,
        **params,
    )
    if row is None:
        raise _not_found(ref)
    return _todo(row)


# The If-Match check inside a write's own statement: NULL (no If-Match) accepts any version.
_VERSION_OK = "(CAST(:accepted AS int[]) IS NULL OR version = ANY(CAST(:accepted AS int[])))"


def _accepted(accepted: set[int] | None) -> list[int] | None:
    return sorted(accepted) if accepted is not None else None


def _current_for_write(
    conn: Connection, owner: str, ref: TodoRef, accepted: set[int] | None
) -> Todo:
    """The todo, locked, once its version passes If-Match: 404 or 412 otherwise.

    A write first tries its statement with the owner, the reference and If-Match in its
    WHERE (one round trip, where a SELECT … FOR UPDATE then the write took two); when it
    touches no row, this says why, or finds that another write just made it acceptable.
    """
    current = get_todo(conn, owner, ref, lock=True)
    check_version(current.version, accepted)
    return current


def get_todo_json(conn: Connection, owner: str, ref: TodoRef) -> tuple[str, int]:
    """(the todo as the API's JSON, its version) — for reads that only send it on."""
    where, params = _where_ref(ref)
    row = conn.one(
        f"SELECT {TODO_JSON} AS body, version FROM todos WHERE owner = :owner AND {where}",
        owner=owner,
        **params,
    )
    if row is None:
        raise _not_found(ref)
    return row["body"], row["version"]


def _write(
    conn: Connection, outbox: Outbox, fact: Fact, write: str, subject: str | None, **params: Any
) -> Todo | None:
    """Run `write` (CTEs ending in `t AS (… RETURNING COLUMNS)`) and record its fact about
    `t` in the same statement, inside the fact's `create` span. The todo written, its fact
    kept for publishing after commit; None when it wrote no row (and so no fact).

    The statement's span is named by the write (spans.sql_summary: a SELECT of a CTE).
    """
    from functions.core.outbox import fact_cte

    with outbox.recording(fact.type, subject) as stamped:
        row = conn.one(
            f"{write}, {fact_cte(fact.data)} SELECT t.*, fact.id AS fact_row FROM t, fact",
            **params,
            **stamped,
        )
    if row is None:
        return None
    outbox.keep(row.pop("fact_row"))
    return _todo(row)


def _write_one(
    db: Transactions,
    outbox: Outbox,
    fact: Fact,
    write: Callable[[str], str],
    owner: str,
    ref: TodoRef,
    accepted: set[int] | None,
    values: dict[str, Any],
    *,
    guard: str = "",
    unchanged: Callable[[Todo], bool] | None = None,
) -> Todo:
    """Change one existing todo with its fact: `write(rows)` is the statement's CTEs for
    the rows WHERE `rows`, `values` its parameters.

    The owner, the reference and If-Match (and `guard`) are in the statement's own WHERE;
    when it touches no row, `_current_for_write` says why, or the todo is `unchanged`
    already (returned as it is), or it is written by id.
    """
    where, params = _where_ref(ref)
    values = {**values, "owner": owner}

    def work(conn: Connection) -> Todo:
        todo = _write(
            conn,
            outbox,
            fact,
            write(f"owner = :owner AND {where} AND {_VERSION_OK}{guard}"),
            _subject(ref),
            accepted=_accepted(accepted),
            **params,
            **values,
        )
        if todo is None:
            current = _current_for_write(conn, owner, ref, accepted)
            if unchanged is not None and unchanged(current):
                return current
            todo = _write(
                conn, outbox, fact, write("id = :id"), str(current.id), id=str(current.id), **values
            )
        assert todo is not None
        return todo

    return db.transaction(work)


def _create(conn: Connection, owner: str, data: TodoCreate, outbox: Outbox) -> Todo:
    # One statement: the owner's next number, the row and its fact. The counter row stays
    # locked until COMMIT (numbers never repeat or skip), so the fewer round trips after
    # it, the sooner the owner's next create may go.
    todo_id = str(uuid.uuid4())
    todo = _write(
        conn,
        outbox,
        _facts().CREATED,
        "WITH n AS (INSERT INTO owner_counters AS c (owner, last_number) VALUES (:owner, 1) "
        "ON CONFLICT (owner) DO UPDATE SET last_number = c.last_number + 1 "
        "RETURNING last_number), "
        "t AS (INSERT INTO todos (id, owner, number, title, notes, priority, due_at, tags) "
        "SELECT :id, :owner, n.last_number, :title, :notes, :priority, :due_at, "
        f"CAST(:tags AS text[]) FROM n RETURNING {COLUMNS})",
        todo_id,
        id=todo_id,
        owner=owner,
        title=data.title,
        notes=data.notes,
        priority=data.priority.value,
        due_at=data.due_at,
        tags=data.tags,
    )
    assert todo is not None
    return todo


def create_todo(
    db: Transactions,
    owner: str,
    data: TodoCreate,
    idempotency_key: str | None,
    *,
    outbox: Outbox,
) -> tuple[Todo, bool]:
    """Create a todo; with a key, a retry of the same body returns the same todo (replayed=True)."""
    if idempotency_key is None:
        return db.transaction(lambda c: _create(c, owner, data, outbox)), False
    fingerprint = request_hash(data.model_dump(mode="json"))

    def work(conn: Connection) -> tuple[Todo, bool]:
        conn.execute(
            "DELETE FROM idempotency_keys WHERE owner = :owner AND key = :key "
            f"AND created_at < now() - interval '{IDEMPOTENCY_TTL}'",
            owner=owner,
            key=idempotency_key,
        )
        # A concurrent request with the same key waits here until the first commits.
        claimed = conn.one(
            "INSERT INTO idempotency_keys (owner, key, request_hash) VALUES (:owner, :key, :h) "
            "ON CONFLICT (owner, key) DO NOTHING RETURNING key",
            owner=owner,
            key=idempotency_key,
            h=fingerprint,
        )
        if claimed is None:
            stored = conn.one(
                "SELECT request_hash, response_body FROM idempotency_keys "
                "WHERE owner = :owner AND key = :key",
                owner=owner,
                key=idempotency_key,
            )
            assert stored is not None
            if stored["request_hash"] != fingerprint:
                raise IdempotencyConflict(
                    "this Idempotency-Key was used with a different body",
                    errors=[FieldError("Idempotency-Key", "already used with another body")],
                )
            from functions.core.models import Todo

            return Todo.model_validate_json(stored["response_body"]), True
        todo = _create(conn, owner, data, outbox)
        conn.execute(
            "UPDATE idempotency_keys SET status_code = 201, response_body = :body "
            "WHERE owner = :owner AND key = :key",
            body=todo.model_dump_json(),
            owner=owner,
            key=idempotency_key,
        )
        return todo, False

    return db.transaction(work)


def update_todo(
    db: Transactions,
    owner: str,
    ref: TodoRef,
    patch: TodoPatch,
    accepted: set[int] | None,
    *,
    outbox: Outbox,
) -> Todo:
    changes = patch.model_dump(exclude_unset=True)
    errors = [
        FieldError(f, "must not be null")
        for f in ("title", "priority")
        if f in changes and changes[f] is None
    ]
    if errors:
        raise ValidationFailed("the body has invalid fields", errors=errors)
    if not changes:
        raise ValidationFailed(
            "nothing to change", errors=[FieldError("body", "give at least one field to change")]
        )
    if changes.get("notes", "") is None:
        changes["notes"] = ""
    if "tags" in changes and changes["tags"] is None:
        changes["tags"] = []
    if "priority" in changes:
        changes["priority"] = changes["priority"].value
    assignments = ", ".join(
        f"{name} = CAST(:{name} AS text[])" if name == "tags" else f"{name} = :{name}"
        for name in changes
    )

    def update(rows: str) -> str:
        return (
            f"WITH t AS (UPDATE todos SET {assignments}, updated_at = now(), "
            f"version = version + 1 WHERE {rows} RETURNING {COLUMNS})"
        )

    values = {**changes, "changed": json.dumps(sorted(changes))}
    return _write_one(db, outbox, _facts().UPDATED, update, owner, ref, accepted, values)


def set_status(
    db: Transactions,
    owner: str,
    ref: TodoRef,
    status: Status,
    accepted: set[int] | None,
    *,
    outbox: Outbox,
) -> Todo:
    """Complete or reopen; doing it to a todo already in that state changes nothing."""

    def update(rows: str) -> str:
        return (
            "WITH t AS (UPDATE todos SET status = :status, updated_at = now(), "
            "version = version + 1, completed_at = CASE WHEN :status = 'done' THEN now() END "
            f"WHERE {rows} RETURNING {COLUMNS})"
        )

    return _write_one(
        db,
        outbox,
        _facts().status_changed(status),
        update,
        owner,
        ref,
        accepted,
        {"status": status.value},
        guard=" AND status <> :status",
        unchanged=lambda current: current.status == status,
    )


def delete_todo(
    db: Transactions, owner: str, ref: TodoRef, accepted: set[int] | None, *, outbox: Outbox
) -> Todo:
    def delete(rows: str) -> str:
        return f"WITH t AS (DELETE FROM todos WHERE {rows} RETURNING {COLUMNS})"

    return _write_one(db, outbox, _facts().DELETED, delete, owner, ref, accepted, {})


_cursor_key: bytes | None = None
_cursor_key_lock = threading.Lock()


def cursor_key(db: Database) -> bytes:
    """The database's cursor-signing key, read once per process."""
    global _cursor_key
    if _cursor_key is None:
        with _cursor_key_lock:
            if _cursor_key is None:
                row = db.read(
                    lambda c: c.one("SELECT value FROM platform_secrets WHERE name = 'cursor_key'")
                )
                assert row is not None, "migrations have not been applied"
                _cursor_key = row["value"].encode()
    return _cursor_key


def _scope_of(owner: str, query: ListQuery) -> str:
    """Ties a cursor to its owner and to the filters and sort it was issued for."""
    shape = query.model_dump(mode="json", exclude={"cursor", "limit"})
    raw = json.dumps([owner, shape], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def list_todos(db: Database, owner: str, query: ListQuery) -> tuple[list[Todo], str | None]:
    """One page of the owner's todos, and the cursor of the next page (None on the last)."""
    rows, next_cursor = _page(db, owner, query, COLUMNS)
    return [_todo(row) for row in rows], next_cursor


def list_todos_json(db: Database, owner: str, query: ListQuery) -> str:
    """One page as the API's JSON (`TodoPage`), made of PostgreSQL's JSON of each todo."""
    rows, next_cursor = _page(db, owner, query, f"{TODO_JSON} AS body")
    items = ",".join(row["body"] for row in rows)
    return f'{{"items":[{items}],"next_cursor":{json.dumps(next_cursor)}}}'


def _page(
    db: Database, owner: str, query: ListQuery, select: str
) -> tuple[list[dict[str, Any]], str | None]:
    key = SORT_KEYS[query.sort]
    signing_key = cursor_key(db)
    conditions = ["owner = :owner"]
    params: dict[str, Any] = {"owner": owner, "limit": query.limit + 1}
    if query.status is not None:
        conditions.append("status = :status")
        params["status"] = query.status.value
    if query.tag is not None:
        conditions.append("tags @> ARRAY[CAST(:tag AS text)]")
        params["tag"] = query.tag
    if query.due_before is not None:
        conditions.append("due_at < :due_before")
        params["due_before"] = query.due_before
    if query.due_after is not None:
        conditions.append("due_at >= :due_after")
        params["due_after"] = query.due_after
    if query.q is not None:
        conditions.append(f"search @@ {SEARCH_QUERY}")
        params["q"] = search_terms(query.q)
    columns = ", ".join(key.columns)
    if query.cursor is not None:
        try:
            position = decode_cursor(signing_key, query.cursor)
        except InvalidCursor as exc:
            error = FieldError("cursor", str(exc))
            raise BadRequest("the cursor is not valid", errors=[error]) from None
        values = position.get("k")
        if (
            position.get("s") != _scope_of(owner, query)
            or not isinstance(values, list)
            or len(values) != len(key.columns)
        ):
            raise BadRequest(
                "the cursor belongs to another query",
                errors=[FieldError("cursor", "use it with the same owner, filters and sort")],
            )
        bounds = []
        for i, (column, value) in enumerate(zip(key.columns, values, strict=True)):
            params[f"k{i}"] = value
            bounds.append(f"CAST(:k{i} AS {_KEY_TYPES[column]})")
        conditions.append(f"({columns}) {'<' if key.descending else '>'} ({', '.join(bounds)})")
    direction = " DESC" if key.descending else ""
    order = ", ".join(column + direction for column in key.columns)
    key_texts = ", ".join(f"{c}::text AS k{i}" for i, c in enumerate(key.columns))
    rows = db.read(
        lambda c: c.all(
            f"SELECT {select}, {key_texts} FROM todos WHERE {' AND '.join(conditions)} "
            f"ORDER BY {order} LIMIT :limit",
            **params,
        )
    )
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        # The scope (a hash of the filters) is made only when a cursor is read or written.
        position = [last[f"k{i}"] for i in range(len(key.columns))]
        next_cursor = encode_cursor(signing_key, {"s": _scope_of(owner, query), "k": position})
    return rows, next_cursor
