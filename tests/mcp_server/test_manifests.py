"""The mcp function's Knative settings agree with the route that reaches it, in every overlay."""

from __future__ import annotations

from typing import Any

import pytest

from functions.mcp_server.access import allowed
from tests.knative_manifests import REPO_ROOT, render

OVERLAYS = ("dev", "prod")


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mcp_answers_for_the_hosts_its_route_sends_and_names_the_public_url(overlay: str) -> None:
    objects = render(REPO_ROOT / "knative" / "overlays" / overlay)
    config = _one(objects, "ConfigMap", "todo-platform-config")["data"]
    route = _one(objects, "HTTPRoute", "todo-api")["spec"]
    (public,) = route["hostnames"]
    (rule,) = [r for r in route["rules"] if any(m["path"]["value"] == "/mcp" for m in r["matches"])]
    rewritten = rule["filters"][0]["urlRewrite"]["hostname"]
    hosts = config["MCP_ALLOWED_HOSTS"].split(",")
    # Knative needs the rewritten Host; a route that kept the public one must still get in.
    assert allowed(rewritten, hosts) and allowed(public, hosts)
    assert config["MCP_ALLOWED_ORIGINS"].split(",") == [f"https://{public}"]
    assert config["MCP_RESOURCE_URL"] == f"https://{public}/mcp"
    assert config["MCP_TODO_API_URL"] == "http://{function}.todo-platform.svc.cluster.local"
    service = _one(objects, "Service", "mcp")
    (container,) = service["spec"]["template"]["spec"]["containers"]
    env = {var["name"]: var for var in container["env"]}
    assert env["TODO_API_URL"]["valueFrom"]["configMapKeyRef"]["key"] == "MCP_TODO_API_URL"
    for name in ("MCP_ALLOWED_HOSTS", "MCP_ALLOWED_ORIGINS", "MCP_RESOURCE_URL"):
        assert env[name]["valueFrom"]["configMapKeyRef"]["key"] == name
