"""Signal values from ClickHouse: one `SeriesValue` per series of a rule.

Every query is a module constant with bound parameters; target fields that are not set are bound as
'' and switch their filter off inside the SQL, so no SQL text is ever built from user input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from tracehouse.query.alerts.models import METRIC_SIGNALS, SPAN_SIGNALS, RuleBody, Signal
from tracehouse.query.analysis.graph import canonical_cycle, elementary_cycles

HEARTBEAT_METRIC = "tracehouse.agent.heartbeat"
EDGE_LATENESS_MS = 5 * 60 * 1000  # a parent span may start this long before its child's window
DB_STATEMENT = ("if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'], "
                "SpanAttributes['db.query.text'])")
ERROR_STATUS = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"

_SPAN_FILTER_ANY_SERVICE = f"""
        Timestamp >= fromUnixTimestamp64Milli({{start_ms:Int64}})
    AND Timestamp < fromUnixTimestamp64Milli({{end_ms:Int64}})
    AND ({{operation:String}} = '' OR SpanName = {{operation:String}})
    AND ({{host:String}} = '' OR ResourceAttributes['host.name'] = {{host:String}})
    AND ({{db_statement:String}} = '' OR normalizeQuery({DB_STATEMENT}) = normalizeQuery({{db_statement:String}}))
    AND arrayAll((k, v) -> SpanAttributes[k] = v, {{attr_keys:Array(String)}}, {{attr_values:Array(String)}})
    AND ({{entry_only:UInt8}} = 0
         OR SpanKind IN ('Server', 'Consumer', 'SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER')
         OR ParentSpanId = '')
"""
_SPAN_FILTER = "({service:String} = '' OR ServiceName = {service:String}) AND " + _SPAN_FILTER_ANY_SERVICE

_GROUP = """multiIf({group_by:String} = 'service', ServiceName,
                {group_by:String} = 'operation', SpanName,
                {group_by:String} = 'instance', ResourceAttributes['service.instance.id'],
                {group_by:String} = 'host', ResourceAttributes['host.name'],
                '')"""

_SPAN_AGGREGATES = f"""
    count() AS calls,
    countIf({ERROR_STATUS}) AS errors,
    quantile(0.5)(Duration) / 1e6 AS p50_ms,
    quantile(0.95)(Duration) / 1e6 AS p95_ms,
    quantile(0.99)(Duration) / 1e6 AS p99_ms
"""

# RED over the spans of a service (entry spans unless an operation or statement is named).
SPAN_SIGNAL_SQL = f"""
SELECT {_GROUP} AS series, {_SPAN_AGGREGATES}
FROM otel_traces
WHERE {_SPAN_FILTER}
GROUP BY series
ORDER BY series
LIMIT 1000
"""

# The same over an edge: spans of `peer_service` whose parent span belongs to `service`.
EDGE_SIGNAL_SQL = f"""
SELECT {_GROUP} AS series, {_SPAN_AGGREGATES}
FROM (
    SELECT cityHash64(TraceId, ParentSpanId) AS parent_key, ServiceName, SpanName, ResourceAttributes,
           StatusCode, Duration
    FROM otel_traces
    WHERE ServiceName = {{peer_service:String}} AND ParentSpanId != '' AND {_SPAN_FILTER_ANY_SERVICE}
) AS child
INNER JOIN (
    SELECT cityHash64(TraceId, SpanId) AS span_key FROM otel_traces
    WHERE ServiceName = {{service:String}}
      AND Timestamp >= fromUnixTimestamp64Milli({{start_ms:Int64}} - {EDGE_LATENESS_MS})
      AND Timestamp < fromUnixTimestamp64Milli({{end_ms:Int64}})
) AS parent ON child.parent_key = parent.span_key
GROUP BY series
ORDER BY series
LIMIT 1000
"""

_METRIC_FILTER = """
        MetricName = {metric:String}
    AND TimeUnix >= fromUnixTimestamp64Milli({start_ms:Int64})
    AND TimeUnix < fromUnixTimestamp64Milli({end_ms:Int64})
    AND ({service:String} = '' OR ServiceName = {service:String})
    AND ({host:String} = '' OR ResourceAttributes['host.name'] = {host:String})
    AND arrayAll((k, v) -> Attributes[k] = v, {attr_keys:Array(String)}, {attr_values:Array(String)})
