"""`todo-platform bench`: every budget of DESIGN §8 measured in one run on this machine.

Writes the tables into docs/performance.md (between its bench marks) unless --no-write.
Needs wrk (apt-get install wrk). About 10 minutes with the defaults; --quick for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import cold_start, end_to_end, scale, telemetry, warm
from bench.database import BenchDatabase, bench_database
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
        steps: dict[str, tuple[str, Callable[[], None]]] = {
            "cold": ("cold start", lambda: setattr(results, "cold", cold(bench))),
            "warm": ("warm throughput and memory", lambda: setattr(results, "warm", hot(bench))),
            "telemetry": (
                "telemetry off and on",
                lambda: setattr(results, "telemetry", tel(bench)),
            ),
            "e2e": ("gateway and end to end through todo-platform up", lambda: e2e(bench)),
            "scale": ("list at scale", lambda: setattr(results, "scale", big(bench))),
        }
        env = {"DATABASE_URL": bench.url, "TODO_INTERNAL_TOKEN": "bench-internal-token"}

        def cold(b: BenchDatabase) -> Any:
            return cold_start.run(b, args.starts, env)

        def hot(b: BenchDatabase) -> Any:
            return warm.run(b, args.seconds, args.rounds, env)

        def tel(b: BenchDatabase) -> Any:
            return telemetry.run(b, args.seconds, args.rounds, env)

        def e2e(b: BenchDatabase) -> None:
            results.gateway, results.e2e = end_to_end.run(b, args.seconds, args.rounds, env)

        def big(b: BenchDatabase) -> Any:
            return scale.run(b, args.samples, env)

        for name in SECTIONS:
            if name not in sections:
                continue
            title, step = steps[name]
            print(f"{title} …", flush=True)
            try:
                step()
            except Exception as exc:  # one broken section must not lose the others' numbers
                traceback.print_exc()
                results.misses.append(f"{title}: failed ({type(exc).__name__}: {exc})")
    text = results.markdown()
    print("\n" + text)
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
    if not args.no_write:
        write(args.output, text)
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
