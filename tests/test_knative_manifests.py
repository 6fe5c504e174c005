"""The Knative manifests in knative/base match the function registry and the platform's rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from functions.registry import FUNCTIONS, FunctionSpec
from tests.knative_manifests import (
    REPO_ROOT,
    crd_schema_dir,
    render,
    schema_dir_or_skip,
    validate_object,
)

BASE = REPO_ROOT / "knative" / "base"
IMAGE_REPOSITORY = "ghcr.io/todo-platform/todo-platform"
SERVICE_ACCOUNT = "todo-functions"
CONFIG_MAP = "todo-platform-config"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
# Settings that must come from a Secret (DESIGN.md §9), with the Secret and key they come from.
SECRET_ENV = {
    "DATABASE_URL": ("todo-database", "url"),
    "TODO_INTERNAL_TOKEN": ("todo-internal-token", "token"),
}
CONFIG_ENV = ("LOG_FORMAT", "LOG_LEVEL", "TODO_API_URL")

by_name = pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render(BASE)


@pytest.fixture(scope="module")
def services(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for obj in rendered:
        if obj["apiVersion"] == "serving.knative.dev/v1" and obj["kind"] == "Service":
            name = obj["metadata"]["name"]
            assert name not in found, f"two Knative Services named {name}"
            found[name] = obj
    return found


def _schema_dir_or_skip() -> Path:
    return schema_dir_or_skip()


def _rendered_object(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in rendered:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    pytest.fail(f"knative/base renders no {kind} named {name}")


def _service(services: dict[str, dict[str, Any]], spec: FunctionSpec) -> dict[str, Any]:
    if spec.name not in services:
        pytest.fail(f"registered function {spec.name} has no Knative Service in knative/base")
    return services[spec.name]


def _container(service: dict[str, Any]) -> dict[str, Any]:
    containers = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{service['metadata']['name']}: expected exactly one container"
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {var["name"]: var for var in container.get("env", [])}


def _images(obj: dict[str, Any]) -> list[str]:
    """Every container image in any object that carries a pod template."""
    spec = obj.get("spec", {})
    pods = [
        spec.get("template", {}).get("spec", {}),
        spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {}),
    ]
    return [
        container["image"]
        for pod in pods
        for key in ("containers", "initContainers")
        for container in pod.get(key, [])
    ]


def _tag(image: str) -> str | None:
    """The tag of an image reference (None if it has none); a digest counts as pinned."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def test_every_registered_function_has_one_service_with_its_target(services):
    assert sorted(services) == sorted(spec.name for spec in FUNCTIONS), (
        "knative/base Services and functions/registry.py FUNCTIONS differ"
    )
    for spec in FUNCTIONS:
        env = _env(_container(services[spec.name]))
        assert env.get("FUNCTION_TARGET", {}).get("value") == spec.target, spec.name


def test_services_validate_against_crd_schemas(rendered):
    schema_dir = _schema_dir_or_skip()
    errors = [error for obj in rendered for error in validate_object(obj, schema_dir)]
    assert not errors, "schema errors:\n" + "\n".join(errors)


def test_schema_validation_rejects_an_unknown_field_in_a_service(services):
    schema_dir = _schema_dir_or_skip()
    service = copy.deepcopy(next(iter(services.values())))
    assert validate_object(service, schema_dir) == []
    _container(service)["imagePullPolcy"] = "Always"  # the typo a reviewer could miss
    errors = validate_object(service, schema_dir)
    assert any("imagePullPolcy" in error for error in errors), errors


def test_schema_validation_rejects_an_unknown_field_in_a_core_kind(rendered):
    account = copy.deepcopy(_rendered_object(rendered, "ServiceAccount", SERVICE_ACCOUNT))
    assert validate_object(account, crd_schema_dir()) == []
    account["automountToken"] = False
    errors = validate_object(account, crd_schema_dir())
    assert any("automountToken" in error for error in errors), errors