"""

# A gauge's or sum's points in the window, combined five ways (the rule picks one).
METRIC_VALUE_SQL = f"""
SELECT count() AS points, avg(Value) AS avg, min(Value) AS min, max(Value) AS max,
       argMax(Value, TimeUnix) AS last, sum(Value) AS sum
FROM (
    SELECT TimeUnix, Value FROM otel_metrics_gauge WHERE {_METRIC_FILTER}
    UNION ALL
    SELECT TimeUnix, Value FROM otel_metrics_sum WHERE {_METRIC_FILTER}
)
"""

# A counter's increase per second: per point series, delta points add up; cumulative points count
# their positive steps, and a drop (a reset) counts the value after it.
METRIC_RATE_SQL = f"""
SELECT count() AS point_series, sum(increase) / {{window_s:Float64}} AS rate
FROM (
    SELECT any(AggregationTemporality) AS temporality,
           arrayMap(p -> p.2, arraySort(p -> p.1, groupArray((TimeUnix, Value)))) AS vals,
           if(temporality = 1, arraySum(vals),
              arraySum(arrayMap((d, v) -> if(d < 0, v, d), arrayDifference(vals), vals))) AS increase
    FROM otel_metrics_sum
    WHERE {_METRIC_FILTER}
    GROUP BY ServiceName, toString(ResourceAttributes), toString(Attributes)
)
"""

# Instances that sent a heartbeat in the window, with their last one. The agent's heartbeat is a gauge
# carrying service.instance.id as a resource attribute and as a point attribute.
HEARTBEAT_SQL = """
SELECT instance, any(service) AS service, any(host) AS host, toUnixTimestamp64Milli(max(at)) AS last_ms
FROM (
    SELECT if(ResourceAttributes['service.instance.id'] != '', ResourceAttributes['service.instance.id'],
              Attributes['service.instance.id']) AS instance, ServiceName AS service,
           ResourceAttributes['host.name'] AS host, TimeUnix AS at
    FROM otel_metrics_gauge
    WHERE MetricName = {metric:String}
      AND TimeUnix >= fromUnixTimestamp64Milli({start_ms:Int64})
      AND ({service:String} = '' OR ServiceName = {service:String})
      AND ({host:String} = '' OR ResourceAttributes['host.name'] = {host:String})
    UNION ALL
    SELECT if(ResourceAttributes['service.instance.id'] != '', ResourceAttributes['service.instance.id'],
              Attributes['service.instance.id']) AS instance, ServiceName AS service,
           ResourceAttributes['host.name'] AS host, TimeUnix AS at
    FROM otel_metrics_sum
    WHERE MetricName = {metric:String}
      AND TimeUnix >= fromUnixTimestamp64Milli({start_ms:Int64})
      AND ({service:String} = '' OR ServiceName = {service:String})
      AND ({host:String} = '' OR ResourceAttributes['host.name'] = {host:String})
)
GROUP BY instance
ORDER BY instance
"""

# Service-to-service calls in the window: parent→child span pairs whose services differ. Spans are
# joined on a 64-bit hash of (TraceId, span id): a hash table of integers is far smaller and faster
# than one of string pairs, and a false match needs a 64-bit collision within one window.
SERVICE_EDGES_SQL = f"""
SELECT parent.ServiceName AS source, child.ServiceName AS target, count() AS calls,
       any(child.TraceId) AS example_trace_id
FROM (
    SELECT cityHash64(TraceId, ParentSpanId) AS parent_key, TraceId, ServiceName FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Milli({{start_ms:Int64}})
      AND Timestamp < fromUnixTimestamp64Milli({{end_ms:Int64}})
      AND ParentSpanId != ''
) AS child
INNER JOIN (
    SELECT cityHash64(TraceId, SpanId) AS span_key, ServiceName FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Milli({{start_ms:Int64}} - {EDGE_LATENESS_MS})
      AND Timestamp < fromUnixTimestamp64Milli({{end_ms:Int64}})
) AS parent ON child.parent_key = parent.span_key
WHERE child.ServiceName != parent.ServiceName
GROUP BY source, target
ORDER BY source, target
"""

# N+1: per parent span, how often it ran the same normalized statement; the worst per
# (service, parent operation, statement). Statements are grouped by normalizedQueryHash and only
# groups with at least {min_executions} runs are joined to their parent span (for its name).
N_PLUS_ONE_SQL = f"""
SELECT child.ServiceName AS service, parent.SpanName AS parent_operation,
       normalizeQuery(any(child.sample)) AS statement, max(child.executions) AS max_executions,
       count() AS parent_spans, uniqExact(child.TraceId) AS traces, any(child.TraceId) AS example_trace_id
