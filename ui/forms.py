"""Form handling for the pages, as pure functions: trace-search filters and the alert-rule form."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tracehouse.ui.data import first, num, str_list, text

SIGNALS: tuple[tuple[str, str], ...] = (
    ("p50_ms", "p50 latency (ms)"), ("p95_ms", "p95 latency (ms)"), ("p99_ms", "p99 latency (ms)"),
    ("error_rate", "error rate (0..1)"), ("calls_per_min", "calls per minute"),
    ("metric_value", "metric value"), ("metric_rate", "metric rate (/s)"),
    ("new_cycle", "new dependency cycle"), ("n_plus_one", "N+1 detected"),
    ("heartbeat_missing", "instance heartbeat missing"),
)
OPS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("critical", "warning", "info")
GROUP_BY = ("", "service", "operation", "instance", "host")
_ATTR = re.compile(r"^[^:\s][^:]*:.*$")


def trace_filter_problems(filters: Mapping[str, str]) -> list[str]:
    """What is wrong with the search form, in words (the API gets the raw values anyway and says more)."""
    problems = []
    for key in ("min_duration_ms", "max_duration_ms", "limit"):
        value = filters.get(key, "")
        if value and num({"v": value}, "v") is None:
            problems.append(f"{key.replace('_', ' ')} must be a number, not {value!r}")
    if filters.get("status") not in ("", None, "error", "ok"):
        problems.append("status must be error or ok")
    attr = filters.get("attr", "")
    if attr and not _ATTR.match(attr):
        problems.append(f"attribute filter must look like key:value, not {attr!r}")
    return problems


def rule_to_form(rule: Mapping[str, Any] | None) -> dict[str, str]:
    """Form field values for a rule (empty defaults for a new one)."""
    if not rule:
        return {"id": "", "name": "", "service": "", "operation": "", "peer_service": "", "db_statement": "",
                "host": "", "metric": "", "attributes": "", "signal": "p99_ms", "op": ">", "threshold": "",
                "window_s": "300", "for_s": "60", "severity": "warning", "labels": "", "channels": "",
                "enabled": "on", "group_by": ""}
    target = rule.get("target") if isinstance(rule.get("target"), Mapping) else {}
    assert isinstance(target, Mapping)
    labels = rule.get("labels") if isinstance(rule.get("labels"), Mapping) else {}
    assert isinstance(labels, Mapping)
    attrs = target.get("attributes") if isinstance(target.get("attributes"), Mapping) else {}
    assert isinstance(attrs, Mapping)
    return {
        "id": text(rule, "id", "rule_id"), "name": text(rule, "name"),
        "service": text(target, "service"), "operation": text(target, "operation"),
        "peer_service": text(target, "peer_service"), "group_by": text(target, "group_by"),
        "db_statement": text(target, "db_statement", "statement"), "host": text(target, "host"),
        "metric": text(target, "metric", "metric_name"),
        "attributes": ", ".join(f"{k}={v}" for k, v in attrs.items()),
        "signal": text(rule, "signal", default="p99_ms"), "op": text(rule, "op", default=">"),
        "threshold": _num_text(first(rule, "threshold")), "window_s": _num_text(first(rule, "window_s")),
        "for_s": _num_text(first(rule, "for_s")), "severity": text(rule, "severity", default="warning"),
        "labels": ", ".join(f"{k}={v}" for k, v in labels.items()),
        "channels": ", ".join(str_list(rule.get("channels"))),
        "enabled": "on" if rule.get("enabled", True) else "",
    }


def _num_text(value: Any) -> str:
    if value is None:
        return ""
    number = num({"v": value}, "v")
    if number is None:
        return str(value)
    return str(int(number)) if number == int(number) else str(number)


def _pairs(value: str, field: str, problems: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            problems.append(f"{field}: write key=value pairs separated by commas, not {part!r}")
            continue
        out[key.strip()] = val.strip()
    return out


def form_to_rule(values: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The rule JSON the API takes, and what is wrong with the form (each problem names its field)."""
    problems: list[str] = []
    get = lambda key: (values.get(key) or "").strip()  # noqa: E731
    name = get("name")
    if not name:
        problems.append("name: give the rule a name")
    signal = get("signal")
    if signal not in dict(SIGNALS):
        problems.append(f"signal: choose one of {', '.join(s for s, _ in SIGNALS)}")
    op = get("op") or ">"
    if op not in OPS:
        problems.append(f"op: choose one of {' '.join(OPS)}")
    threshold = num({"v": get("threshold")}, "v")
    event_signal = signal in ("new_cycle", "n_plus_one", "heartbeat_missing")
    if threshold is None and not event_signal:
        problems.append("threshold: enter a number")
    numbers: dict[str, int] = {}
    for key, default in (("window_s", 300), ("for_s", 0)):
        raw = get(key)
        value = num({"v": raw}, "v") if raw else float(default)
        if value is None or value < 0 or value != int(value):
            problems.append(f"{key}: enter a whole number of seconds")
        else:
            numbers[key] = int(value)
    if numbers.get("window_s") == 0:
        problems.append("window_s: the evaluation window must be longer than 0 s")
    severity = get("severity") or "warning"
    if severity not in SEVERITIES:
        problems.append(f"severity: choose one of {', '.join(SEVERITIES)}")
    target: dict[str, Any] = {}
    for key in ("service", "operation", "peer_service", "db_statement", "host", "metric"):
        if get(key):
            target[key] = get(key)
    if get("group_by"):
        if get("group_by") not in GROUP_BY:
            problems.append(f"group_by: choose one of {', '.join(g for g in GROUP_BY if g)}")
        target["group_by"] = get("group_by")
    attrs = _pairs(get("attributes"), "attributes", problems)
    if attrs:
        target["attributes"] = attrs
    if signal.startswith("metric_") and "metric" not in target:
        problems.append("metric: a metric signal needs the metric name")
    rule: dict[str, Any] = {
        "name": name, "target": target, "signal": signal, "op": op,
        "threshold": threshold if threshold is not None else 0,
        "window_s": numbers.get("window_s", 300), "for_s": numbers.get("for_s", 0), "severity": severity,
        "labels": _pairs(get("labels"), "labels", problems),
        "channels": [c.strip() for c in get("channels").split(",") if c.strip()],
        "enabled": bool(get("enabled")),
    }
    return rule, problems


def rule_states(rules: Sequence[Mapping[str, Any]], active: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Rule id → its worst current state: firing, pending, ok (or the rule's own `state` field)."""
    rank = {"firing": 3, "pending": 2, "resolved": 1, "ok": 0}
    states: dict[str, str] = {}
    for rule in rules:
        rule_id = text(rule, "id", "rule_id")
        state = text(rule, "state", "status").lower()
        if not rule.get("enabled", True):
            state = "disabled"
        states[rule_id] = state or "ok"
    for alert in active:
        rule_id = text(alert, "rule_id", "id")
        state = text(alert, "state", "status", default="firing").lower()
        if rank.get(state, 0) > rank.get(states.get(rule_id, "ok"), 0):
            states[rule_id] = state
    return states