def test_no_image_uses_latest_tag(rendered):
    images = [image for obj in rendered for image in _images(obj)]
    assert images, "no container images rendered"
    for image in images:
        tag = _tag(image)
        assert tag not in (None, "latest"), f"{image}: pin a version tag or digest, not latest"
        assert image.startswith(f"{IMAGE_REPOSITORY}:") or image.startswith(f"{IMAGE_REPOSITORY}@")


@by_name
def test_cluster_local_functions_are_labelled(services, spec):
    labels = _service(services, spec)["metadata"].get("labels", {})
    if spec.visibility == "cluster-local":
        assert labels.get(VISIBILITY_LABEL) == "cluster-local"
    else:
        assert VISIBILITY_LABEL not in labels, f"public function {spec.name} is cluster-local"


@by_name
def test_scale_annotations_match_registry(services, spec):
    template = _service(services, spec)["spec"]["template"]
    annotations = template["metadata"].get("annotations", {})
    assert annotations.get(MIN_SCALE) == str(spec.min_scale)
    assert annotations.get(MAX_SCALE) == str(spec.max_scale)


@by_name
def test_concurrency_matches_gunicorn_threads(services, spec):
    template_spec = _service(services, spec)["spec"]["template"]["spec"]
    threads = _env(_container(_service(services, spec)))["THREADS"]["value"]
    assert template_spec["containerConcurrency"] == int(threads)
    assert template_spec["timeoutSeconds"] == 30


@by_name
def test_readiness_probe_is_readyz(services, spec):
    container = _container(_service(services, spec))
    assert container["ports"] == [{"containerPort": 8080, "name": "http1"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


@by_name
def test_containers_run_as_non_root_with_resources(services, spec):
    service = _service(services, spec)
    pod = service["spec"]["template"]["spec"]
    container = _container(service)
    security = container.get("securityContext", {})
    assert security.get("runAsNonRoot") is True
    assert security.get("runAsUser") == 65532
    assert security.get("readOnlyRootFilesystem") is True
    assert security.get("allowPrivilegeEscalation") is False
    assert security.get("capabilities", {}).get("drop") == ["ALL"]
    assert security.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    for kind in ("requests", "limits"):
        assert set(container.get("resources", {}).get(kind, {})) >= {"cpu", "memory"}, kind
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod.get("enableServiceLinks") is False


def test_functions_service_account_mounts_no_token(rendered):
    account = _rendered_object(rendered, "ServiceAccount", SERVICE_ACCOUNT)
    assert account.get("automountServiceAccountToken") is False


@by_name
def test_secrets_come_from_secret_refs_and_settings_from_the_config_map(rendered, services, spec):
    env = _env(_container(_service(services, spec)))
    for name, (secret, key) in SECRET_ENV.items():
        assert "value" not in env[name], f"{spec.name}: {name} must not be a literal"
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    config = _rendered_object(rendered, "ConfigMap", CONFIG_MAP)["data"]
    for name in CONFIG_ENV:
        ref = env[name]["valueFrom"]["configMapKeyRef"]
        assert ref["name"] == CONFIG_MAP
        assert ref["key"] in config, f"{spec.name}: {name} reads a key the ConfigMap lacks"


@by_name
def test_services_carry_recommended_labels(services, spec):
    service = _service(services, spec)
    for labels in (
        service["metadata"]["labels"],
        service["spec"]["template"]["metadata"]["labels"],
    ):
        assert labels.get("app.kubernetes.io/name") == spec.name
        assert labels.get("app.kubernetes.io/part-of") == "todo-platform"


KEEP_WARM = "todo-platform.io/keep-warm"


@by_name
def test_keep_warm_label_matches_registry(services, spec):
    """The Slack acknowledgers carry the label the prod overlay turns into min-scale 1."""
    labels = _service(services, spec)["metadata"].get("labels", {})
    assert (labels.get(KEEP_WARM) == "true") == spec.keep_warm, spec.name
