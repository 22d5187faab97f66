SELECT TraceId AS trace_id, SpanId AS span_id, ParentSpanId AS parent_span_id, toString(ServiceName) AS service
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= fromUnixTimestamp64Nano({scan_from_ns:Int64}) AND Timestamp < fromUnixTimestamp64Nano({scan_to_ns:Int64})
