"""Consistency checks over rendered manifests, each returning the problems it found.

Every check is a pure function of a list of objects (plus what it compares them to), so
the delivery tests run it on the real rendered trees and on deliberately broken objects
alike: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from functions.registry import FunctionSpec

Obj = dict[str, Any]

KNATIVE_SERVICE = ("serving.knative.dev/v1", "Service")
TRIGGER = ("eventing.knative.dev/v1", "Trigger")
# Where each kind keeps its pod spec(s), as paths from the object root.
POD_SPEC_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Service": (("spec", "template", "spec"),),
    "Job": (("spec", "template", "spec"),),
    "CronJob": (("spec", "jobTemplate", "spec", "template", "spec"),),
    "Deployment": (("spec", "template", "spec"),),
    "StatefulSet": (("spec", "template", "spec"),),
    "DaemonSet": (("spec", "template", "spec"),),
    "Pooler": (("spec", "template", "spec"),),
}
# Kinds whose operator sets the container security context itself (CNPG runs PgBouncer as
# its own non-root user); a template that set it would replace the operator's hardening.
OPERATOR_SECURED = {"Pooler"}
# CNPG keeps secret selectors ({name, key}) under these keys.
_SECRET_SELECTOR_PARENTS = {
    "s3Credentials",
    "azureCredentials",
    "googleCredentials",
    "accessKeyId",
    "secretAccessKey",
    "region",
    "sessionToken",
}


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", "<unnamed>"))


def namespace_of(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def is_kind(obj: Obj, api_version_kind: tuple[str, str]) -> bool:
    return (obj.get("apiVersion"), obj.get("kind")) == api_version_kind


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_specs(obj: Obj) -> list[Obj]:
    """The pod specs an object runs (a Knative Service, a Job, a Deployment, a Pooler ...)."""
    paths = POD_SPEC_PATHS.get(str(obj.get("kind")), ())
    found = [_dig(obj, path) for path in paths]
    return [spec for spec in found if isinstance(spec, dict)]


def containers(obj: Obj) -> Iterator[tuple[Obj, Obj]]:
    """(pod spec, container) for every container and init container the object runs."""
    for pod in pod_specs(obj):
        for key in ("initContainers", "containers"):
            for container in pod.get(key) or []:
                yield pod, container


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None if it has none); a digest counts as pinned."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def check_functions_have_services(
    objects: list[Obj], functions: Iterable[FunctionSpec]
) -> list[str]:
    """Every registered function has exactly one Knative Service, running its target."""
    services: dict[str, list[Obj]] = {}
    for obj in objects:
        if is_kind(obj, KNATIVE_SERVICE):
            services.setdefault(name_of(obj), []).append(obj)
    problems = []
    for spec in functions:
        found = services.get(spec.name, [])
        if len(found) != 1:
            problems.append(f"function {spec.name}: {len(found)} Knative Services, expected 1")
            continue
        targets = [
            var.get("value")
            for _, container in containers(found[0])
            for var in container.get("env") or []
            if var.get("name") == "FUNCTION_TARGET"
        ]
        if targets != [spec.target]:
            problems.append(
                f"function {spec.name}: FUNCTION_TARGET {targets}, expected {spec.target}"
            )
    return problems


def check_trigger_subscribers(objects: list[Obj]) -> list[str]:
    """Every Trigger names an existing Broker and subscribes an existing Knative Service."""
    services = {(namespace_of(o), name_of(o)) for o in objects if is_kind(o, KNATIVE_SERVICE)}
    brokers = {(namespace_of(o), name_of(o)) for o in objects if o.get("kind") == "Broker"}
    problems = []
    for trigger in (o for o in objects if is_kind(o, TRIGGER)):
        namespace = namespace_of(trigger)
        spec = trigger.get("spec") or {}
        if (namespace, spec.get("broker")) not in brokers:
            problems.append(f"Trigger {name_of(trigger)}: no Broker {spec.get('broker')!r}")
        ref = (spec.get("subscriber") or {}).get("ref")
        if ref is None:
            continue  # a plain URI subscriber points outside the rendered set
        target = (ref.get("namespace", namespace), ref.get("name"))
        if (ref.get("apiVersion"), ref.get("kind")) != KNATIVE_SERVICE or target not in services:
            problems.append(
                f"Trigger {name_of(trigger)}: subscriber {ref.get('kind')}/{ref.get('name')} "
                "is not a Knative Service in the rendered manifests"
            )
    return problems


def check_images_pinned(objects: list[Obj]) -> list[str]:
    """No container image (nor a CNPG Cluster's imageName) is untagged or `latest`."""
    problems = []
    for obj in objects:
        # An operator-managed template may leave the image to the operator.
        images = [
            str(c.get("image", ""))
            for _, c in containers(obj)
            if "image" in c or obj.get("kind") not in OPERATOR_SECURED
        ]
        if obj.get("kind") == "Cluster" and "imageName" in (obj.get("spec") or {}):
            images.append(str(obj["spec"]["imageName"]))
        for image in images:
            if image_tag(image) in (None, "latest"):
                problems.append(f"{obj.get('kind')}/{name_of(obj)}: image {image!r} is not pinned")
    return problems


def check_containers_hardened(objects: list[Obj]) -> list[str]:
    """Every container runs as non-root and has CPU and memory requests and a memory limit."""
    problems = []
    for obj in objects:
        where = f"{obj.get('kind')}/{name_of(obj)}"
        for pod, container in containers(obj):
            pod_security = pod.get("securityContext") or {}
            security = container.get("securityContext") or {}
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            uid = security.get("runAsUser", pod_security.get("runAsUser"))
            operator_secured = obj.get("kind") in OPERATOR_SECURED
            if not operator_secured and (non_root is not True or uid == 0):
                problems.append(f"{where} container {container.get('name')}: not runAsNonRoot")
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
                problems.append(
                    f"{where} container {container.get('name')}: needs cpu+memory requests "
                    "and a memory limit"
                )
    return problems


def secret_references(obj: Obj) -> list[tuple[str | None, str, str | None]]:
    """(namespace, Secret name, key or None for the whole Secret) the object refers to."""
    namespace = namespace_of(obj)
    if obj.get("kind") == "Application":
        namespace = _dig(obj, ("spec", "destination", "namespace"))
    found: list[tuple[str | None, str, str | None]] = []

    def walk(node: Any, parent: str | None) -> None:
        if isinstance(node, dict):
            if parent == "secretKeyRef" or (parent in _SECRET_SELECTOR_PARENTS and "key" in node):
                found.append((namespace, str(node.get("name")), node.get("key")))
            elif parent in ("secretRef", "secret") and "name" in node:
                found.append((namespace, str(node["name"]), None))
            elif parent == "secret" and "secretName" in node:
                found.append((namespace, str(node["secretName"]), None))
            for key, value in node.items():
                if key in ("githubConfigSecret", "superuserSecret") and isinstance(value, str):
                    found.append((namespace, value, None))
                else:
                    walk(value, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)

    walk(obj, None)
    return found


def check_secrets_documented(
    objects: list[Obj], documented: dict[tuple[str, str], set[str]]
) -> list[str]:
    """Every Secret (and key) any manifest refers to is in the docs' table of Secrets."""
    problems = []
    for obj in objects:
        for namespace, name, key in secret_references(obj):
            where = f"{obj.get('kind')}/{name_of(obj)}"
            keys = documented.get((str(namespace), name))
            if keys is None:
                problems.append(f"{where}: Secret {namespace}/{name} is not documented")
            elif key is not None and key not in keys:
                problems.append(
                    f"{where}: key {key!r} of Secret {namespace}/{name} is not documented"
                )
    return problems


def parse_secrets_table(markdown: str) -> dict[tuple[str, str], set[str]]:
    """The docs' Secrets table: `| name | namespace | keys | what for |`, values in backticks."""
    documented: dict[tuple[str, str], set[str]] = {}
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        cells = [cell.strip().lower() for cell in line.strip().strip("|").split("|")]
        if cells[:3] != ["secret", "namespace", "keys"]:
            continue
        for row in lines[index + 2 :]:
            if not row.strip().startswith("|"):
                break
            name, namespace, keys = (cell.strip() for cell in row.strip().strip("|").split("|")[:3])
            ticked = re.compile(r"`([^`]+)`")
            documented[(ticked.findall(namespace)[0], ticked.findall(name)[0])] = set(
                ticked.findall(keys)
            )
    return documented
