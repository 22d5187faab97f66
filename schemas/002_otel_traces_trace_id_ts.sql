-- Trace id -> time range lookup, so that a trace by id reads only the partitions it lives in.
CREATE TABLE IF NOT EXISTS ${LOCAL otel_traces_trace_id_ts} ${ON_CLUSTER} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = ${ENGINE AggregatingMergeTree}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
${TTL Start}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL otel_traces_trace_id_ts_mv} ${ON_CLUSTER}
TO ${LOCAL otel_traces_trace_id_ts}
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM ${LOCAL otel_traces}
WHERE TraceId != ''
GROUP BY TraceId;

${DISTRIBUTED otel_traces_trace_id_ts cityHash64(TraceId)};
