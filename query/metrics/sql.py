"""SQL of the metrics API. Every user-supplied value is a bound parameter; the only text put into
these statements is the table names below."""

from __future__ import annotations

from tracehouse.query.sqlfiles import sql as sql_file

GAUGE = "otel_metrics_gauge"
SUM = "otel_metrics_sum"
HISTOGRAM = "otel_metrics_histogram"
SUMMARY = "otel_metrics_summary"
EXPONENTIAL_HISTOGRAM = "otel_metrics_exponential_histogram"
METRIC_TABLES = (GAUGE, SUM, HISTOGRAM, SUMMARY, EXPONENTIAL_HISTOGRAM)

_WINDOW = ("TimeUnix >= fromUnixTimestamp64Nano({start_ns:Int64}) "
           "AND TimeUnix < fromUnixTimestamp64Nano({end_ns:Int64})")

# `attr=key:value` filters: each key must have the value in the point's attributes, in the
# resource attributes, or (for service.name) in ServiceName.
_ATTRIBUTE_FILTER = (
    "arrayAll((k, v) -> (k = 'service.name' AND ServiceName = v) OR Attributes[k] = v OR ResourceAttributes[k] = v, "
    "{keys:Array(String)}, {values:Array(String)})"
)


def _catalogue(table: str) -> str:
    monotonic = "max(toUInt8(IsMonotonic))" if table == SUM else "0"
    return f"""
SELECT MetricName AS name,
       anyLast(MetricUnit) AS unit,
       anyLast(MetricDescription) AS description,
       {monotonic} AS monotonic,
       groupUniqArray(200)(ServiceName) AS services,
       groupUniqArrayIf(200)(ResourceAttributes['host.name'], ResourceAttributes['host.name'] != '') AS hosts,
       count() AS points,
       toUnixTimestamp64Nano(max(TimeUnix)) AS last_seen_ns
FROM {table}
WHERE {_WINDOW}
  AND ({{service:String}} = '' OR ServiceName = {{service:String}})
  AND ({{host:String}} = '' OR ResourceAttributes['host.name'] = {{host:String}})
  AND startsWith(MetricName, {{prefix:String}})
GROUP BY MetricName
ORDER BY MetricName
LIMIT 10000
"""


CATALOGUE = {table: _catalogue(table) for table in METRIC_TABLES}

# Which table holds a metric (a name could be in two if producers disagree; the query takes the first).
METRIC_KIND = " UNION ALL ".join(
    f"SELECT '{table}' AS table_name, count() AS points FROM {table} "
    f"WHERE MetricName = {{name:String}} AND {_WINDOW}"
    for table in METRIC_TABLES
)

GAUGE_POINTS = f"""
SELECT ServiceName, ResourceAttributes, Attributes, toUnixTimestamp64Nano(TimeUnix) AS t_ns,
       toUnixTimestamp64Nano(StartTimeUnix) AS start_ns, Value, MetricUnit,
       toInt32(0) AS temporality, toUInt8(0) AS monotonic
FROM {GAUGE}
WHERE MetricName = {{name:String}} AND {_WINDOW} AND {_ATTRIBUTE_FILTER}
ORDER BY TimeUnix
LIMIT {{limit:UInt64}}
"""

SUM_POINTS = f"""
SELECT ServiceName, ResourceAttributes, Attributes, toUnixTimestamp64Nano(TimeUnix) AS t_ns,
       toUnixTimestamp64Nano(StartTimeUnix) AS start_ns, Value, MetricUnit,
       AggregationTemporality AS temporality, toUInt8(IsMonotonic) AS monotonic
FROM {SUM}
WHERE MetricName = {{name:String}} AND {_WINDOW} AND {_ATTRIBUTE_FILTER}
ORDER BY TimeUnix
LIMIT {{limit:UInt64}}
"""

