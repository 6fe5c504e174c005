"""argocd/ and runners/ render, validate, and deploy the platform in the right order."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests import manifest_checks as checks
from tests.knative_manifests import REPO_ROOT, render
from tests.test_delivery_knative import validate_all

ENVS = ("dev", "prod")
OUR_REPO = "https://github.com/todo-platform/todo-platform.git"
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
WAVE = "argocd.argoproj.io/sync-wave"


@pytest.fixture(scope="module")
def envs() -> dict[str, list[dict[str, Any]]]:
    return {env: render(REPO_ROOT / "argocd" / "envs" / env) for env in ENVS}


@pytest.fixture(scope="module")
def rbac() -> list[dict[str, Any]]:
    return render(REPO_ROOT / "runners" / "rbac")


def _apps(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {checks.name_of(o): o for o in objects if o["kind"] == "Application"}


def _projects(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {checks.name_of(o): o for o in objects if o["kind"] == "AppProject"}


def _sources(app: dict[str, Any]) -> list[dict[str, Any]]:
    spec = app["spec"]
    return spec.get("sources") or [spec["source"]]


def _wave(app: dict[str, Any]) -> int:
    return int(app["metadata"].get("annotations", {}).get(WAVE, "0"))


@pytest.mark.parametrize("env", ENVS)
def test_env_validates_with_zero_schema_errors(envs, env):
    errors = validate_all(envs[env])
    assert not errors, "schema errors:\n" + "\n".join(errors)


def test_runner_rbac_validates_with_zero_schema_errors(rbac):
    errors = validate_all(rbac)
    assert not errors, "schema errors:\n" + "\n".join(errors)


@pytest.mark.parametrize("env", ENVS)
def test_every_application_stays_inside_its_project(envs, env):
    projects = _projects(envs[env])
    for name, app in _apps(envs[env]).items():
        project = projects[app["spec"]["project"]]["spec"]
        for source in _sources(app):
            assert source["repoURL"] in project["sourceRepos"], f"{name}: {source['repoURL']}"
        destination = app["spec"]["destination"]
        allowed = {(d["server"], d["namespace"]) for d in project["destinations"]}
        assert (destination["server"], destination["namespace"]) in allowed, name


@pytest.mark.parametrize("env", ENVS)
def test_sources_are_pinned_and_our_paths_render(envs, env):
    for name, app in _apps(envs[env]).items():
        for source in _sources(app):
            if source["repoURL"] == OUR_REPO:
                assert source["targetRevision"] == "main", name
                path = REPO_ROOT / source["path"]
                assert (path / "kustomization.yaml").is_file(), f"{name}: {source['path']}"
                if not source["path"].startswith("argocd/"):
                    assert render(path), f"{name}: {source['path']} renders nothing"
            else:
                assert "chart" in source, f"{name}: third-party sources are pinned Helm charts"
                assert EXACT_VERSION.match(source["targetRevision"]), (
                    f"{name}: {source['chart']} at {source['targetRevision']!r}; pin a version"
                )


@pytest.mark.parametrize("env", ENVS)
def test_applications_self_heal_prune_and_retry_with_backoff(envs, env):
    for name, app in _apps(envs[env]).items():
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}, name
        assert policy["retry"]["limit"] > 0 and policy["retry"]["backoff"]["factor"] > 1, name


@pytest.mark.parametrize("env", ENVS)
def test_sync_waves_order_operators_database_functions(envs, env):
    apps = _apps(envs[env])
    operators = [
        "cert-manager",
        "knative-operator",
        "cloudnative-pg",
        "plugin-barman-cloud",
        "arc-controller",
        "opentelemetry-operator",
    ]
    assert _wave(apps["cert-manager"]) < _wave(apps["plugin-barman-cloud"])
    assert _wave(apps["cloudnative-pg"]) < _wave(apps["plugin-barman-cloud"])
    assert max(_wave(apps[o]) for o in operators) < _wave(apps["knative-platform"])
    assert _wave(apps["knative-platform"]) < _wave(apps["todo-database"])
    assert _wave(apps["todo-database"]) < _wave(apps["todo-functions"])
    # The collector is an OpenTelemetry Operator resource; functions export to it.
    assert max(_wave(apps[o]) for o in operators) < _wave(apps["observability"])
    assert _wave(apps["observability"]) < _wave(apps["todo-functions"])
    assert _wave(apps["arc-controller"]) < _wave(apps["arc-runners"])
    projects = [o for o in envs[env] if o["kind"] == "AppProject"]
    assert all(_wave(p) < min(_wave(a) for a in apps.values()) for p in projects)
    if env == "prod":
        assert _wave(apps["strimzi"]) < _wave(apps["knative-platform"])


@pytest.mark.parametrize("env", ENVS)
def test_env_deploys_its_own_overlays(envs, env):
    apps = _apps(envs[env])
    assert apps["todo-functions"]["spec"]["source"]["path"] == f"knative/overlays/{env}"
    platform_path = apps["knative-platform"]["spec"]["source"]["path"]
    assert platform_path == f"knative/platform/overlays/{env}"
    assert apps["root"]["spec"]["source"]["path"] == f"argocd/envs/{env}"


def test_functions_migrate_in_a_presync_hook_before_they_sync(envs):
    app = _apps(envs["prod"])["todo-functions"]
    rendered = render(REPO_ROOT / app["spec"]["source"]["path"])
    hooks = [
        o
        for o in rendered
        if o["kind"] == "Job"
        and o["metadata"].get("annotations", {}).get("argocd.argoproj.io/hook") == "PreSync"
    ]
    assert [h["spec"]["template"]["spec"]["containers"][0]["command"] for h in hooks] == [
        ["todo-platform", "migrate"]
    ]


def test_functions_ignore_only_knative_defaulted_fields(envs):
    app = _apps(envs["prod"])["todo-functions"]
    ignored = [
        pointer
        for rule in app["spec"]["ignoreDifferences"]
        for pointer in rule.get("jsonPointers", []) + rule.get("jqPathExpressions", [])
    ]
    for pointer in ignored:
        assert "traffic" not in pointer and "image" not in pointer, pointer
        assert not pointer.rstrip("/").endswith(("annotations", "containers", "spec")), pointer
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_database_is_never_pruned_or_deleted_by_argocd():
    (cluster,) = [o for o in render(REPO_ROOT / "cnpg" / "cluster") if o["kind"] == "Cluster"]
    options = cluster["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    assert set(options.split(",")) >= {"Prune=false", "Delete=false"}


def test_todo_platform_project_is_our_repo_and_namespaces_only(envs):
    project = _projects(envs["prod"])["todo-platform"]["spec"]
    assert project["sourceRepos"] == [OUR_REPO]
    assert {d["namespace"] for d in project["destinations"]} == {"todo-platform", "todo-database"}
    kinds = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
    assert ("", "Secret") not in kinds, "Argo CD must not manage Secrets"
    assert all("*" not in k for kind in kinds for k in kind)


def _runner_values(envs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    app = _apps(envs["prod"])["arc-runners"]
    (chart,) = [s for s in _sources(app) if s.get("chart") == "gha-runner-scale-set"]
    return chart["helm"]["valuesObject"]


def test_runner_scale_set_scales_from_zero_in_kubernetes_mode(envs, rbac):
    values = _runner_values(envs)
    assert values["minRunners"] == 0 and 1 <= values["maxRunners"] <= 10
    assert values["containerMode"]["type"] == "kubernetes"
    assert values["githubConfigSecret"] and isinstance(values["githubConfigSecret"], str)
    accounts = {checks.name_of(o) for o in rbac if o["kind"] == "ServiceAccount"}
    assert values["template"]["spec"]["serviceAccountName"] in accounts
    app = _apps(envs["prod"])["arc-runners"]
    controller = _apps(envs["prod"])["arc-controller"]
    assert app["spec"]["destination"]["namespace"] == "arc-runners"
    assert controller["spec"]["destination"]["namespace"] != "arc-runners"
    pod = {"kind": "Deployment", "metadata": {"name": "runner"}, "spec": values["template"]}
    problems = [*checks.check_images_pinned([pod]), *checks.check_containers_hardened([pod])]
    assert not problems, problems


def test_runner_rbac_is_namespaced_and_least_privilege(rbac):
    kinds = {o["kind"] for o in rbac}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    for role in (o for o in rbac if o["kind"] == "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"{checks.name_of(role)}: wildcard {field}"
            assert not {"update", "patch", "escalate", "bind", "impersonate"} & set(rule["verbs"])
    for binding in (o for o in rbac if o["kind"] == "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        assert [s["name"] for s in binding["subjects"]] == ["arc-runner"]
