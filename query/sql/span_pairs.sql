-- Parent -> child span pairs whose services differ (or whose parent is a PRODUCER span naming a
-- broker, which makes the broker the source). Children are joined to parents by
-- (TraceId, ParentSpanId = SpanId). Only pairs whose later end time falls in
-- [pair_end_from_ns, pair_end_to_ns) are returned: that is what makes the rollup count each pair
-- in exactly one window. Then, as pairs with an `external` target: CLIENT spans that name a peer
-- (peer.service, server.address, ...) but no database or broker, and have no child span; such a
-- span ends after its synchronous children, so by its window they would have arrived.
SELECT
    toStartOfMinute(c.Timestamp) AS Minute,
    c.TraceId AS TraceId,
    c.ParentSpanId AS ParentSpanId,
    c.SpanId AS SpanId,
    if(p.Broker != '', p.Broker, toString(p.ServiceName)) AS Source,
    if(p.Broker != '', 'messaging', 'service') AS SourceKind,
    toString(c.ServiceName) AS Target,
    'service' AS TargetKind,
    toString(c.SpanName) AS Operation,
    c.Duration AS DurationNs,
    c.IsError AS IsError
FROM (
    SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanName, Timestamp, Duration,
           toUInt8(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS IsError,
           toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({child_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({child_to_ns:Int64})
      AND ParentSpanId != ''
) AS c
INNER JOIN (
    -- Only PRODUCER spans need their attributes (the broker's name): reading the attribute map of
    -- every candidate parent would dominate the cost.
    SELECT TraceId, SpanId, ServiceName, '' AS Broker,
           toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({parent_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({parent_to_ns:Int64})
      AND SpanKind NOT IN ('Producer', 'SPAN_KIND_PRODUCER')
    UNION ALL
    SELECT TraceId, SpanId, ServiceName,
           if(SpanAttributes['messaging.system'] != '',
              concat(SpanAttributes['messaging.system'],
                     multiIf(SpanAttributes['messaging.destination.name'] != '', concat('/', SpanAttributes['messaging.destination.name']),
                             SpanAttributes['messaging.destination'] != '', concat('/', SpanAttributes['messaging.destination']),
                             '')),
              '') AS Broker,
           toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) AS EndNs
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({parent_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({parent_to_ns:Int64})
      AND SpanKind IN ('Producer', 'SPAN_KIND_PRODUCER')
) AS p ON c.TraceId = p.TraceId AND c.ParentSpanId = p.SpanId
WHERE (p.Broker != '' OR c.ServiceName != p.ServiceName)
  AND greatest(c.EndNs, p.EndNs) >= {pair_end_from_ns:Int64}
  AND greatest(c.EndNs, p.EndNs) < {pair_end_to_ns:Int64}
UNION ALL
SELECT
    toStartOfMinute(e.Timestamp) AS Minute,
    e.TraceId AS TraceId,
    e.SpanId AS ParentSpanId,
    '' AS SpanId,
    toString(e.ServiceName) AS Source,
    'service' AS SourceKind,
    e.Peer AS Target,
    'external' AS TargetKind,
    toString(e.SpanName) AS Operation,
    e.Duration AS DurationNs,
    e.IsError AS IsError
FROM (
    SELECT TraceId, SpanId, ServiceName, SpanName, Timestamp, Duration,
           toUInt8(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS IsError,
           /*EXTERNAL_PEER*/ AS Peer
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({child_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({child_to_ns:Int64})
      AND SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
      AND SpanAttributes['db.system'] = '' AND SpanAttributes['db.system.name'] = ''
      AND SpanAttributes['messaging.system'] = ''
      AND Peer != ''
      AND toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) >= {pair_end_from_ns:Int64}
      AND toUnixTimestamp64Nano(Timestamp) + toInt64(Duration) < {pair_end_to_ns:Int64}
) AS e
LEFT ANTI JOIN (
    SELECT TraceId, ParentSpanId
    FROM otel_traces
    WHERE Timestamp >= fromUnixTimestamp64Nano({parent_from_ns:Int64})
      AND Timestamp < fromUnixTimestamp64Nano({parent_to_ns:Int64})
      AND ParentSpanId != ''
) AS k ON e.TraceId = k.TraceId AND e.SpanId = k.ParentSpanId
