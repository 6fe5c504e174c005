"""REST throughput with telemetry off and on, in one run: the 85 % budget of issue 6.

For todo-get and todo-create, one instance runs as in its container, once with no OTLP
endpoint and once exporting traces, metrics and logs over OTLP/HTTP to a stand-in for
the collector that answers at once: with every trace kept (dev), then with prod's head
sampling (knative/overlays/prod). JSON access logs at INFO on stderr in every mode.
Each round runs every mode of a function back to back, so a round's ratio compares
runs made a minute apart; the median of the rounds' ratios counts. (The best run of
each mode would pair one mode's lucky round with another's unlucky one: the writes'
rate follows the disk's fsync time, which drifts by a quarter between minutes here.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from bench.database import BenchDatabase
from bench.harness import (
    ROOT,
    THREADS,
    Function,
    Load,
    StandIn,
    median,
    wait_ready,
    warmed_wrk,
)

PROD = ROOT / "knative" / "overlays" / "prod" / "patches" / "telemetry.yaml"


@dataclass
class Overhead:
    name: str
    mode: str
    load: Load
    ratio: float  # median over rounds of (this mode / off) within the round
    ratios: tuple[float, ...]  # each round's


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
    runs: dict[tuple[str, str], list[Load]] = {}
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
                    runs.setdefault((name, mode), []).append(load)
                    print(f"  telemetry {name:<12} {mode:<24} {load.row()}", flush=True)
    finally:
        collector.stop()
    found = []
    for (name, mode), loads in runs.items():
        ratios = tuple(
            load.rate / off.rate for load, off in zip(loads, runs[(name, "off")], strict=True)
        )
        typical = sorted(loads, key=lambda load: load.rate)[len(loads) // 2]
        found.append(Overhead(name, mode, typical, median(ratios), ratios))
    return found
