"""observability/ renders and validates; its alerts and dashboards query metrics that exist.

The collector is a sound pipeline every function and Knative can reach; every PromQL
expression parses (promtool when installed, a bracket-and-name check always) and names
only series the functions emit (functions/core/metrics.py) or CloudNativePG exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from functions.core import metrics
from functions.core.telemetry import Instrument
from tests import manifest_checks as checks
from tests import observability_checks as obs
from tests.knative_manifests import REPO_ROOT, render
from tests.test_delivery_knative import validate_all

OBSERVABILITY = REPO_ROOT / "observability"
DOCS = REPO_ROOT / "docs" / "observability.md"
NAMESPACE = "observability"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(OBSERVABILITY)


@pytest.fixture(scope="module")
def dashboards(objects) -> dict[str, dict[str, Any]]:
    found = {}
    for config_map in (o for o in objects if o["kind"] == "ConfigMap"):
        for key, text in config_map["data"].items():
            found[key] = json.loads(text)
    return found


@pytest.fixture(scope="module")
def rules(objects) -> dict[str, str]:
    (rule_object,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    return dict(obs.rule_expressions(rule_object))


def _only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_validates_with_zero_schema_errors(objects):
    errors = validate_all(objects)
    assert not errors, "schema errors:\n" + "\n".join(errors)


def test_everything_lives_in_the_observability_namespace(objects):
    namespaced = [o for o in objects if o["kind"] != "Namespace"]
    assert {checks.namespace_of(o) for o in namespaced} == {NAMESPACE}


def test_collector_receives_otlp_and_exports_each_signal_over_otlp_http(objects):
    collector = _only(objects, "OpenTelemetryCollector")
    config = collector["spec"]["config"]
    assert not obs.collector_problems(config)
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipelines = config["service"]["pipelines"]
    destinations = {"traces": "tempo", "metrics": "prometheus", "logs": "loki"}
    for signal, backend in destinations.items():
        (exporter,) = pipelines[signal]["exporters"]
        assert exporter == f"otlphttp/{backend}", signal
        assert pipelines[signal]["receivers"] == ["otlp"]
    assert config["exporters"]["otlphttp/prometheus"]["endpoint"].endswith("/api/v1/otlp")
    assert collector["spec"]["replicas"] >= 2
    assert "memory" in collector["spec"]["resources"]["limits"]


def _collector_url(objects: list[dict[str, Any]]) -> str:
    name = checks.name_of(_only(objects, "OpenTelemetryCollector"))
    return f"http://{name}-collector.{NAMESPACE}.svc:4318"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_function_exports_to_the_collector_and_may_reach_it(objects, overlay):
    rendered = render(REPO_ROOT / "knative" / "overlays" / overlay)
    (telemetry,) = [
        o
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("telemetry")
    ]
    assert telemetry["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == _collector_url(objects)
    assert f"deployment.environment.name={overlay}" in telemetry["data"]["OTEL_RESOURCE_ATTRIBUTES"]
    for service in (o for o in rendered if checks.is_kind(o, checks.KNATIVE_SERVICE)):
        container = service["spec"]["template"]["spec"]["containers"][0]
        sources = [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
        assert checks.name_of(telemetry) in sources, checks.name_of(service)
        names = {v["name"]: v.get("value") for v in container["env"]}
        assert names["OTEL_SERVICE_NAME"] == checks.name_of(service)
    egress = [
        (peer, port["port"])
        for policy in rendered
        if policy["kind"] == "NetworkPolicy"
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        for port in rule.get("ports", [])
    ]
    collector_pods = {"app.kubernetes.io/component": "opentelemetry-collector"}
    assert any(
        peer.get("namespaceSelector", {}).get("matchLabels")
        == {"kubernetes.io/metadata.name": NAMESPACE}
        and peer.get("podSelector", {}).get("matchLabels") == collector_pods
        and port == 4318
        for peer, port in egress
    ), "no egress from the functions to the collector"
    ingress = _only(
        [o for o in objects if checks.name_of(o) == "allow-otlp-to-collector"], "NetworkPolicy"
    )
    assert ingress["spec"]["podSelector"]["matchLabels"] == collector_pods
    sources_allowed = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in ingress["spec"]["ingress"]
        for peer in rule["from"]
    }
    assert {"todo-platform", "knative-serving", "knative-eventing"} <= sources_allowed


@pytest.mark.parametrize("platform", ["dev", "prod"])
def test_knative_sends_its_own_traces_and_metrics_to_the_collector(objects, platform):
    rendered = render(REPO_ROOT / "knative" / "platform" / "overlays" / platform)
    url = _collector_url(objects)
    for kind in ("KnativeServing", "KnativeEventing"):
        config = _only(rendered, kind)["spec"]["config"]["observability"]
        assert config["tracing-protocol"] == config["metrics-protocol"] == "http/protobuf"
        assert config["tracing-endpoint"] == f"{url}/v1/traces"
        assert config["metrics-endpoint"] == f"{url}/v1/metrics"
        assert 0 < float(config["tracing-sampling-rate"]) <= 1


def test_every_alert_and_panel_expression_parses_and_names_real_metrics(rules, dashboards):
    expressions = list(rules.values()) + [
        obs.substitute(query)
        for dashboard in dashboards.values()
        for _, source, query in obs.dashboard_queries(dashboard)
        if source == "prometheus"
    ]
    assert len(expressions) > 30
    problems = [
        problem
        for expr in expressions
        for problem in obs.syntax_problems(expr) + obs.metric_problems(expr, metrics.ALL)
    ]
    assert not problems, "\n".join(problems)


def test_every_metric_the_functions_emit_is_on_a_dashboard_or_an_alert(rules, dashboards):
    queried = {
        name
        for expr in list(rules.values())
        + [q for d in dashboards.values() for _, _, q in obs.dashboard_queries(d)]
        for name, _ in obs.selectors(obs.substitute(expr))
    }
    unseen = [i.name for i in metrics.ALL if not obs.prometheus_names(i) & queried]
    assert not unseen, f"emitted but shown nowhere: {unseen}"


def test_promtool_accepts_every_rule_and_panel_expression(tmp_path: Path, objects, dashboards):
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get("REQUIRE_PROMTOOL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(_only(objects, "PrometheusRule")["spec"]))
    panels = [
        {"record": f"panel:{index}", "expr": obs.substitute(query)}
        for index, query in enumerate(
            q
            for d in dashboards.values()
            for _, s, q in obs.dashboard_queries(d)
            if s == "prometheus"
        )
    ]
    panels_file = tmp_path / "panels.yaml"
    panels_file.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": panels}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file), str(panels_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_labelled_for_the_grafana_sidecar_and_unique(objects, dashboards):
    for config_map in (o for o in objects if o["kind"] == "ConfigMap"):
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids) == 6
    titles = " ".join(d["title"] for d in dashboards.values())
    for subject in ("RED", "Cold starts", "Event flow", "Outbox", "Database"):
        assert subject in titles
    for name, dashboard in dashboards.items():
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        for title, _, query in obs.dashboard_queries(dashboard):
            assert query, f"{name}: panel {title!r} has no query"
            used = set(re.findall(r"\$(\w+)", query)) - {"__rate_interval", "__range"}
            assert used <= variables, f"{name}: {title!r} uses undefined {used - variables}"
        for panel in (p for p in dashboard["panels"] if p["type"] != "row"):
            assert panel["datasource"]["uid"].startswith("${"), f"{name}: {panel['title']}"


def test_every_alert_has_a_severity_and_a_runbook_in_the_docs(objects):
    text = DOCS.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    }
    rule_object = _only(objects, "PrometheusRule")
    alerts = [r for g in rule_object["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 6
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        anchor = urlsplit(alert["annotations"]["runbook_url"]).fragment
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in docs/observability.md"


def test_the_alerts_cover_what_the_issue_asks(rules):
    joined = "\n".join(rules.values())
    for needle in (
        'http_response_status_code=~"5.."',  # error ratio
        "histogram_quantile(0.99",  # p99 latency
        "todo_events_dead_letters_total",  # dead letters > 0
        "todo_outbox_lag_seconds",  # outbox lag
        "cnpg_pg_replication_lag",  # replication lag
        "last_failed_backup_timestamp",  # failed backup
    ):
        assert needle in joined, needle


# The checks themselves: each must report a deliberately broken input.


def test_prometheus_names_follow_the_otlp_translation():
    histogram = Instrument("histogram", "http.server.request.duration", "s", "")
    assert obs.prometheus_names(histogram) == {
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_sum",
        "http_server_request_duration_seconds_count",
    }
    counter = Instrument("counter", "faas.coldstarts", "{coldstart}", "")
    assert obs.prometheus_names(counter) == {"faas_coldstarts_total"}
    gauge = Instrument("gauge", "todo.outbox.lag", "s", "")
    assert obs.prometheus_names(gauge) == {"todo_outbox_lag_seconds"}


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(x[5m])",
        'rate(x{job="a}[5m])',
        "sum by (job) (rate(x[5m]))]",
        'rate(x{job=~"$job"}[5m])',
    ],
)
def test_syntax_check_reports_broken_expressions(expr):
    assert obs.syntax_problems(expr)


def test_metric_check_reports_unknown_metrics_and_labels():
    histogram = Instrument("histogram", "http.server.request.duration", "s", "", ("http.route",))
    assert not obs.metric_problems(
        'sum by (job, le) (rate(http_server_request_duration_seconds_bucket{http_route="/a"}[5m]))',
        [histogram],
    )
    misspelt = (
        "rate(http_server_request_duration_seconds_buckets[5m])"
        ' + rate(http_server_request_duration_seconds_count{http_rout="/a"}[5m])'
    )
    problems = obs.metric_problems(misspelt, [histogram])
    assert len(problems) == 2
    assert "unknown metric 'http_server_request_duration_seconds_buckets'" in problems[0]
    assert "no label ['http_rout']" in problems[1]
    grouped = obs.metric_problems(
        "sum by (http_rout) (rate(http_server_request_duration_seconds_count[5m]))", [histogram]
    )
    assert grouped and "grouping by unknown labels ['http_rout']" in grouped[0]


def test_collector_check_reports_undefined_components_and_bad_order():
    config = {
        "receivers": {"otlp": {}},
        "processors": {"batch": {}, "memory_limiter": {}},
        "exporters": {"otlphttp/tempo": {}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch", "memory_limiter"],
                    "exporters": ["otlphttp/tmpo"],
                }
            }
        },
    }
    assert obs.collector_problems(config) == [
        "pipeline traces: exporter otlphttp/tmpo is not defined",
        "pipeline traces: memory_limiter must come first",
        "pipeline traces: batch must come last",
    ]
