-- One row per trace (after merges): span and error counts, time range, services and the root span,
-- kept by a materialized view on otel_traces. Spans of one trace arriving in many batches merge
-- into the same key, so trace search results are summarized by a primary-key lookup.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_trace_summaries} ${ON_CLUSTER} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime64(9)) CODEC(ZSTD(1)),
    EndNs SimpleAggregateFunction(max, Int64) CODEC(ZSTD(1)),
    SpanCount SimpleAggregateFunction(sum, UInt64),
    ErrorCount SimpleAggregateFunction(sum, UInt64),
    Services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    RootService SimpleAggregateFunction(max, String),
    RootOperation SimpleAggregateFunction(max, String),
    FirstService AggregateFunction(argMin, String, DateTime64(9)),
    FirstOperation AggregateFunction(argMin, String, DateTime64(9))
) ENGINE = ${ENGINE AggregatingMergeTree}
PARTITION BY toStartOfWeek(Start)
ORDER BY TraceId
${TTL toDateTime(Start)}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_trace_summaries_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_trace_summaries}
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) AS EndNs,
    toUInt64(count()) AS SpanCount,
    toUInt64(countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'))) AS ErrorCount,
    groupUniqArray(toString(ServiceName)) AS Services,
    max(if(ParentSpanId = '', toString(ServiceName), '')) AS RootService,
    max(if(ParentSpanId = '', toString(SpanName), '')) AS RootOperation,
    argMinState(toString(ServiceName), Timestamp) AS FirstService,
    argMinState(toString(SpanName), Timestamp) AS FirstOperation
FROM ${LOCAL otel_traces}
WHERE TraceId != ''
GROUP BY TraceId;

${DISTRIBUTED tracehouse_trace_summaries cityHash64(TraceId)};
