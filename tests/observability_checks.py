"""Checks over observability/: PromQL that parses and names real metrics, a sound collector.

Pure functions returning the problems they find, so the delivery tests run them on the
real manifests and on deliberately broken inputs alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from functions.core.telemetry import Instrument

# What CloudNativePG (1.28) and its Barman Cloud plugin (0.4) export and we query. The
# plugin's backup timestamps replace CNPG's own cnpg_collector_last_*_backup_timestamp,
# which stay 0 once backups go through a plugin.
EXTERNAL_METRICS = frozenset(
    {
        "cnpg_collector_up",
        "cnpg_pg_replication_lag",
        "cnpg_pg_database_size_bytes",
        "cnpg_backends_total",
        "cnpg_pgbouncer_pools_cl_waiting",
        "cnpg_pgbouncer_pools_maxwait",
        "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
        "barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp",
    }
)
# Labels every series has (from the resource or the scrape) or that CNPG's series carry.
COMMON_LABELS = frozenset({"job", "instance", "le", "namespace", "pod", "state", "datname"})
EXTERNAL_LABELS = frozenset({"database"})
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
    # Aggregations: `sum by (job) (...)` puts a grouping between the name and its "(".
    | {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<open>[({\[])|(?P<close>[)}\]])"
    r"|(?P<other>\S)"
)
_PAIRS = {"(": ")", "{": "}", "[": "]"}
# Grafana's variables, replaced by values PromQL accepts before any check.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "1h",
    "$__interval": "1m",
    "$job": ".*",
}


def prometheus_names(instrument: Instrument) -> set[str]:
    """The series names Prometheus's OTLP receiver stores an instrument under.

    Dots become underscores, a unit in braces is dropped, `s` adds `_seconds`; counters
    get `_total`, histograms `_bucket`, `_sum` and `_count`.
    """
    base = instrument.name.replace(".", "_")
    unit = {"s": "seconds", "By": "bytes"}.get(instrument.unit, "")
    if unit:
        base = f"{base}_{unit}"
    if instrument.kind == "counter":
        return {f"{base}_total"}
    if instrument.kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}


def instrument_labels(instrument: Instrument) -> set[str]:
    return {key.replace(".", "_") for key in instrument.keys}


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def syntax_problems(expr: str) -> list[str]:
    """Unbalanced brackets, unclosed strings or leftover variables: what a typo leaves."""
    problems = []
    if "$" in expr:
        problems.append(f"unreplaced variable in {expr!r}")
    stack: list[str] = []
    for match in _TOKEN.finditer(expr):
        kind, text = match.lastgroup, match.group()
        if kind == "open":
            stack.append(_PAIRS[text])
        elif kind == "close":
            if not stack or stack.pop() != text:
                return [*problems, f"unbalanced {text!r} in {expr!r}"]
        elif kind == "other" and text in "\"'":
            return [*problems, f"unclosed string in {expr!r}"]
    if stack:
        problems.append(f"unclosed {''.join(reversed(stack))!r} in {expr!r}")
    return problems


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names in its braces) of every series selector in an expression."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "ident" and text in _GROUPING and following == "(":
            index = _after_closing(tokens, index + 1)
            continue
        if kind == "ident" and text not in _KEYWORDS and following != "(":
            labels: set[str] = set()
            if following == "{":
                end = _after_closing(tokens, index + 1)
                labels = _label_names(tokens[index + 2 : end - 1])
                index = end
            else:
                index += 1
            yield text, labels
            continue
        if kind == "open" and text == "{":  # a bare {label=...} selector
            index = _after_closing(tokens, index)
            continue
        if kind == "open" and text == "[":  # a range or subquery duration
            index = _after_closing(tokens, index)
            continue
        index += 1


def grouping_labels(expr: str) -> set[str]:
    """Label names in `by (...)`, `without (...)`, `on (...)` and `ignoring (...)`."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    found: set[str] = set()
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "ident" and text in _GROUPING and following == "(":
            end = _after_closing(tokens, index + 1)
            found |= {t for k, t in tokens[index + 2 : end - 1] if k == "ident"}
    return found


def _after_closing(tokens: list[tuple[str | None, str]], start: int) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        kind = tokens[index][0]
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(tokens)


def _label_names(inside: list[tuple[str | None, str]]) -> set[str]:
    names = set()
    for index, (kind, text) in enumerate(inside):
        after = inside[index + 1][1] if index + 1 < len(inside) else ""
        if kind == "ident" and after in ("=", "!"):
            names.add(text)
    return names


def metric_problems(expr: str, instruments: Iterable[Instrument]) -> list[str]:
    """Metrics we neither emit nor know CNPG to export, and labels our metrics do not have."""
    ours: dict[str, set[str]] = {}
    for instrument in instruments:
        for name in prometheus_names(instrument):
            ours[name] = instrument_labels(instrument)
    all_labels = set().union(*ours.values()) | COMMON_LABELS | EXTERNAL_LABELS
    problems = []
    for name, labels in selectors(expr):
        if name in ours:
            unknown = labels - ours[name] - COMMON_LABELS
        elif name in EXTERNAL_METRICS:
            unknown = labels - COMMON_LABELS - EXTERNAL_LABELS
        else:
            problems.append(f"unknown metric {name!r} in {expr!r}")
            continue
        if unknown:
            problems.append(f"{name} has no label {sorted(unknown)} in {expr!r}")
    unknown_grouping = grouping_labels(expr) - all_labels
    if unknown_grouping:
        problems.append(f"grouping by unknown labels {sorted(unknown_grouping)} in {expr!r}")
    return problems


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, datasource type, query) of every target of every panel."""
    for panel in dashboard.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                source = target.get("datasource") or inner.get("datasource") or {}
                yield inner.get("title", ""), source.get("type", ""), target.get("expr", "")


def rule_expressions(rule_object: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(alert or record name, expression) of every rule of a PrometheusRule."""
    for group in rule_object["spec"]["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule.get("record"), str(rule["expr"])


def collector_problems(config: dict[str, Any]) -> list[str]:
    """Pipelines name only defined components; memory_limiter first and batch last."""
    problems = []
    service = config.get("service", {})
    for name, pipeline in service.get("pipelines", {}).items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                if component not in (config.get(section) or {}):
                    problems.append(f"pipeline {name}: {section[:-1]} {component} is not defined")
        processors = pipeline.get("processors", [])
        if processors[:1] != ["memory_limiter"]:
            problems.append(f"pipeline {name}: memory_limiter must come first")
        if processors[-1:] != ["batch"]:
            problems.append(f"pipeline {name}: batch must come last")
    for extension in service.get("extensions", []):
        if extension not in (config.get("extensions") or {}):
            problems.append(f"extension {extension} is not defined")
    return problems
