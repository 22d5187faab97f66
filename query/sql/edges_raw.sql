-- Edges over [start_ns, end_ns) computed exactly from raw spans (small windows).
SELECT
    Source AS source,
    SourceKind AS source_kind,
    Target AS target,
    TargetKind AS target_kind,
    toUInt64(count()) AS calls,
    toUInt64(sum(IsError)) AS errors,
    sum(DurationNs) AS total_ns,
    quantilesDD(0.01, 0.5, 0.95, 0.99)(DurationNs / 1e6) AS quantiles,
    groupUniqArray(5)(TraceId) AS example_trace_ids
FROM (
    SELECT Source, SourceKind, Target, TargetKind, DurationNs, IsError, TraceId
    FROM (/*SPAN_PAIRS*/)
    UNION ALL
    SELECT toString(ServiceName) AS Source, 'service' AS SourceKind, /*BACKEND_TARGET*/ AS Target,
           if(SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '', 'database', 'messaging') AS TargetKind,
           Duration AS DurationNs, toUInt8(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS IsError, TraceId
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
      AND SpanKind IN ('Client', 'Producer', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER')
      AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '' OR SpanAttributes['messaging.system'] != '')
)
GROUP BY Source, SourceKind, Target, TargetKind
