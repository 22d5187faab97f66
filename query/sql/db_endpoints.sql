-- For database CLIENT spans in [start_ns, end_ns): the innermost SERVER span of the same service
-- and trace that encloses the call in time, i.e. the endpoint that issued it.
SELECT service, statement, endpoint, count() AS calls
FROM (
    SELECT
        d.TraceId,
        d.SpanId,
        any(d.Service) AS service,
        any(d.Statement) AS statement,
        argMax(s.SpanName, s.Timestamp) AS endpoint
    FROM (
        SELECT TraceId, SpanId, toString(ServiceName) AS Service, Timestamp,
               toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs,
               /*DB_STATEMENT*/ AS Statement
        FROM otel_traces
        WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
          AND SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
          AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '')
          /*FILTERS*/
    ) AS d
    INNER JOIN (
        SELECT TraceId, toString(ServiceName) AS Service, toString(SpanName) AS SpanName, Timestamp,
               toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs
        FROM otel_traces
        WHERE Timestamp >= fromUnixTimestamp64Nano({scan_from_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
          AND SpanKind IN ('Server', 'SPAN_KIND_SERVER')
          /*SERVER_FILTERS*/
    ) AS s ON d.TraceId = s.TraceId AND d.Service = s.Service
    WHERE s.Timestamp <= d.Timestamp AND s.EndNs >= d.EndNs
    GROUP BY d.TraceId, d.SpanId
)
GROUP BY service, statement, endpoint
