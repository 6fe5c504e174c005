"""Bearer tokens, scopes, owner isolation and the internal service credential, end to end."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from functions.core.auth import (
    READ,
    SCOPES,
    WRITE,
    Principal,
    authenticate,
    create_token,
    known_principal,
)
from functions.core.db import Database
from tests.conftest import INTERNAL_TOKEN, TOKEN_CACHE_SECONDS, Owner
from tests.helpers import TODOS, create, ids, problem, rows_of
from tests.servers import Api

Call = Callable[[Api, Any, str | None, dict[str, str]], requests.Response]

# Every operation, given the todo reference (id or number) and the caller's headers.
READS: dict[str, Call] = {
    "get": lambda api, ref, token, h: api.get(f"{TODOS}/{ref}", token=token, headers=h),
}
WRITES: dict[str, Call] = {
    "update": lambda api, ref, token, h: api.patch(
        f"{TODOS}/{ref}", token=token, json={"title": "hijacked"}, headers=h
    ),
    "complete": lambda api, ref, token, h: api.post(
        f"{TODOS}/{ref}/complete", token=token, headers=h
    ),
    "reopen": lambda api, ref, token, h: api.post(f"{TODOS}/{ref}/reopen", token=token, headers=h),
    "delete": lambda api, ref, token, h: api.delete(f"{TODOS}/{ref}", token=token, headers=h),
}
OPERATIONS = {**READS, **WRITES}


def _create(api: Api, token: str | None, headers: dict[str, str] | None = None):
    return api.post(TODOS, token=token, json={"title": "new"}, headers=headers)


# -- authentication -----------------------------------------------------------------------------


def test_missing_token_is_401_with_a_bearer_challenge(api: Api, alice: Owner) -> None:
    todo = create(api, alice)
    answers = [
        api.get(TODOS),
        _create(api, None),
        *(op(api, todo["id"], None, {}) for op in OPERATIONS.values()),
    ]
    for response in answers:
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization",
    ["Bearer tp_unknown", "Bearer ", "Basic dXNlcjpwYXNz", "tp_no_scheme", "Bearer a b"],
)
def test_unknown_or_malformed_token_is_401(
    api: Api, db: Database, alice: Owner, authorization: str
) -> None:
    todo = create(api, alice)
    before = rows_of(db, alice)
    for response in [
        api.get(TODOS, headers={"Authorization": authorization}),
        api.post(TODOS, json={"title": "x"}, headers={"Authorization": authorization}),
        api.delete(f"{TODOS}/{todo['id']}", headers={"Authorization": authorization}),
    ]:
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert rows_of(db, alice) == before


def test_revoked_token_is_401_within_the_token_cache_time(
    api: Api, db: Database, alice: Owner
) -> None:
    token = create_token(db, alice.name, [READ, WRITE])
    assert api.get(TODOS, token=token).status_code == 200
    db.transaction(
        lambda c: c.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = :h",
            h=hashlib.sha256(token.encode()).hexdigest(),
        )
    )
    revoked = time.monotonic()
    # The servers remember an accepted token for TOKEN_CACHE_SECONDS (tests/conftest.py).
    while (response := api.get(TODOS, token=token)).status_code == 200:
        assert time.monotonic() - revoked < TOKEN_CACHE_SECONDS + 2, "still accepted"
        time.sleep(0.1)
    problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_an_unknown_token_is_never_remembered(api: Api, db: Database, alice: Owner) -> None:
    token = create_token(db, alice.name, [READ])
    unknown = token + "x"
    assert api.get(TODOS, token=unknown).status_code == 401
    db.transaction(
        lambda c: c.execute(
            "UPDATE api_tokens SET token_hash = :new WHERE token_hash = :old",
            new=hashlib.sha256(unknown.encode()).hexdigest(),
            old=hashlib.sha256(token.encode()).hexdigest(),
        )
    )
    assert api.get(TODOS, token=unknown).status_code == 200  # at once, not after the cache


def test_only_the_service_credential_and_accepted_tokens_are_known_without_the_database(
    db: Database, alice: Owner
) -> None:
    """What the mcp gate answers on its event loop; everything else goes to PostgreSQL."""
    token = create_token(db, alice.name, [READ])
    headers = {"Authorization": f"Bearer {token}"}
    assert known_principal(headers, INTERNAL_TOKEN, TOKEN_CACHE_SECONDS) is None
    accepted = authenticate(db, headers, INTERNAL_TOKEN, TOKEN_CACHE_SECONDS)
    assert accepted == Principal(alice.name, frozenset({READ}))
    assert known_principal(headers, INTERNAL_TOKEN, TOKEN_CACHE_SECONDS) == accepted
    assert known_principal(headers, INTERNAL_TOKEN, 0) is None  # no cache: always asked
    internal = {"Authorization": f"Bearer {INTERNAL_TOKEN}", "X-Todo-Owner": alice.name}
    assert known_principal(internal, INTERNAL_TOKEN, 0) == Principal(alice.name, frozenset(SCOPES))


def test_read_only_token_gets_403_on_every_write(api: Api, db: Database, alice: Owner) -> None:
    todo = create(api, alice)
    before = rows_of(db, alice)
    answers = [_create(api, alice.read_token)]
    answers += [op(api, todo["id"], alice.read_token, {}) for op in WRITES.values()]
    for response in answers:
        problem(response, 403)
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert rows_of(db, alice) == before
    assert READS["get"](api, todo["id"], alice.read_token, {}).status_code == 200
    assert api.get(TODOS, token=alice.read_token).status_code == 200


def test_write_only_token_cannot_read(api: Api, db: Database, alice: Owner) -> None:
    token = create_token(db, alice.name, [WRITE])
    todo = create(api, alice)
    problem(api.get(TODOS, token=token), 403)
    problem(api.get(f"{TODOS}/{todo['id']}", token=token), 403)


# -- owner isolation ----------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["id", "number"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_another_owners_todo_is_404_on_every_operation(
    api: Api, db: Database, alice: Owner, bob: Owner, operation: str, by: str
) -> None:
    create(api, bob)  # bob has a todo numbered 1 too, and 2 is alice's only
    create(api, alice)
    target = create(api, alice, title="alice's secret")
    if operation == "reopen":
        assert api.post(f"{TODOS}/{target['id']}/complete", token=alice.token).ok
    before = rows_of(db, alice)
    response = OPERATIONS[operation](api, target[by], bob.token, {})
    problem(response, 404)
    assert "alice's secret" not in response.text
    assert rows_of(db, alice) == before


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_another_owners_todo_is_404_even_with_its_etag(
    api: Api, db: Database, alice: Owner, bob: Owner, operation: str
) -> None:
    target = create(api, alice)
    before = rows_of(db, alice)
    problem(OPERATIONS[operation](api, target["id"], bob.token, {"If-Match": '"1"'}), 404)
    assert rows_of(db, alice) == before


def test_another_owners_list_never_contains_my_todos(api: Api, alice: Owner, bob: Owner) -> None:
    mine = {create(api, alice, title="shared word", tags=["t"])["id"] for _ in range(3)}
    theirs = create(api, bob, title="shared word", tags=["t"])["id"]
    for params in ["", "?q=shared", "?tag=t", "?status=open", "?sort=due", "?limit=200"]:
        assert ids(api.get(f"{TODOS}{params}", token=bob.token)) == [theirs]
        assert set(ids(api.get(f"{TODOS}{params}", token=alice.token))) == mine


def test_numbers_name_the_callers_own_todo(api: Api, alice: Owner, bob: Owner) -> None:
    a = create(api, alice, title="alice one")
    b = create(api, bob, title="bob one")
    assert api.get(f"{TODOS}/1", token=alice.token).json()["id"] == a["id"]
    assert api.get(f"{TODOS}/1", token=bob.token).json()["id"] == b["id"]


# -- the internal service credential ------------------------------------------------------------


def test_internal_credential_acts_as_the_named_owner(
    api: Api, db: Database, alice: Owner, bob: Owner
) -> None:
    as_alice = {"X-Todo-Owner": alice.name}
    created = _create(api, INTERNAL_TOKEN, as_alice)
    assert created.status_code == 201, created.text
    todo = created.json()
    assert [row["id"] for row in rows_of(db, alice)] == [todo["id"]]
    assert ids(api.get(TODOS, token=INTERNAL_TOKEN, headers=as_alice)) == [todo["id"]]
    for name, op in OPERATIONS.items():
        assert op(api, todo["id"], INTERNAL_TOKEN, as_alice).status_code in (200, 204), name
    # and as bob it cannot see alice's todos
    other = create(api, alice)
    problem(
        api.get(f"{TODOS}/{other['id']}", token=INTERNAL_TOKEN, headers={"X-Todo-Owner": bob.name}),
        404,
    )


def test_internal_credential_without_an_owner_is_400(api: Api) -> None:
    problem(api.get(TODOS, token=INTERNAL_TOKEN), 400, "X-Todo-Owner")
    problem(api.get(TODOS, token=INTERNAL_TOKEN, headers={"X-Todo-Owner": ""}), 400, "X-Todo-Owner")


@pytest.mark.parametrize("token_kind", ["token", "read_token"])
def test_an_ordinary_token_with_x_todo_owner_gains_nothing(
    api: Api, db: Database, alice: Owner, bob: Owner, token_kind: str
) -> None:
    target = create(api, alice)
    before = rows_of(db, alice)
    token = getattr(bob, token_kind)
    as_alice = {"X-Todo-Owner": alice.name}
    for name, op in OPERATIONS.items():
        denied = token_kind == "read_token" and name in WRITES
        problem(op(api, target["id"], token, as_alice), 403 if denied else 404)
    assert ids(api.get(TODOS, token=token, headers=as_alice)) == []
    if token_kind == "token":
        created = _create(api, token, as_alice)
        assert created.status_code == 201
        assert [row["id"] for row in rows_of(db, bob)] == [created.json()["id"]]
    assert rows_of(db, alice) == before


def test_a_wrong_internal_credential_is_401(api: Api, alice: Owner) -> None:
    problem(api.get(TODOS, token=INTERNAL_TOKEN + "x", headers={"X-Todo-Owner": alice.name}), 401)
    problem(api.get(TODOS, token=INTERNAL_TOKEN[:-1], headers={"X-Todo-Owner": alice.name}), 401)


# -- storage ------------------------------------------------------------------------------------


def test_only_token_hashes_are_stored(db: Database, alice: Owner) -> None:
    rows = db.read(
        lambda c: c.all(
            "SELECT token_hash, owner, scopes, name, created_at::text AS created_at, "
            "revoked_at FROM api_tokens WHERE owner = :o",
            o=alice.name,
        )
    )
    assert len(rows) == 2
    stored = json.dumps(rows, default=str)
    for token in (alice.token, alice.read_token):
        assert token not in stored
        assert token[len("tp_") :] not in stored
    assert {row["token_hash"] for row in rows} == {
        hashlib.sha256(t.encode()).hexdigest() for t in (alice.token, alice.read_token)
    }
    everything = db.read(lambda c: c.all("SELECT * FROM api_tokens"))
    assert alice.token not in json.dumps(everything, default=str)


def test_tokens_are_unguessable(db: Database) -> None:
    owner = f"user-{uuid.uuid4().hex[:12]}"
    tokens = {create_token(db, owner) for _ in range(5)}
    assert len(tokens) == 5
    assert all(t.startswith("tp_") and len(t) >= 40 for t in tokens)
