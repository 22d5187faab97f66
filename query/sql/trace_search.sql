-- Traces with a span matching the filters in [start_ns, end_ns), newest match first.
SELECT TraceId AS trace_id, Timestamp AS last_match
FROM otel_traces
WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({end_ns:Int64})
  AND TraceId != ''
  /*FILTERS*/
ORDER BY Timestamp DESC, TraceId
LIMIT 1 BY TraceId
LIMIT {limit:UInt32}