# Points of many metrics of one source (a host, or a middleware instance), for correlation.
# `source_key`/`source_value` select by a resource attribute (host.name) or by ServiceName.
def _source_points(table: str) -> str:
    extra = "AggregationTemporality, toUInt8(IsMonotonic)" if table == SUM else "toInt32(0), toUInt8(0)"
    return f"""
SELECT MetricName, ServiceName, ResourceAttributes, Attributes, toUnixTimestamp64Nano(TimeUnix) AS t_ns,
       toUnixTimestamp64Nano(StartTimeUnix) AS start_ns, Value, MetricUnit, {extra}
FROM {table}
WHERE {_WINDOW}
  AND if({{source_key:String}} = 'service.name', ServiceName, ResourceAttributes[{{source_key:String}}])
      = {{source_value:String}}
  AND startsWith(MetricName, {{prefix:String}})
  AND NOT mapContains(Attributes, 'cpu.logical_number')
ORDER BY TimeUnix
LIMIT {{limit:UInt64}}
"""


GAUGE_SOURCE_POINTS = _source_points(GAUGE)
SUM_SOURCE_POINTS = _source_points(SUM)

# The latest host figures: gauges, newest value per host, metric and attribute set.
HOST_GAUGES = f"""
SELECT ResourceAttributes['host.name'] AS host, MetricName, Attributes,
       argMax(Value, TimeUnix) AS value, toUnixTimestamp64Nano(max(TimeUnix)) AS t_ns
FROM {GAUGE}
WHERE {_WINDOW} AND ResourceAttributes['host.name'] != ''
  AND MetricName IN ('system.cpu.utilization', 'system.memory.utilization', 'system.filesystem.utilization',
                     'system.cpu.load_average.1m')
  AND NOT mapContains(Attributes, 'cpu.logical_number')
GROUP BY host, MetricName, Attributes
"""

HOST_SUMS = f"""
SELECT ResourceAttributes['host.name'] AS host, ServiceName, ResourceAttributes['service.instance.id'] AS instance,
       MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix) AS t_ns, toUnixTimestamp64Nano(StartTimeUnix) AS start_ns,
       Value
FROM {SUM}
WHERE {_WINDOW} AND ResourceAttributes['host.name'] != ''
  AND MetricName IN ('system.memory.usage', 'system.memory.limit', 'system.network.io', 'system.disk.io')
ORDER BY TimeUnix
LIMIT 200000
"""

HOST_SERVICES_FROM_SPANS = """
SELECT ResourceAttributes['host.name'] AS host, ServiceName AS service,
       groupUniqArray(100)(ResourceAttributes['service.instance.id']) AS instances,
       toUnixTimestamp64Nano(max(Timestamp)) AS last_seen_ns
FROM otel_traces
WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
  AND ResourceAttributes['host.name'] != ''
GROUP BY host, service
"""

HOST_SERVICES_FROM_METRICS = f"""
SELECT ResourceAttributes['host.name'] AS host, ServiceName AS service,
       groupUniqArray(100)(ResourceAttributes['service.instance.id']) AS instances,
       toUnixTimestamp64Nano(max(TimeUnix)) AS last_seen_ns
FROM {GAUGE}
WHERE {_WINDOW} AND ResourceAttributes['host.name'] != ''
  AND ResourceAttributes['tracehouse.middleware.system'] = ''
GROUP BY host, service
"""

# --- correlation ------------------------------------------------------------------------------

_SPAN_WINDOW = ("Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) "
                "AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})")
_ENTRY_KINDS = "('Server', 'Consumer', 'SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER')"

# p99 and error rate per step of the service's entry spans (SERVER/CONSUMER; all its spans when it
# has none). Computed from raw spans with ClickHouse's exact-enough quantile (reservoir of 8192).
SERVICE_LATENCY = f"""
WITH (SELECT count() FROM otel_traces WHERE ServiceName = {{service:String}} AND {_SPAN_WINDOW}
      AND SpanKind IN {_ENTRY_KINDS}) AS entry_spans
SELECT toUnixTimestamp(toStartOfInterval(Timestamp, toIntervalSecond({{step_s:UInt32}}))) AS step,
       count() AS calls,
       countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS errors,
       quantile(0.99)(Duration) / 1e6 AS p99_ms,
       quantile(0.5)(Duration) / 1e6 AS p50_ms
FROM otel_traces
WHERE ServiceName = {{service:String}} AND {_SPAN_WINDOW}
  AND (entry_spans = 0 OR SpanKind IN {_ENTRY_KINDS})
GROUP BY step
ORDER BY step
"""

