"""REST throughput with telemetry off and on, in one run: the 85 % budget of issue 6.

For todo-get and todo-create, one instance runs as in its container, once with no OTLP
endpoint and once exporting traces, metrics and logs over OTLP/HTTP to a stand-in for
the collector that answers at once: with every trace kept (dev), then with prod's 20 %
sampling (knative/overlays/prod). JSON access logs at INFO on stderr in every mode.
Rounds alternate the modes so drift hits all; the best round of each counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from bench.database import BenchDatabase
from bench.harness import ROOT, THREADS, Function, Load, StandIn, wait_ready, warmed_wrk

PROD = ROOT / "knative" / "overlays" / "prod" / "patches" / "telemetry.yaml"


@dataclass
class Overhead:
    name: str
    mode: str
    load: Load
    ratio: float  # of the same function with telemetry off


def modes(collector: StandIn) -> dict[str, dict[str, str]]:
    on = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_METRIC_EXPORT_INTERVAL": "30000",
    }
    prod = yaml.safe_load(PROD.read_text())["data"]  # the sampler prod runs with
    rate = float(prod["OTEL_TRACES_SAMPLER_ARG"])
    return {
        "off": {},
        "on, every trace": on,
        f"on, {rate:.0%} sampled (prod)": {**on, **prod},
    }


def run(bench: BenchDatabase, seconds: float, rounds: int, env: dict[str, str]) -> list[Overhead]:
    collector = StandIn()
    headers = {"Authorization": f"Bearer {bench.token}", "Content-Type": "application/json"}
    cases = {
        "todo-get": ("GET", f"/api/v1/todos/{bench.todo_number}", None),
        "todo-create": ("POST", "/api/v1/todos", json.dumps({"title": "bench", "tags": ["b"]})),
    }
    writers = bench.users(int(THREADS))  # a create per connection's user (bench.database)
    best: dict[tuple[str, str], Load] = {}
    try:
        for _ in range(rounds):
            for name, (method, path, body) in cases.items():
                for mode, extra in modes(collector).items():
                    with Function(name.replace("-", "_"), {**env, **extra}) as fn:
                        wait_ready(fn)
                        load = warmed_wrk(
                            fn.url + path,
                            seconds=seconds,
                            connections=int(THREADS),
                            method=method,
                            body=body,
                            headers=headers,
                            tokens=writers if method == "POST" else (),
                        )
                    key = (name, mode)
                    if key not in best or load.rate > best[key].rate:
                        best[key] = load
                    print(f"  telemetry {name:<12} {mode:<24} {load.row()}", flush=True)
    finally:
        collector.stop()
    return [
        Overhead(name, mode, load, load.rate / best[(name, "off")].rate)
        for (name, mode), load in best.items()
    ]
