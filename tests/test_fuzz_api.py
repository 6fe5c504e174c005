"""Fuzzing the REST API from the OpenAPI document it serves: no 5xx, no answer off its schema.

schemathesis generates requests for every operation of the document the todo-list
function serves (schema examples, boundary and negative coverage cases, then random
ones); each goes, with a real owner's token, to the function that owns its route,
and each answer is checked against the document: never a server error, and a
documented status, content type, headers and body.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import create
from tests.servers import ROOT, Api

OPENAPI = "/api/v1/openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation and phase; the whole run stays well under a minute on a slow machine.
MAX_EXAMPLES = 40
# A fresh owner's todos are numbered from 1: path ids that reach a real row. Deletes get
# rows of their own, so that the other operations still find theirs after them.
KEPT = ["1", "2", "3"]
DELETABLE = ["4", "5", "6", "7", "8"]

# Loaded at import, as schemathesis' fixture-backed lazy schema does not run under pytest 9;
# the `owner` fixture checks that the running function serves exactly this document.
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    # Random strings as ids only ever miss; mixing in the owner's own todos reaches the code
    # behind the lookup too (updates, status changes and deletes of real rows).
    if not path_parameters or "id" not in path_parameters:
        return st.just(path_parameters)
    own = DELETABLE if context.operation.method.upper() == "DELETE" else KEPT
    mine = st.sampled_from(own).map(lambda ref: {**path_parameters, "id": ref})
    return st.one_of(st.just(path_parameters), mine, mine, mine)  # mostly real rows


@pytest.fixture(scope="module")
def owner(api: Api, db: Database) -> Owner:
    """The owner every fuzzed request acts as, with todos numbered KEPT and DELETABLE."""
    served = requests.get(api.url_for("GET", OPENAPI), timeout=10)
    assert served.json() == schema.raw_schema, "the served OpenAPI is not docs/openapi.json"
    fuzzing = Owner(db)
    created = [str(create(api, fuzzing, title=f"fuzz {n}")["number"]) for n in KEPT + DELETABLE]
    assert created == KEPT + DELETABLE
    return fuzzing


@pytest.fixture(scope="module")
def answers() -> Iterator[Counter[tuple[str, int]]]:
    """(operation, status) of every fuzzed answer, checked once every operation has run."""
    seen: Counter[tuple[str, int]] = Counter()
    yield seen
    print(f"\nfuzzed {sum(seen.values())} requests: {dict(sorted(seen.items()))}")
    operations = {op for op, _ in seen}
    assert len(operations) == len(list(schema.get_all_operations())), operations
    for operation in operations:
        statuses = {status for op, status in seen if op == operation}
        # Not a run of 401s: the token got every operation to its work and to its refusals.
        assert statuses - {401} and any(400 <= s < 500 for s in statuses), (operation, statuses)
    assert sum(n for (_, status), n in seen.items() if status < 300) >= len(operations)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(
    case: Any, api: Api, owner: Owner, answers: Counter[tuple[str, int]]
) -> None:
    target = api.url_for(case.method, case.formatted_path)
    headers = {"Authorization": f"Bearer {owner.token}"}
    response = case.call(
        base_url=target.removesuffix(case.formatted_path), headers=headers, timeout=30
    )
    answers[case.operation.label, response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)
