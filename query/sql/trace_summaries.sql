-- Summaries of the given traces, their time range taken from the trace-id lookup table.
WITH
    (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId IN {trace_ids:Array(String)}) AS lo,
    (SELECT max(End) FROM otel_traces_trace_id_ts WHERE TraceId IN {trace_ids:Array(String)}) AS hi
SELECT
    TraceId AS trace_id,
    toUnixTimestamp64Nano(min(Timestamp)) AS start_ns,
    max(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) - toUnixTimestamp64Nano(min(Timestamp)) AS duration_ns,
    if(countIf(ParentSpanId = '') > 0, toString(argMinIf(ServiceName, Timestamp, ParentSpanId = '')),
       toString(argMin(ServiceName, Timestamp))) AS root_service,
    if(countIf(ParentSpanId = '') > 0, toString(argMinIf(SpanName, Timestamp, ParentSpanId = '')),
       toString(argMin(SpanName, Timestamp))) AS root_operation,
    count() AS span_count,
    countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS error_count,
    arraySort(groupUniqArray(toString(ServiceName))) AS services
FROM otel_traces
WHERE TraceId IN {trace_ids:Array(String)}
  AND Timestamp >= lo AND Timestamp < hi + INTERVAL 1 SECOND
GROUP BY TraceId
