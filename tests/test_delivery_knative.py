"""Every Knative overlay renders, validates against its schemas and agrees with the registry."""

from __future__ import annotations

import copy
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from events import types as event_types
from functions.registry import FUNCTIONS, FunctionSpec
from tests import manifest_checks as checks
from tests.knative_manifests import (
    REPO_ROOT,
    crd_schema_dir,
    render,
    schema_dir_or_skip,
    unpublished_schema_reason,
    validate_object,
)

KNATIVE = REPO_ROOT / "knative"
OVERLAYS = ("dev", "prod")
PLATFORM = ("dev", "prod")
IMAGE_REPOSITORY = "ghcr.io/todo-platform/todo-platform"
BROKER_CLASS = "eventing.knative.dev/broker.class"
ROLLOUT = "serving.knative.dev/rollout-duration"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
KEEP_WARM = "todo-platform.io/keep-warm"


@pytest.fixture(scope="module")
def overlays() -> dict[str, list[dict[str, Any]]]:
    return {name: render(KNATIVE / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="module")
def platforms() -> dict[str, list[dict[str, Any]]]:
    return {name: render(KNATIVE / "platform" / "overlays" / name) for name in PLATFORM}


def _services(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {checks.name_of(o): o for o in objects if checks.is_kind(o, checks.KNATIVE_SERVICE)}


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and checks.name_of(o) == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"rollout duration {duration!r} is not whole seconds"
    return int(match.group(1))


def validate_all(objects: list[dict[str, Any]]) -> list[str]:
    """Schema errors of every object; the schema dir must exist (else the test skips)."""
    schema_dir = schema_dir_or_skip()
    reasons = sorted(
        {r for o in objects if (r := unpublished_schema_reason(o, schema_dir)) is not None}
    )
    for reason in reasons:
        print(reason)
    return [error for obj in objects for error in validate_object(obj, schema_dir)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_with_zero_schema_errors(overlays, overlay):
    errors = validate_all(overlays[overlay])
    assert not errors, "schema errors:\n" + "\n".join(errors)


@pytest.mark.parametrize("platform", PLATFORM)
def test_knative_platform_validates_with_zero_schema_errors(platforms, platform):
    errors = validate_all(platforms[platform])
    assert not errors, "schema errors:\n" + "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_consistent_with_registry_and_rules(overlays, overlay):
    objects = overlays[overlay]
    problems = [
        *checks.check_functions_have_services(objects, FUNCTIONS),
        *checks.check_trigger_subscribers(objects),
        *checks.check_images_pinned(objects),
        *checks.check_containers_hardened(objects),
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_image_is_the_platform_image_with_one_tag(overlays, overlay):
    images = {
        container["image"] for obj in overlays[overlay] for _, container in checks.containers(obj)
    }
    assert len(images) == 1, f"functions and migration Job must run one image: {images}"
    assert images.pop().startswith(IMAGE_REPOSITORY + ":")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_event_types_match_the_catalog(overlays, overlay):
    event_type_objects = [o for o in overlays[overlay] if o["kind"] == "EventType"]
    declared = sorted(
        attribute["value"]
        for o in event_type_objects
        for attribute in o["spec"]["attributes"]
        if attribute["name"] == "type"
    )
    assert declared == sorted(event_types.ALL)
    for obj in event_type_objects:
        assert obj["spec"]["reference"] == {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "name": "default",
        }


def test_dev_broker_is_channel_based_and_prod_broker_is_durable_kafka(overlays):
    dev = _one(overlays["dev"], "Broker", "default")
    assert dev["metadata"]["annotations"][BROKER_CLASS] == "MTChannelBasedBroker"
    prod = _one(overlays["prod"], "Broker", "default")
    assert prod["metadata"]["annotations"][BROKER_CLASS] == "Kafka"
    config = prod["spec"]["config"]
    assert config["kind"] == "ConfigMap" and config["namespace"] == "todo-platform"
    data = _one(overlays["prod"], "ConfigMap", config["name"])["data"]
    assert int(data["default.topic.replication.factor"]) >= 3
    assert data["bootstrap.servers"]


def test_prod_installs_the_kafka_broker_and_a_replicated_kafka(platforms):
    eventing = _one(platforms["prod"], "KnativeEventing", "knative-eventing")
    urls = [m["URL"] for m in eventing["spec"]["additionalManifests"]]
    assert any(url.endswith("/eventing-kafka-controller.yaml") for url in urls)
    assert any(url.endswith("/eventing-kafka-broker.yaml") for url in urls)
    assert all(re.search(r"/download/knative-v\d+\.\d+\.\d+/", url) for url in urls), urls
    kafka = _one(platforms["prod"], "Kafka", "todo-kafka")["spec"]["kafka"]["config"]
    assert kafka["min.insync.replicas"] >= 2 and kafka["default.replication.factor"] >= 3
    assert not any(o["kind"] == "Kafka" for o in platforms["dev"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_roll_out_gradually_behind_readiness(overlays, overlay):
    for name, service in _services(overlays[overlay]).items():
        annotations = service["metadata"].get("annotations", {})
        assert _seconds(annotations.get(ROLLOUT, "")) >= 30, name
        container = service["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name


def test_prod_rolls_out_more_slowly_than_dev(overlays):
    def longest(objects: list[dict[str, Any]]) -> int:
        return min(
            _seconds(s["metadata"]["annotations"][ROLLOUT]) for s in _services(objects).values()
        )

    assert longest(overlays["prod"]) > longest(overlays["dev"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scale_to_zero_unless_kept_warm(overlays, overlay):
    for name, service in _services(overlays[overlay]).items():
        template = service["spec"]["template"]
        min_scale = template["metadata"]["annotations"][MIN_SCALE]
        warm = service["metadata"]["labels"].get(KEEP_WARM) == "true" and overlay == "prod"
        assert min_scale == ("1" if warm else "0"), name
        spec = template["spec"]
        assert spec["timeoutSeconds"] <= 300
        threads = {v["name"]: v.get("value") for v in spec["containers"][0]["env"]}["THREADS"]
        assert spec["containerConcurrency"] == int(threads), name


def test_prod_keep_warm_patch_sets_min_scale_on_labelled_services(tmp_path: Path):
    """The mechanism the Slack functions will use, exercised on a stand-in Service."""
    prod = yaml.safe_load((KNATIVE / "overlays" / "prod" / "kustomization.yaml").read_text())
    (entry,) = [p for p in prod["patches"] if p.get("target", {}).get("labelSelector")]
    assert entry["target"]["labelSelector"] == f"{KEEP_WARM}=true"
    shutil.copy(KNATIVE / "overlays" / "prod" / entry["path"], tmp_path / "keep-warm.yaml")
    base = yaml.safe_load((KNATIVE / "base" / "services" / "todo-get.yaml").read_text())
    warm, cold = copy.deepcopy(base), copy.deepcopy(base)
    warm["metadata"]["name"] = "slack-standin"
    warm["metadata"]["labels"][KEEP_WARM] = "true"
    (tmp_path / "services.yaml").write_text(yaml.safe_dump_all([warm, cold]))
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": ["services.yaml"],
                "patches": [{"path": "keep-warm.yaml", "target": entry["target"]}],
            }
        )
    )
    scales = {
        checks.name_of(s): s["spec"]["template"]["metadata"]["annotations"][MIN_SCALE]
        for s in render(tmp_path)
    }
    assert scales == {"slack-standin": "1", "todo-get": "0"}


def _route_target(route: dict[str, Any], method: str, path: str) -> str | None:
    """Which hostname an HTTPRoute sends a request to, by Gateway API match precedence."""
    candidates = []
    for rule in route["spec"]["rules"]:
        for match in rule["matches"]:
            if match.get("method", method) != method:
                continue
            kind, value = match["path"]["type"], match["path"]["value"]
            if kind == "Exact" and path == value:
                rank = (0, 0)
            elif kind == "PathPrefix" and (
                path.rstrip("/") == value.rstrip("/") or path.startswith(value.rstrip("/") + "/")
            ):
                rank = (1, -len(value.rstrip("/")))
            else:
                continue
            hosts = [f["urlRewrite"]["hostname"] for f in rule.get("filters", [])]
            candidates.append((rank, 0 if "method" in match else 1, hosts[0] if hosts else None))
    return min(candidates)[2] if candidates else None


def _sample(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4()))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_httproute_sends_every_public_route_to_its_function(overlays, overlay):
    route = _one(overlays[overlay], "HTTPRoute", "todo-api")
    assert route["spec"]["hostnames"], "the route needs the public hostname"
    for spec in FUNCTIONS:
        for registered in spec.routes:
            target = _route_target(route, registered.method, _sample(registered.path))
            expected = (
                f"{spec.name}.todo-platform.svc.cluster.local"
                if spec.visibility == "public"
                else None
            )
            assert target == expected, f"{registered.method} {registered.path} -> {target}"
    for rule in route["spec"]["rules"]:
        assert rule["backendRefs"] == [
            {
                "kind": "Service",
                "name": "kourier-internal",
                "namespace": "knative-serving",
                "port": 80,
            }
        ]


def test_route_matcher_prefers_exact_paths_and_methods():
    route = {
        "spec": {
            "rules": [
                {
                    "matches": [{"method": "POST", "path": {"type": "PathPrefix", "value": "/a/"}}],
                    "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "prefix"}}],
                },
                {
                    "matches": [{"method": "POST", "path": {"type": "Exact", "value": "/a"}}],
                    "filters": [{"type": "URLRewrite", "urlRewrite": {"hostname": "exact"}}],
                },
            ]
        }
    }
    assert _route_target(route, "POST", "/a") == "exact"
    assert _route_target(route, "POST", "/a/1/complete") == "prefix"
    assert _route_target(route, "GET", "/a/1") is None
    assert _route_target(route, "POST", "/ab") is None


def test_referencegrant_allows_exactly_the_route_backend(platforms):
    grant = _one(platforms["dev"], "ReferenceGrant", "todo-platform-httproutes")
    assert grant["metadata"]["namespace"] == "knative-serving"
    assert grant["spec"]["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "todo-platform"}
    ]
    assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": "kourier-internal"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default(overlays, overlay):
    policies = {checks.name_of(o): o for o in overlays[overlay] if o["kind"] == "NetworkPolicy"}
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ports = {
        port["port"]
        for policy in policies.values()
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }
    assert {53, 5432} <= ports
    ingress_from = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for policy in policies.values()
        for rule in policy["spec"].get("ingress", [])
        for peer in rule["from"]
    ]
    assert ingress_from == ["knative-serving"], "only Knative's data path may reach functions"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_runs_as_presync_hook_from_the_function_image(overlays, overlay):
    job = _one(overlays[overlay], "Job", "todo-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert "BeforeHookCreation" in annotations["argocd.argoproj.io/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["todo-platform", "migrate"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    function_images = {
        s["spec"]["template"]["spec"]["containers"][0]["image"]
        for s in _services(overlays[overlay]).values()
    }
    assert function_images == {container["image"]}


# The checks themselves: each must report a deliberately broken input.


def _service_obj(name: str, target: str, image: str = f"{IMAGE_REPOSITORY}:1.0") -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "todo-platform"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "function",
                            "image": image,
                            "env": [{"name": "FUNCTION_TARGET", "value": target}],
                            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "96Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                        }
                    ]
                }
            }
        },
    }


def test_check_reports_a_missing_service():
    specs = [FunctionSpec(name="todo-get", module="m"), FunctionSpec(name="todo-put", module="m")]
    objects = [_service_obj("todo-get", "todo_get")]
    assert checks.check_functions_have_services(objects, specs) == [
        "function todo-put: 0 Knative Services, expected 1"
    ]


def test_check_reports_a_duplicate_service_and_a_wrong_target():
    specs = [FunctionSpec(name="todo-get", module="m"), FunctionSpec(name="todo-put", module="m")]
    objects = [
        _service_obj("todo-get", "todo_get"),
        _service_obj("todo-get", "todo_get"),
        _service_obj("todo-put", "todo_get"),
    ]
    problems = checks.check_functions_have_services(objects, specs)
    assert problems == [
        "function todo-get: 2 Knative Services, expected 1",
        "function todo-put: FUNCTION_TARGET ['todo_get'], expected todo_put",
    ]


def test_check_reports_a_dangling_trigger():
    broker = {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": "default", "namespace": "todo-platform"},
    }

    def trigger(name: str, subscriber: str, broker_name: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Trigger",
            "metadata": {"name": name, "namespace": "todo-platform"},
            "spec": {
                "broker": broker_name,
                "subscriber": {
                    "ref": {
                        "apiVersion": "serving.knative.dev/v1",
                        "kind": "Service",
                        "name": subscriber,
                    }
                },
            },
        }

    objects = [
        broker,
        _service_obj("slack-notify", "slack_notify"),
        trigger("ok", "slack-notify"),
        trigger("dangling", "slack-notifier"),
        trigger("no-broker", "slack-notify", broker_name="other"),
    ]
    problems = checks.check_trigger_subscribers(objects)
    assert len(problems) == 2
    assert "Trigger dangling: subscriber Service/slack-notifier" in problems[0]
    assert problems[1] == "Trigger no-broker: no Broker 'other'"


@pytest.mark.parametrize("image", [IMAGE_REPOSITORY, f"{IMAGE_REPOSITORY}:latest", "busybox"])
def test_check_reports_an_unpinned_image(image):
    problems = checks.check_images_pinned([_service_obj("todo-get", "todo_get", image=image)])
    assert problems == [f"Service/todo-get: image {image!r} is not pinned"]


def test_check_accepts_tags_and_digests():
    digest = f"{IMAGE_REPOSITORY}@sha256:" + "0" * 64
    objects = [_service_obj("a", "a", image=digest), _service_obj("b", "b")]
    assert checks.check_images_pinned(objects) == []


def test_check_reports_root_containers_and_missing_resources():
    service = _service_obj("todo-get", "todo_get")
    container = service["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"runAsUser": 0}
    del container["resources"]["limits"]
    problems = checks.check_containers_hardened([service])
    assert len(problems) == 2 and "not runAsNonRoot" in problems[0]
    assert "memory limit" in problems[1]


def test_check_reports_an_undocumented_secret_and_key():
    service = _service_obj("todo-get", "todo_get")
    service["spec"]["template"]["spec"]["containers"][0]["env"] += [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "todo-database", "key": "url"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "todo-database", "key": "pw"}}},
        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "token"}}},
    ]
    documented = {("todo-platform", "todo-database"): {"url"}}
    assert checks.check_secrets_documented([service], documented) == [
        "Service/todo-get: key 'pw' of Secret todo-platform/todo-database is not documented",
        "Service/todo-get: Secret todo-platform/slack is not documented",
    ]


