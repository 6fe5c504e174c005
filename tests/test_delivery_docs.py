"""docs/deployment.md documents every Secret the manifests use and a restore that validates."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from tests import manifest_checks as checks
from tests.knative_manifests import REPO_ROOT, render
from tests.test_delivery_knative import validate_all

DEPLOYMENT = REPO_ROOT / "docs" / "deployment.md"
TREES = (
    "knative/overlays/dev",
    "knative/overlays/prod",
    "knative/platform/overlays/dev",
    "knative/platform/overlays/prod",
    "cnpg/cluster",
    "argocd/envs/dev",
    "argocd/envs/prod",
    "runners/rbac",
    "observability",
)
SECTIONS = (
    "## From an empty cluster to a running platform",
    "## From a commit to a rollout",
    "## Rolling back (one commit)",
    "## Restoring the database from a backup",
)


@pytest.fixture(scope="module")
def text() -> str:
    return DEPLOYMENT.read_text()


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return [obj for tree in TREES for obj in render(REPO_ROOT / tree)]


def test_the_guide_has_every_section(text):
    for heading in SECTIONS:
        assert heading in text.splitlines(), heading


def test_every_referenced_secret_and_key_is_documented(text, everything):
    documented = checks.parse_secrets_table(text)
    assert documented, "docs/deployment.md has no | Secret | Namespace | Keys | table"
    references = [ref for obj in everything for ref in checks.secret_references(obj)]
    assert len(references) >= 6, "the walk found too few Secret references to be trusted"
    problems = checks.check_secrets_documented(everything, documented)
    assert not problems, "\n".join(problems)


def test_every_documented_secret_is_created_by_a_documented_command(text):
    for namespace, name in checks.parse_secrets_table(text):
        assert re.search(rf"-n {namespace} create secret generic {name}\b", text), name


def test_functions_connect_through_the_pooler_service(text):
    (pooler,) = [o for o in render(REPO_ROOT / "cnpg" / "cluster") if o["kind"] == "Pooler"]
    name = checks.name_of(pooler)
    assert f"{name}.todo-database.svc:5432" in text
    policy = next(
        o
        for o in render(REPO_ROOT / "knative" / "base")
        if o["kind"] == "NetworkPolicy" and checks.name_of(o) == "allow-to-database"
    )
    (peer,) = policy["spec"]["egress"][0]["to"]
    assert peer["podSelector"]["matchLabels"] == {"cnpg.io/poolerName": name}


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def test_documented_restore_is_a_valid_cluster_through_the_plugin(text):
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    (snippet,) = [yaml.safe_load(_dedent(b)) for b in blocks if "recovery:" in b]
    (cluster,) = [o for o in render(REPO_ROOT / "cnpg" / "cluster") if o["kind"] == "Cluster"]
    restored = copy.deepcopy(cluster)
    del restored["spec"]["bootstrap"]["initdb"]
    _merge(restored, snippet)
    assert not validate_all([restored])
    (origin,) = restored["spec"]["externalClusters"]
    assert origin["plugin"]["name"] == "barman-cloud.cloudnative-pg.io"
    archive = restored["spec"]["plugins"][0]["parameters"]
    assert archive["serverName"] != origin["plugin"]["parameters"]["serverName"]


def _dedent(block: str) -> str:
    lines = block.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines)