SERVICE_HOSTS = f"""
SELECT DISTINCT ResourceAttributes['host.name'] AS host
FROM otel_traces
WHERE ServiceName = {{service:String}} AND {_SPAN_WINDOW} AND ResourceAttributes['host.name'] != ''
LIMIT 50
"""

# The dependency graph's node for a CLIENT/PRODUCER span: the query service's own expression
# (query/sql/expr_backend_target.sql), so the UI can link the two.
_BACKEND_NODE = sql_file("expr_backend_target")

SERVICE_DEPENDENCIES = f"""
SELECT {_BACKEND_NODE} AS node,
       multiIf(SpanAttributes['db.system'] != '', SpanAttributes['db.system'],
               SpanAttributes['db.system.name'] != '', SpanAttributes['db.system.name'],
               SpanAttributes['messaging.system']) AS system,
       if(SpanAttributes['server.address'] != '', SpanAttributes['server.address'], SpanAttributes['net.peer.name']) AS address,
       if(SpanAttributes['server.port'] != '', SpanAttributes['server.port'], SpanAttributes['net.peer.port']) AS port,
       SpanAttributes['peer.service'] AS peer_service,
       if(SpanAttributes['db.name'] != '', SpanAttributes['db.name'], SpanAttributes['db.namespace']) AS db_name,
       count() AS calls
FROM otel_traces
WHERE ServiceName = {{service:String}} AND {_SPAN_WINDOW}
  AND SpanKind IN ('Client', 'Producer', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER')
  AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != ''
       OR SpanAttributes['messaging.system'] != '')
GROUP BY node, system, address, port, peer_service, db_name
ORDER BY calls DESC
LIMIT 50
"""

# Middleware instances: whoever reports `up` with a receiver system in its resource.
MIDDLEWARE_INSTANCES = f"""
SELECT ServiceName,
       anyLast(ResourceAttributes['tracehouse.middleware.system']) AS receiver_system,
       anyLast(if(ResourceAttributes['db.system'] != '', ResourceAttributes['db.system'],
                  ResourceAttributes['messaging.system'])) AS client_system,
       anyLast(ResourceAttributes['server.address']) AS address,
       anyLast(ResourceAttributes['server.port']) AS port,
       anyLast(ResourceAttributes['tracehouse.middleware.addresses']) AS aliases
FROM {GAUGE}
WHERE MetricName = 'up' AND ResourceAttributes['tracehouse.middleware.system'] != ''
  AND TimeUnix >= fromUnixTimestamp64Nano({{start_ns:Int64}}) - INTERVAL 1 DAY
  AND TimeUnix < fromUnixTimestamp64Nano({{end_ns:Int64}})
GROUP BY ServiceName
LIMIT 1000
"""

MIDDLEWARE_STATUS = f"""
SELECT ServiceName AS name,
       argMax(ResourceAttributes['tracehouse.middleware.system'], TimeUnix) AS system,
       argMax(ResourceAttributes['server.address'], TimeUnix) AS address,
       argMax(ResourceAttributes['server.port'], TimeUnix) AS port,
       argMax(Value, TimeUnix) AS up,
       toUnixTimestamp64Nano(max(TimeUnix)) AS last_seen_ns,
       countIf(Value >= 1) / count() AS availability
FROM {GAUGE}
WHERE MetricName = 'up' AND ResourceAttributes['tracehouse.middleware.system'] != '' AND {_WINDOW}
GROUP BY ServiceName
ORDER BY ServiceName
LIMIT 1000
"""

HISTOGRAM_POINTS = f"""
SELECT ServiceName, ResourceAttributes, Attributes, toUnixTimestamp64Nano(TimeUnix) AS t_ns,
       Count, Sum, BucketCounts, ExplicitBounds, MetricUnit, AggregationTemporality
FROM {HISTOGRAM}
WHERE MetricName = {{name:String}} AND {_WINDOW} AND {_ATTRIBUTE_FILTER}
ORDER BY TimeUnix
LIMIT {{limit:UInt64}}
"""
