"""The GitHub Actions workflows validate against GitHub's schema and follow our release rules."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.knative_manifests import REPO_ROOT, render

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
NAMES = ("ci.yml", "release.yml")
PINNED_USES = re.compile(
    r"^\s*-?\s*uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s*v\d+\.\d+\.\d+\s*$"
)
IMAGE = "ghcr.io/todo-platform/todo-platform"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML as GitHub reads it: only true/false are booleans, so `on:` stays a key."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def load_workflow(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Yaml12Loader)


@cache
def github_workflow_schema() -> dict[str, Any]:
    """The GitHub workflow schema that check-jsonschema vendors (SchemaStore's)."""
    from importlib import resources

    vendored = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    return json.loads((vendored / "github-workflows.json").read_text())


def schema_errors(workflow: dict[str, Any]) -> list[str]:
    schema = github_workflow_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(workflow)
    ]


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {name: load_workflow(WORKFLOWS / name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_workflow_validates_against_the_github_schema(workflows, name):
    errors = schema_errors(workflows[name])
    assert not errors, "\n".join(errors)


def test_schema_check_rejects_a_broken_workflow():
    broken = {"on": "push", "jobs": {"x": {"runs-on": "ubuntu-24.04", "step": []}}}
    assert schema_errors(broken)


def test_loader_keeps_on_as_a_key():
    assert load_workflow(WORKFLOWS / "ci.yml")["on"]


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned_to_full_commit_shas_with_a_version(name):
    for line in (WORKFLOWS / name).read_text().splitlines():
        if re.match(r"^\s*-?\s*uses:", line):
            assert PINNED_USES.match(line), (
                f"{name}: `{line.strip()}` must be `owner/repo@<40-hex sha> # vX.Y.Z`; "
                "floating tags (@v4, @main) can change under us"
            )


def test_pin_rule_rejects_floating_tags():
    for line in (
        "      - uses: actions/checkout@v5",
        "      - uses: actions/checkout@main",
        "      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8",
    ):
        assert not PINNED_USES.match(line), line


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege_permissions_and_concurrency(workflows, name):
    workflow = workflows[name]
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"]
    for job_name, job in workflow["jobs"].items():
        assert job.get("timeout-minutes"), f"{name}:{job_name} needs a timeout"
        for scope, level in job.get("permissions", {}).items():
            assert level in ("read", "write", "none"), f"{name}:{job_name}"
            if level == "write":
                assert (name, job_name, scope) in {
                    ("release.yml", "image", "packages"),
                    ("release.yml", "deploy", "contents"),
                }, f"{name}:{job_name} may not write {scope}"


def test_ci_runs_lint_and_the_readme_test_command_on_prs_and_pushes(workflows):
    ci = workflows["ci.yml"]
    assert {"pull_request", "push"} <= set(ci["on"])
    runs = [step.get("run", "") for job in ci["jobs"].values() for step in job["steps"]]
    assert any("./todo-platform test" in run for run in runs)
    assert any("ruff check" in run for run in runs) and any(
        "ruff format --check" in run for run in runs
    )
    assert any("test_delivery_knative.py" in run for run in runs), "manifest validation job"
    for job in ci["jobs"].values():
        assert not str(job["runs-on"]).startswith("todo-platform"), (
            "pull requests must not run on self-hosted runners"
        )


def _scale_set_name() -> str:
    apps = render(REPO_ROOT / "runners" / "scale-set")
    (app,) = [a for a in apps if a["metadata"]["name"] == "arc-runners"]
    (chart,) = [s for s in app["spec"]["sources"] if s.get("chart") == "gha-runner-scale-set"]
    return chart["helm"]["valuesObject"]["runnerScaleSetName"]


def test_release_builds_on_the_arc_scale_set_with_provenance(workflows):
    release = workflows["release.yml"]
    assert release["on"]["push"]["branches"] == ["main"]
    assert release["concurrency"]["cancel-in-progress"] is False
    image = release["jobs"]["image"]
    assert image["runs-on"] == _scale_set_name()
    (build,) = [s for s in image["steps"] if "build-push-action" in s.get("uses", "")]
    assert build["with"]["push"] is True
    assert build["with"]["tags"] == "${{ env.IMAGE }}:${{ github.sha }}"
    assert build["with"]["provenance"] == "mode=max" and build["with"]["sbom"] is True
    assert release["env"]["IMAGE"] == IMAGE


def test_release_pins_the_built_tag_in_the_prod_overlay_and_commits(workflows):
    deploy = workflows["release.yml"]["jobs"]["deploy"]
    assert deploy["needs"] == "image"
    steps = {step.get("name", ""): step for step in deploy["steps"]}
    edit = steps["Pin the new image in the prod overlay"]
    assert edit["working-directory"] == "knative/overlays/prod"
    assert edit["run"] == 'kustomize edit set image "${IMAGE}:${GITHUB_SHA}"'
    assert "git push" in steps["Commit the rollout"]["run"]
    prod = yaml.safe_load((REPO_ROOT / "knative/overlays/prod/kustomization.yaml").read_text())
    assert [entry["name"] for entry in prod["images"]] == [IMAGE]
    ignored = workflows["release.yml"]["on"]["push"]["paths-ignore"]
    assert ignored == ["knative/overlays/prod/kustomization.yaml"], "no release loop"
