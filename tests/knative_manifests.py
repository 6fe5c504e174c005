"""Render Kustomize trees and validate each object against its schema, for the manifest tests.

Custom resources (Knative, CNPG, ArgoCD, ...) are checked against the strict JSON
Schemas in `$CRD_SCHEMA_DIR` (`<group>/<kind>_<version>.json`); built-in kinds
against the strict schemas that ship with the `kubernetes-validate` package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests import unpublished_schemas

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CRD_SCHEMA_DIR = REPO_ROOT.parent / "shared" / "crd-schemas"
# The newest Kubernetes minor the pinned kubernetes-validate (1.37.0) ships schemas for.
KUBERNETES_VERSION = "1.37"


def render(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """`kubectl kustomize <path>`, parsed into one dict per object (empty documents dropped)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not on PATH; it is needed to render Kustomize trees")
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def crd_schema_path() -> Path:
    """Where the CRD schemas should be: `$CRD_SCHEMA_DIR`, else `<repo>/../shared/crd-schemas`."""
    raw = os.environ.get("CRD_SCHEMA_DIR")
    return Path(raw) if raw else DEFAULT_CRD_SCHEMA_DIR


def crd_schema_dir() -> Path | None:
    """The CRD schema directory, or None if it is absent."""
    path = crd_schema_path()
    return path if path.is_dir() else None


def schema_dir_or_skip() -> Path:
    """The CRD schema directory; skips the calling test (saying why) when it is absent.

    With REQUIRE_CRD_SCHEMAS=1 (CI) an absent directory fails the test instead: there,
    a skipped validation would look like a passed one.
    """
    import pytest

    schema_dir = crd_schema_dir()
    if schema_dir is None:
        message = f"CRD schema directory {crd_schema_path()} is absent (set CRD_SCHEMA_DIR)"
        if os.environ.get("REQUIRE_CRD_SCHEMAS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return schema_dir


def describe(obj: dict[str, Any]) -> str:
    """`apiVersion Kind/name`, for messages."""
    name = (obj.get("metadata") or {}).get("name", "<unnamed>")
    return f"{obj.get('apiVersion')} {obj.get('kind')}/{name}"


def validate_object(obj: dict[str, Any], schema_dir: Path | None) -> list[str]:
    """Every schema error in `obj` as a readable line; an empty list means it is valid.

    A kind with no schema anywhere is an error too: an unchecked object must not pass.
    Kinds the shared catalog lacks (Gateway API, Knative Operator, Strimzi) are checked
    against our own narrower schemas (tests/unpublished_schemas.py); see
    `unpublished_schema_reason`.
    """
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{describe(obj)}: apiVersion and kind must both be strings"]
    group, _, version = api_version.rpartition("/")
    if "." in group:
        schema_file = schema_dir / group / f"{kind.lower()}_{version}.json" if schema_dir else None
        if schema_file is not None and schema_file.is_file():
            return _validate_custom_resource(obj, schema_file)
        own = unpublished_schemas.schema_for(api_version, kind)
        if own is not None:
            return _validate_against(obj, own)
        if schema_dir is None:
            return [f"{describe(obj)}: no CRD schema directory to validate against"]
    # Built-in kinds: the core group ("v1"), dot-less groups ("apps/v1"), and *.k8s.io
    # groups with no CRD schema of their own (rbac.authorization.k8s.io/v1, ...).
    return _validate_builtin(obj)


def unpublished_schema_reason(obj: dict[str, Any], schema_dir: Path | None) -> str | None:
    """Why `obj` is checked against our own schema rather than a published one (else None)."""
    api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
    group, _, version = api_version.rpartition("/")
    if schema_dir is not None and (schema_dir / group / f"{kind.lower()}_{version}.json").is_file():
        return None
    if unpublished_schemas.schema_for(api_version, kind) is None:
        return None
    return unpublished_schemas.REASON.format(group=group)


def _validate_custom_resource(obj: dict[str, Any], schema_file: Path) -> list[str]:
    return _validate_against(obj, _load_schema(schema_file))


def _validate_against(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft7Validator
    )
    errors = sorted(validator_class(schema).iter_errors(obj), key=lambda e: list(e.absolute_path))
    return [f"{describe(obj)}: {_path(e.absolute_path)}: {e.message}" for e in errors]


@cache
def _load_schema(schema_file: Path) -> dict[str, Any]:
    return json.loads(schema_file.read_text())


def _validate_builtin(obj: dict[str, Any]) -> list[str]:
    # Imported here: it loads large schema bundles, and only built-in kinds need it.
    from kubernetes_validate import utils as kv

    try:
        kv.validate(obj, KUBERNETES_VERSION, strict=True)
    except kv.ValidationError as e:
        return [f"{describe(obj)}: {_path(e.absolute_path)}: {e.message}"]
    except kv.SchemaNotFoundError:
        return [
            f"{describe(obj)}: no schema for this kind, neither a CRD schema nor "
            f"a built-in Kubernetes {KUBERNETES_VERSION} one"
        ]
    return []


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "<root>"
