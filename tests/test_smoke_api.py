"""A first end-to-end check that the fixtures serve the real functions."""

from tests.conftest import Owner
from tests.servers import Api


def test_create_then_get_by_number(api: Api, alice: Owner) -> None:
    created = api.post("/api/v1/todos", token=alice.token, json={"title": "buy milk"})
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    fetched = api.get(f"/api/v1/todos/{number}", token=alice.token)
    assert fetched.status_code == 200
    assert fetched.json()["id"] == created.json()["id"]
    assert fetched.headers["ETag"] == '"1"'
