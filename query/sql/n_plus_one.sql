-- Parent spans that ran one normalized statement at least {min_executions} times in [start_ns, end_ns).
WITH runs AS (
    SELECT TraceId, ParentSpanId, toString(ServiceName) AS service, /*DB_SYSTEM*/ AS db_system,
           /*DB_STATEMENT*/ AS statement, count() AS executions
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
      AND SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
      AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '')
      /*FILTERS*/
    GROUP BY TraceId, ParentSpanId, service, db_system, statement
    HAVING executions >= {min_executions:UInt32}
    ORDER BY executions DESC
    LIMIT {max_runs:UInt32}
)
SELECT r.TraceId AS trace_id, r.ParentSpanId AS parent_span_id, r.service AS service,
       if(p.SpanName = '', '(unknown parent)', p.SpanName) AS parent_operation,
       r.db_system AS db_system, r.statement AS statement, r.executions AS executions
FROM runs AS r
LEFT JOIN (
    SELECT TraceId, SpanId, toString(SpanName) AS SpanName
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({scan_from_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
      AND (TraceId, SpanId) IN (SELECT TraceId, ParentSpanId FROM runs)
) AS p ON r.TraceId = p.TraceId AND r.ParentSpanId = p.SpanId