FROM (
    SELECT ServiceName, TraceId, cityHash64(TraceId, ParentSpanId) AS parent_key,
           normalizedQueryHash({DB_STATEMENT}) AS statement_hash, any({DB_STATEMENT}) AS sample,
           count() AS executions
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Milli({{start_ms:Int64}})
      AND Timestamp < fromUnixTimestamp64Milli({{end_ms:Int64}})
      AND ParentSpanId != ''
      AND {DB_STATEMENT} != ''
      AND ({{service:String}} = '' OR ServiceName = {{service:String}})
    GROUP BY ServiceName, TraceId, parent_key, statement_hash
    HAVING executions >= {{min_executions:UInt32}}
) AS child
LEFT JOIN (
    SELECT cityHash64(TraceId, SpanId) AS span_key, SpanName FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Milli({{start_ms:Int64}} - {EDGE_LATENESS_MS})
      AND Timestamp < fromUnixTimestamp64Milli({{end_ms:Int64}})
) AS parent ON child.parent_key = parent.span_key
GROUP BY service, parent_operation, child.statement_hash
ORDER BY max_executions DESC
LIMIT 500
"""


@dataclass(frozen=True)
class Series:
    key: str
    labels: Mapping[str, str]
    value: float | None
    details: Mapping[str, Any] = field(default_factory=dict)


def _rows(client: Client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _base_parameters(rule: RuleBody, now_ms: int) -> dict[str, Any]:
    target = rule.target
    keys = sorted(target.attributes)
    return {
        "start_ms": now_ms - rule.window_s * 1000,
        "end_ms": now_ms + 1,
        "window_s": float(rule.window_s),
        "service": target.service or "",
        "operation": target.operation or "",
        "peer_service": target.peer_service or "",
        "host": target.host or "",
        "db_statement": target.db_statement or "",
        "metric": target.metric or "",
        "attr_keys": keys,
        "attr_values": [target.attributes[k] for k in keys],
        "group_by": target.group_by or "",
        "entry_only": 0 if (target.operation or target.db_statement or target.peer_service) else 1,
    }


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number  # NaN: no data


def span_series(client: Client, rule: RuleBody, now_ms: int) -> list[Series]:
    parameters = _base_parameters(rule, now_ms)
    sql = EDGE_SIGNAL_SQL if rule.target.peer_service else SPAN_SIGNAL_SQL
    rows = _rows(client, sql, parameters)
    window_min = rule.window_s / 60.0
    found: list[Series] = []
    for row in rows:
        calls = int(row["calls"])
        details = {"calls": calls, "errors": int(row["errors"])}
        if rule.signal == Signal.CALLS_PER_MIN:
            value: float | None = calls / window_min
        elif rule.signal == Signal.ERROR_RATE:
            value = int(row["errors"]) / calls if calls else None
        else:
            value = _float(row[rule.signal.value]) if calls else None
        labels = {rule.target.group_by: str(row["series"])} if rule.target.group_by else {}
        found.append(Series(str(row["series"]), labels, value, details))
    if not found and not rule.target.group_by:
        no_calls = 0.0 if rule.signal == Signal.CALLS_PER_MIN else None
        found.append(Series("", {}, no_calls, {"calls": 0, "errors": 0}))
    return found


def metric_series(client: Client, rule: RuleBody, now_ms: int) -> list[Series]:
    parameters = _base_parameters(rule, now_ms)
    if rule.signal == Signal.METRIC_RATE:
        row = _rows(client, METRIC_RATE_SQL, parameters)[0]
        value = _float(row["rate"]) if int(row["point_series"]) else None
        return [Series("", {}, value, {"point_series": int(row["point_series"])})]
    row = _rows(client, METRIC_VALUE_SQL, parameters)[0]
    points = int(row["points"])
    return [Series("", {}, _float(row[rule.aggregation]) if points else None, {"points": points})]


def heartbeat_series(client: Client, rule: RuleBody, now_ms: int) -> list[Series]:
    parameters = {**_base_parameters(rule, now_ms), "metric": HEARTBEAT_METRIC}
    found = []
    for row in _rows(client, HEARTBEAT_SQL, parameters):
        instance = str(row["instance"])
        labels = {"instance": instance, "service": str(row["service"]), "host": str(row["host"])}
        age_s = max(0.0, (now_ms - int(row["last_ms"])) / 1000.0)
        found.append(Series(instance, labels, age_s, {"last_heartbeat_ms": int(row["last_ms"])}))
    return found


def service_edges(client: Client, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    return _rows(client, SERVICE_EDGES_SQL, {"start_ms": start_ms, "end_ms": end_ms})


def cycle_key(cycle: list[str]) -> str:
    """`a -> b -> c -> a`: a stable name for a cycle (its smallest service first)."""
    ring = list(canonical_cycle(cycle))
    return " -> ".join([*ring, ring[0]]) if ring else ""


def cycle_series(client: Client, rule: RuleBody, now_ms: int) -> list[Series]:
    """One series per elementary cycle of the service graph in the window (calls inside one
    service are not cycles), found by the query service's cycle enumeration."""
    edges = service_edges(client, now_ms - rule.window_s * 1000, now_ms + 1)
    calls = {(str(e["source"]), str(e["target"])): e for e in edges}
    adjacency: dict[str, list[str]] = {}
    for source, target in calls:
        adjacency.setdefault(source, []).append(target)
    found = []
    for cycle in elementary_cycles(adjacency, max_cycles=200, include_self_loops=False).cycles:
        if rule.target.service and rule.target.service not in cycle:
            continue
        key = cycle_key(cycle)
        ring = key.split(" -> ")
        hops = [{"source": a, "target": b, "calls": int(calls[(a, b)]["calls"]),
                 "example_trace_id": str(calls[(a, b)]["example_trace_id"])}
                for a, b in zip(ring, ring[1:], strict=False)]
        found.append(Series(key, {"cycle": key}, 1.0, {"edges": hops}))
    return found