def test_secret_references_cover_cnpg_argocd_and_volume_forms():
    objects = [
        {
            "kind": "ObjectStore",
            "metadata": {"name": "s", "namespace": "db"},
            "spec": {
                "configuration": {
                    "s3Credentials": {
                        "accessKeyId": {"name": "backup", "key": "ACCESS_KEY_ID"},
                        "secretAccessKey": {"name": "backup", "key": "ACCESS_SECRET_KEY"},
                    }
                }
            },
        },
        {
            "kind": "Cluster",
            "metadata": {"name": "c", "namespace": "db"},
            "spec": {"bootstrap": {"initdb": {"secret": {"name": "owner"}}}},
        },
        {
            "kind": "Application",
            "metadata": {"name": "a", "namespace": "argocd"},
            "spec": {
                "destination": {"namespace": "arc-runners"},
                "source": {"helm": {"valuesObject": {"githubConfigSecret": "github-app"}}},
            },
        },
    ]
    found = sorted(ref for obj in objects for ref in checks.secret_references(obj))
    assert found == [
        ("arc-runners", "github-app", None),
        ("db", "backup", "ACCESS_KEY_ID"),
        ("db", "backup", "ACCESS_SECRET_KEY"),
        ("db", "owner", None),
    ]


def test_secrets_table_parser_reads_names_namespaces_and_keys():
    markdown = (
        "| Secret | Namespace | Keys | What for |\n|---|---|---|---|\n"
        "| `todo-database` | `todo-platform` | `url`, `migrate-url` | DSNs |\n"
        "| `github-app` | `arc-runners` | `github_app_id` | ARC |\n\nafter\n"
    )
    assert checks.parse_secrets_table(markdown) == {
        ("todo-platform", "todo-database"): {"url", "migrate-url"},
        ("arc-runners", "github-app"): {"github_app_id"},
    }


def test_own_schema_rejects_a_typo_in_an_httproute(overlays):
    route = copy.deepcopy(_one(overlays["prod"], "HTTPRoute", "todo-api"))
    assert validate_object(route, crd_schema_dir()) == []
    route["spec"]["rules"][0]["matches"][0]["methd"] = "GET"
    errors = validate_object(route, crd_schema_dir())
    assert any("methd" in error for error in errors), errors
