"""The results as Markdown: one table per budget of DESIGN §8, with the machine they ran on."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.cold_start import ColdStart
from bench.end_to_end import EndToEnd, Gateway
from bench.scale import Scale
from bench.telemetry import Overhead
from bench.warm import Warm

BEGIN = "<!-- bench:begin (written by `todo-platform bench`; edit outside these marks) -->"
END = "<!-- bench:end -->"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


@dataclass
class Results:
    machine: str
    settings: str
    cold: Sequence[ColdStart] = ()
    warm: Sequence[Warm] = ()
    telemetry: Sequence[Overhead] = ()
    gateway: Gateway | None = None
    e2e: Sequence[EndToEnd] = ()
    scale: Scale | None = None
    misses: list[str] = field(default_factory=list)

    def _judge(self, ok: bool, miss: str) -> str:
        """The verdict for a table cell; a missed budget is also listed at the end."""
        if not ok:
            self.misses.append(miss)
        return verdict(ok)

    def markdown(self) -> str:
        out = [
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {self.machine}.",
            f"Settings: {self.settings}.",
            "",
        ]
        if self.cold:
            out += [
                "### Cold start (spawn → first 2xx, database included)",
                "",
                "| function | median ms | p90 ms | × hello | budget ≤ 1.3× |",
                "|---|---|---|---|---|",
            ]
            for c in self.cold:
                judged = (
                    ""
                    if c.name == "hello"
                    else self._judge(
                        c.ratio <= 1.3, f"cold start {c.name} {c.ratio:.2f}× hello (≤ 1.3×)"
                    )
                )
                out.append(
                    f"| {c.name} | {c.median_ms:.0f} | {c.p90_ms:.0f} | {c.ratio:.2f} | {judged} |"
                )
            out.append("")
        if self.warm:
            out += [
                "### Warm, one instance (8 threads, 8 connections)",
                "",
                "| function | req/s | p50 ms | p99 ms | of hello | budget | RSS MB (worker) "
                "| PSS MB (master + worker) | budget ≤ 60 MB |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for w in self.warm:
                need = {"todo-get": 0.6, "todo-list": 0.6, "todo-create": 0.4}.get(w.name)
                ok = need is None or w.ratio >= need
                mem_ok = w.name == "hello" or w.pss_mb <= 60
                mem = (
                    ""
                    if w.name == "hello"
                    else self._judge(mem_ok, f"memory {w.name} {w.pss_mb:.1f} MB (≤ 60 MB)")
                )
                speed = (
                    ""
                    if need is None
                    else f"≥ {need:.0%} "
                    + self._judge(ok, f"warm {w.name} {w.ratio:.0%} of hello (≥ {need:.0%})")
                )
                out.append(
                    f"| {w.name} | {w.load.rate:.0f} | {w.load.p50:.1f} | {w.load.p99:.1f} | "
                    f"{w.ratio:.0%} | {speed} | "
                    f"{w.rss_mb:.1f} | {w.pss_mb:.1f} | {mem} |"
                )
            out.append("")
        if self.telemetry:
            out += [
                "### Telemetry (one instance, 8 connections; exporting to a local stand-in)",
                "",
                "| function | telemetry | req/s (median run) | of off (median of rounds) "
                "| each round | budget ≥ 85 % (prod sampling) |",
                "|---|---|---|---|---|---|",
            ]
            for t in self.telemetry:
                judged = (
                    ""
                    if "prod" not in t.mode
                    else self._judge(
                        t.ratio >= 0.85, f"telemetry {t.name} {t.ratio:.0%} of off (≥ 85 %)"
                    )
                )
                rounds = " ".join(f"{r:.0%}" for r in t.ratios)
                out.append(
                    f"| {t.name} | {t.mode} | {t.load.rate:.0f} | {t.ratio:.0%} | {rounds} "
                    f"| {judged} |"
                )
            out.append("")
        if self.gateway:
            g = self.gateway
            gate = self._judge(g.ratio >= 0.7, f"gateway {g.ratio:.0%} (≥ 70 %)")
            out += [
                "### Gateway (todo-get through `todo-platform up` vs served directly)",
                "",
                "| direct req/s | through up req/s | ratio | budget ≥ 70 % |",
                "|---|---|---|---|",
                f"| {g.direct.rate:.0f} | {g.through.rate:.0f} | {g.ratio:.0%} | {gate} |",
                "",
            ]
        if self.e2e:
            out += [
                "### Through `todo-platform up`: open loop 100 req/s, closed loop 100 clients",
                "",
                "| operation | open p50 ms | open p99 ms | budget | closed req/s | "
                "closed p50 ms | closed p99 ms | errors | budget |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for e in self.e2e:
                mcp = e.name.startswith("MCP")
                slack = e.name.startswith("Slack")
                # DESIGN §8: REST and MCP have open- and closed-loop budgets; the Slack
                # acknowledgement has its own, p99 < 200 ms warm, whatever the load shape.
                open_budget = 200 if slack else 60 if mcp else 20
                closed_budget = 200 if slack else 400 if mcp else 250
                ok_open = e.open.p99 < open_budget and not e.open.errors
                ok_closed = e.closed.p99 < closed_budget and not e.closed.errors
                out.append(
                    f"| {e.name} | {e.open.p50:.1f} | {e.open.p99:.1f} | < {open_budget} "
                    f"{self._judge(ok_open, f'open loop {e.name} p99 {e.open.p99:.1f} ms')} | "
                    f"{e.closed.rate:.0f} | {e.closed.p50:.1f} | "
                    f"{e.closed.p99:.1f} | {e.open.errors + e.closed.errors} | "
                    f"< {closed_budget}, 0 errors "
                    f"{self._judge(ok_closed, f'closed loop {e.name} p99 {e.closed.p99:.1f} ms')} |"
                )
            out.append("")
        if self.scale:
            s = self.scale
            ratio = s.deep_ms[0] / s.first_ms[0]
            ok = ratio <= 1.25
            out += [
                f"### List at scale ({s.rows:,} todos, 1 000 owners; page of 50)",
                "",
                "| page | median ms | p99 ms |",
                "|---|---|---|",
                f"| first | {s.first_ms[0]:.2f} | {s.first_ms[1]:.2f} |",
                f"| last (after {s.deep_position:,} rows, by cursor) | {s.deep_ms[0]:.2f} | "
                f"{s.deep_ms[1]:.2f} |",
                "",
                f"Deep / first: {ratio:.2f} (same cost: within 25 %) — "
                f"{self._judge(ok, f'deep page {ratio:.2f}× the first')}.",
                "",
            ]
        out.append("Budgets missed: " + ("; ".join(self.misses) if self.misses else "none") + ".")
        return "\n".join(out)


def write(path: str, text: str) -> None:
    """Put text between the bench marks of path, keeping what is written around them."""
    with open(path, encoding="utf-8") as f:
        current = f.read()
    head, sep, rest = current.partition(BEGIN)
    if not sep:
        raise SystemExit(f"{path} has no {BEGIN!r} mark")
    _, sep, tail = rest.partition(END)
    if not sep:
        raise SystemExit(f"{path} has no {END!r} mark")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
