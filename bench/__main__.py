"""`todo-platform bench`: every budget of DESIGN §8 measured in one run on this machine.

Writes the tables into docs/performance.md (between its bench marks) unless --no-write.
Needs wrk (apt-get install wrk). About 10 minutes with the defaults; --quick for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import cold_start, end_to_end, scale, telemetry, warm
from bench.database import bench_database
from bench.harness import ROOT, THREADS, ensure_wrk, machine
from bench.report import Results, write

SECTIONS = ("cold", "warm", "telemetry", "e2e", "scale")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="todo-platform bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--starts", type=int, default=10, help="cold starts per function")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of warm/gateway runs")
    parser.add_argument("--samples", type=int, default=100, help="timed requests per page kind")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these")
    parser.add_argument("--quick", action="store_true", help="3 starts, 3 s runs, 1 round")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--output", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.starts, args.seconds, args.rounds, args.samples = 3, 3, 1, 20
    sections = args.only or SECTIONS
    if {"warm", "telemetry", "e2e"} & set(sections):
        ensure_wrk()
    results = Results(
        machine=machine(),
        settings=f"THREADS={THREADS}, {args.starts} cold starts per function, "
        f"{args.seconds:g} s per load run, best of {args.rounds} round(s), "
        "telemetry off (no OTLP endpoint) except in its own section, JSON access logs at INFO",
    )
    started = time.perf_counter()
    with bench_database() as bench:
        env = {"DATABASE_URL": bench.url, "TODO_INTERNAL_TOKEN": "bench-internal-token"}
        if "cold" in sections:
            print("cold start …", flush=True)
            results.cold = cold_start.run(bench, args.starts, env)
        if "warm" in sections:
            print("warm throughput and memory …", flush=True)
            results.warm = warm.run(bench, args.seconds, args.rounds, env)
        if "telemetry" in sections:
            print("telemetry off and on …", flush=True)
            results.telemetry = telemetry.run(bench, args.seconds, args.rounds, env)
        if "e2e" in sections:
            print("gateway and end to end through todo-platform up …", flush=True)
            results.gateway, results.e2e = end_to_end.run(bench, args.seconds, args.rounds, env)
        if "scale" in sections:
            print("list at scale …", flush=True)
            results.scale = scale.run(bench, args.samples, env)
    text = results.markdown()
    print("\n" + text)
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
    if not args.no_write:
        write(args.output, text)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
