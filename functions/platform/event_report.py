"""`todo-platform events`: what a running `up`'s event router delivered, retried and dropped."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

from functions.platform.local_database import PlatformError


def fetch(url: str) -> dict[str, Any]:
    """The router's report from `GET <url>/broker/deliveries`."""
    address = url.rstrip("/") + "/broker/deliveries"
    try:
        with urllib.request.urlopen(address, timeout=10) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PlatformError(
            f"todo-platform: no event router at {address} ({reason}); is `up` running?"
        ) from None


def render(report: dict[str, Any]) -> str:
    """The report as lines for a terminal: deliveries, then dead letters, then the routes."""
    lines = ["Recent deliveries (newest first):"]
    for d in report["deliveries"] or []:
        status = d["status"] if d["status"] is not None else "-"
        lines.append(
            f"  {d['time']}  {d['outcome']:<9} {d['type']}  id={d['event_id']}  "
            f"-> {d['subscriber']} ({d['trigger'] or 'no trigger'}) "
            f"attempts={d['attempts']} status={status}"
            + (f"  error={d['error']}" if d["error"] else "")
        )
    if not report["deliveries"]:
        lines.append("  (none yet)")
    lines.append("Dead letters (newest first):")
    for d in report["dead_letters"] or []:
        sent = d.get("delivery_to_sink") or {}
        lines.append(
            f"  {d['time']}  {d['type']}  id={d['event_id']}  from {d['trigger']}: "
            f"{d['error']}  -> {d['dead_letter_sink'] or 'dropped'} {sent.get('outcome', '')}"
        )
    if not report["dead_letters"]:
        lines.append("  (none)")
    lines.append("Triggers (knative/base/eventing):")
    for t in report["triggers"]:
        filters = ", ".join(f"{k}={v}" for k, v in t["filters"]) or "everything"
        delivery = t["delivery"]
        lines.append(
            f"  {t['name']}: {filters} -> {t['subscriber']}  retry={delivery['retry']} "
            f"{delivery['backoff_policy']} {delivery['backoff_delay']}s "
            f"dead letters -> {delivery['dead_letter_sink'] or 'none'}"
        )
    lines.append("PingSources:")
    for p in report["ping_sources"]:
        lines.append(f"  {p['name']}: {p['schedule']} -> {p['sink']}")
    return "\n".join(lines)


def show(url: str, *, as_json: bool = False) -> int:
    report = fetch(url)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if as_json else render(report) + "\n")
    return 0
