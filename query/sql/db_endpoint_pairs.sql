-- Database CLIENT spans starting in [child_from_ns, child_to_ns) with the innermost SERVER span of
-- the same service and trace that encloses them in time (the endpoint that issued the call), for
-- the calls whose enclosing SERVER span ends in [pair_end_from_ns, pair_end_to_ns).
SELECT Minute, service, db_system, statement, endpoint
FROM (
    SELECT
        any(d.Minute) AS Minute,
        any(d.Service) AS service,
        any(d.DbSystem) AS db_system,
        any(d.Statement) AS statement,
        argMax(s.SpanName, s.Timestamp) AS endpoint,
        argMax(s.EndNs, s.Timestamp) AS endpoint_end_ns
    FROM (
        SELECT TraceId, SpanId, toStartOfMinute(Timestamp) AS Minute, toString(ServiceName) AS Service, Timestamp,
               toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs,
               /*DB_SYSTEM*/ AS DbSystem,
               /*DB_STATEMENT*/ AS Statement
        FROM otel_traces
        WHERE Timestamp >= fromUnixTimestamp64Nano({child_from_ns:Int64})
          AND Timestamp < fromUnixTimestamp64Nano({child_to_ns:Int64})
          AND SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
          AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '')
          /*FILTERS*/
    ) AS d
    INNER JOIN (
        SELECT TraceId, toString(ServiceName) AS Service, toString(SpanName) AS SpanName, Timestamp,
               toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs
        FROM otel_traces
        WHERE Timestamp >= fromUnixTimestamp64Nano({parent_from_ns:Int64})
          AND Timestamp < fromUnixTimestamp64Nano({parent_to_ns:Int64})
          AND SpanKind IN ('Server', 'SPAN_KIND_SERVER')
    ) AS s ON d.TraceId = s.TraceId AND d.Service = s.Service
    WHERE s.Timestamp <= d.Timestamp AND s.EndNs >= d.EndNs
    GROUP BY d.TraceId, d.SpanId
)
WHERE endpoint_end_ns >= {pair_end_from_ns:Int64} AND endpoint_end_ns < {pair_end_to_ns:Int64}
