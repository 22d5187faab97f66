-- Parent spans that ran one normalized statement at least {min_executions} times: their database
-- CLIENT children starting in [child_from_ns, child_to_ns), for parents ending in
-- [pair_end_from_ns, pair_end_to_ns).
SELECT
    toStartOfMinute(min(d.Timestamp)) AS Minute,
    d.TraceId AS TraceId,
    d.ParentSpanId AS ParentSpanId,
    d.Service AS service,
    any(p.SpanName) AS parent_operation,
    d.DbSystem AS db_system,
    d.Statement AS statement,
    toUInt32(count()) AS executions
FROM (
    SELECT TraceId, ParentSpanId, Timestamp, toString(ServiceName) AS Service,
           /*DB_SYSTEM*/ AS DbSystem,
           /*DB_STATEMENT*/ AS Statement
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({child_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({child_to_ns:Int64})
      AND SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
      AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '')
      AND ParentSpanId != ''
      /*FILTERS*/
) AS d
INNER JOIN (
    SELECT TraceId, SpanId, toString(SpanName) AS SpanName,
           toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({parent_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({parent_to_ns:Int64})
) AS p ON d.TraceId = p.TraceId AND d.ParentSpanId = p.SpanId
WHERE p.EndNs >= {pair_end_from_ns:Int64} AND p.EndNs < {pair_end_to_ns:Int64}
GROUP BY d.TraceId, d.ParentSpanId, d.Service, d.DbSystem, d.Statement
HAVING executions >= {min_executions:UInt32}