def min_executions(rule: RuleBody) -> int:
    """The fewest runs per parent span that can meet the rule (series below it cannot fire, and a
    series that is absent counts as not meeting it), at least 2."""
    if rule.op == ">=":
        return max(2, math.ceil(rule.threshold))
    if rule.op == ">":
        return max(2, math.floor(rule.threshold) + 1)
    return 2


def n_plus_one_series(client: Client, rule: RuleBody, now_ms: int) -> list[Series]:
    found = []
    parameters = {**_base_parameters(rule, now_ms), "min_executions": min(min_executions(rule), 2**31)}
    for row in _rows(client, N_PLUS_ONE_SQL, parameters):
        labels = {"service": str(row["service"]), "operation": str(row["parent_operation"]),
                  "statement": str(row["statement"])}
        key = f"{labels['service']} | {labels['operation']} | {labels['statement'][:500]}"
        details = {"parent_spans": int(row["parent_spans"]), "traces": int(row["traces"]),
                   "example_trace_id": str(row["example_trace_id"])}
        found.append(Series(key, labels, float(row["max_executions"]), details))
    return found


def evaluate_signal(client: Client, rule: RuleBody, now_ms: int) -> list[Series]:
    """The current value of every series of `rule` at `now_ms` (epoch milliseconds)."""
    if rule.signal in SPAN_SIGNALS:
        return span_series(client, rule, now_ms)
    if rule.signal in METRIC_SIGNALS:
        return metric_series(client, rule, now_ms)
    if rule.signal == Signal.HEARTBEAT_MISSING:
        return heartbeat_series(client, rule, now_ms)
    if rule.signal == Signal.NEW_CYCLE:
        return cycle_series(client, rule, now_ms)
    if rule.signal == Signal.N_PLUS_ONE:
        return n_plus_one_series(client, rule, now_ms)
    raise ValueError(f"unknown signal {rule.signal}")
