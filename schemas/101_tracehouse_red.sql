-- RED rollup (rate, errors, duration) per service, operation and span kind per minute, kept up to
-- date by a materialized view on otel_traces: every span counts once, whoever inserted it.
-- Durations are stored as a DDSketch (quantileDD, 1% relative accuracy, in milliseconds) and as a
-- log-spaced histogram: bucket b covers [2^(b/4), 2^((b+1)/4)) ms.
-- IsEntry marks the spans that represent a call into the service: SERVER and CONSUMER spans, and roots.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_red_1m} ${ON_CLUSTER} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String),
    SpanName LowCardinality(String),
    SpanKind LowCardinality(String),
    IsEntry UInt8,
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    DurationSumNs SimpleAggregateFunction(sum, UInt64),
    DurationMinNs SimpleAggregateFunction(min, UInt64),
    DurationMaxNs SimpleAggregateFunction(max, UInt64),
    DurationSketch AggregateFunction(quantilesDD(0.01, 0.5), Float64),
    DurationHistogram SimpleAggregateFunction(sumMap, Tuple(Array(Int16), Array(UInt64))),
    Instances AggregateFunction(groupUniqArray(64), String),
    Versions AggregateFunction(groupUniqArray(16), String)
) ENGINE = ${ENGINE AggregatingMergeTree}
PARTITION BY toDate(Minute)
ORDER BY (Minute, ServiceName, SpanName, SpanKind, IsEntry)
${TTL Minute}
SETTINGS index_granularity = 128;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_red_1m_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_red_1m}
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    SpanName,
    multiIf(SpanKind LIKE 'SPAN_KIND_%', concat(upper(substring(SpanKind, 11, 1)), lower(substring(SpanKind, 12))),
            SpanKind = '', 'Unspecified', SpanKind) AS SpanKind,
    toUInt8(ParentSpanId = '' OR SpanKind IN ('Server', 'Consumer', 'SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER')) AS IsEntry,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'))) AS Errors,
    sum(Duration) AS DurationSumNs,
    min(Duration) AS DurationMinNs,
    max(Duration) AS DurationMaxNs,
    quantilesDDState(0.01, 0.5)(Duration / 1e6) AS DurationSketch,
    sumMap([toInt16(floor(log2(greatest(Duration, 1000) / 1e6) * 4))], [toUInt64(1)]) AS DurationHistogram,
    groupUniqArrayStateIf(64)(ResourceAttributes['service.instance.id'], ResourceAttributes['service.instance.id'] != '') AS Instances,
    groupUniqArrayStateIf(16)(ResourceAttributes['service.version'], ResourceAttributes['service.version'] != '') AS Versions
FROM ${LOCAL otel_traces}
GROUP BY Minute, ServiceName, SpanName, SpanKind, IsEntry;

${DISTRIBUTED tracehouse_red_1m rand()};
