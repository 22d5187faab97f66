-- Every span of one trace, reading only the time range the trace-id lookup table gives.
WITH
    (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = {trace_id:String}) AS lo,
    (SELECT max(End) FROM otel_traces_trace_id_ts WHERE TraceId = {trace_id:String}) AS hi
SELECT
    toUnixTimestamp64Nano(Timestamp) AS start_ns,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    TraceState AS trace_state,
    toString(SpanName) AS name,
    toString(SpanKind) AS kind,
    toString(ServiceName) AS service,
    ResourceAttributes AS resource_attributes,
    ScopeName AS scope_name,
    ScopeVersion AS scope_version,
    SpanAttributes AS attributes,
    Duration AS duration_ns,
    toString(StatusCode) AS status_code,
    StatusMessage AS status_message,
    arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS event_times_ns,
    Events.Name AS event_names,
    Events.Attributes AS event_attributes,
    Links.TraceId AS link_trace_ids,
    Links.SpanId AS link_span_ids,
    Links.TraceState AS link_trace_states,
    Links.Attributes AS link_attributes
FROM otel_traces
WHERE TraceId = {trace_id:String}
  AND toDateTime(Timestamp) >= toDateTime(lo) AND toDateTime(Timestamp) <= toDateTime(hi)
ORDER BY Timestamp, span_id
