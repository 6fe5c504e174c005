"""cnpg/cluster renders, validates, and is the highly available, backed-up database we need."""

from __future__ import annotations

from typing import Any

import pytest

from tests import manifest_checks as checks
from tests.knative_manifests import REPO_ROOT, render
from tests.test_delivery_knative import validate_all

CLUSTER_DIR = REPO_ROOT / "cnpg" / "cluster"
NAMESPACE = "todo-database"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(CLUSTER_DIR)


def _only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_validates_with_zero_schema_errors(objects):
    errors = validate_all(objects)
    assert not errors, "schema errors:\n" + "\n".join(errors)


def test_everything_lives_in_the_database_namespace(objects):
    assert {checks.namespace_of(o) for o in objects} == {NAMESPACE}


def test_images_pinned_and_pooler_sized(objects):
    problems = [*checks.check_images_pinned(objects), *checks.check_containers_hardened(objects)]
    assert not problems, "\n".join(problems)


def test_cluster_is_three_synchronous_instances_on_different_nodes(objects):
    spec = _only(objects, "Cluster")["spec"]
    assert spec["instances"] == 3
    assert spec["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
    }
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    assert spec["affinity"]["topologyKey"] == "kubernetes.io/hostname"
    assert spec["storage"]["size"] and spec["walStorage"]["size"]
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
    assert "memory" in spec["resources"]["limits"]
    assert spec["postgresql"]["parameters"]["timezone"] == "UTC"
    assert spec["enableSuperuserAccess"] is False


def test_cluster_bootstraps_the_app_database_from_a_secret(objects):
    initdb = _only(objects, "Cluster")["spec"]["bootstrap"]["initdb"]
    assert (initdb["database"], initdb["owner"]) == ("todo", "todo")
    assert initdb["secret"]["name"]


def test_backups_go_through_the_barman_cloud_plugin_not_the_in_tree_store(objects):
    cluster = _only(objects, "Cluster")["spec"]
    assert "barmanObjectStore" not in cluster.get("backup", {}), "removed in CNPG 1.31"
    (plugin,) = cluster["plugins"]
    store = _only(objects, "ObjectStore")
    assert plugin["name"] == BARMAN_PLUGIN and plugin["isWALArchiver"] is True
    assert plugin["parameters"]["barmanObjectName"] == checks.name_of(store)
    assert store["spec"]["retentionPolicy"]
    credentials = store["spec"]["configuration"]["s3Credentials"]
    assert all("name" in ref and "key" in ref for ref in credentials.values())
    backup = _only(objects, "ScheduledBackup")["spec"]
    assert backup["method"] == "plugin"
    assert backup["pluginConfiguration"]["name"] == BARMAN_PLUGIN
    assert backup["cluster"]["name"] == checks.name_of(_only(objects, "Cluster"))


def test_pooler_is_rw_transaction_mode_with_prepared_statements(objects):
    pooler = _only(objects, "Pooler")
    spec = pooler["spec"]
    assert spec["type"] == "rw" and spec["instances"] >= 2
    assert spec["cluster"]["name"] == checks.name_of(_only(objects, "Cluster"))
    assert spec["pgbouncer"]["poolMode"] == "transaction"
    assert int(spec["pgbouncer"]["parameters"]["max_prepared_statements"]) > 0


def test_pod_monitors_cover_cluster_and_pooler(objects):
    selectors = [o["spec"]["selector"]["matchLabels"] for o in objects if o["kind"] == "PodMonitor"]
    assert {"cnpg.io/cluster": "todo-db", "cnpg.io/podRole": "instance"} in selectors
    assert {"cnpg.io/poolerName": "todo-db-pooler-rw"} in selectors
