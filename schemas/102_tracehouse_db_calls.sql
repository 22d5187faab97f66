-- Database calls per service, database and normalized statement per minute, from CLIENT spans that
-- carry db.system (or db.system.name), kept up to date by a materialized view on otel_traces.
-- The statement is normalized inside ClickHouse: literals become ?, IN-lists and VALUES rows (?),
-- key-value stores (redis, memcached) keep only the command word. query/analysis/sqlnorm.py states
-- the same rules in Python.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_db_calls_1m} ${ON_CLUSTER} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String),
    DbSystem LowCardinality(String),
    DbName LowCardinality(String),
    Statement String CODEC(ZSTD(1)),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    DurationSumNs SimpleAggregateFunction(sum, UInt64),
    DurationSketch AggregateFunction(quantilesDD(0.01, 0.5), Float64),
    ExampleTraceIds AggregateFunction(groupUniqArray(5), String)
) ENGINE = ${ENGINE AggregatingMergeTree}
PARTITION BY toDate(Minute)
ORDER BY (Minute, ServiceName, DbSystem, DbName, Statement)
${TTL Minute}
SETTINGS index_granularity = 128;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_db_calls_1m_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_db_calls_1m}
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName,
    if(SpanAttributes['db.system'] != '', SpanAttributes['db.system'], SpanAttributes['db.system.name']) AS DbSystem,
    if(SpanAttributes['db.name'] != '', SpanAttributes['db.name'], SpanAttributes['db.namespace']) AS DbName,
    multiIf(
        DbSystem IN ('redis', 'memcached'),
        concat(upper(splitByWhitespace(if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'],
            if(SpanAttributes['db.query.text'] != '', SpanAttributes['db.query.text'], SpanName)))[1]), ' ?'),
        if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'], SpanAttributes['db.query.text']) != '',
        trimBoth(replaceRegexpAll(replaceRegexpAll(normalizeQuery(left(
            if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'], SpanAttributes['db.query.text']),
            8192)), '\\(\\?\\.\\.\\)(\\s*,\\s*\\(\\?\\.\\.\\))*', '(?)'), '\\s+', ' ')),
        if(SpanAttributes['db.operation'] != '', SpanAttributes['db.operation'], SpanName)) AS Statement,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'))) AS Errors,
    sum(Duration) AS DurationSumNs,
    quantilesDDState(0.01, 0.5)(Duration / 1e6) AS DurationSketch,
    groupUniqArrayState(5)(TraceId) AS ExampleTraceIds
FROM ${LOCAL otel_traces}
WHERE SpanKind IN ('Client', 'SPAN_KIND_CLIENT')
  AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '')
GROUP BY Minute, ServiceName, DbSystem, DbName, Statement;

${DISTRIBUTED tracehouse_db_calls_1m rand()};
