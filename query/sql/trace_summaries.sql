-- Summaries of the given traces from the per-trace rollup (a primary-key lookup).
SELECT
    TraceId AS trace_id,
    toUnixTimestamp64Nano(min(Start)) AS start_ns,
    max(EndNs) - toUnixTimestamp64Nano(min(Start)) AS duration_ns,
    if(max(RootService) != '', max(RootService), argMinMerge(FirstService)) AS root_service,
    if(max(RootService) != '', max(RootOperation), argMinMerge(FirstOperation)) AS root_operation,
    sum(SpanCount) AS span_count,
    sum(ErrorCount) AS error_count,
    arraySort(groupUniqArrayArray(Services)) AS services
FROM tracehouse_trace_summaries
WHERE TraceId IN {trace_ids:Array(String)}
GROUP BY TraceId
