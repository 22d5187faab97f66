-- Ten-minute rollups fed from the one-minute rollups by chained materialized views. Merging
-- duration sketches costs in proportion to their buckets, and a busy key's one-minute sketches
-- each hold most of its buckets, so a long window merges several times faster from these. Readers
-- take whole ten-minute buckets from here and the minutes at either end from the one-minute
-- tables (query/sql/window_*.sql).
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_red_10m} ${ON_CLUSTER} AS ${LOCAL tracehouse_red_1m};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_red_10m_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_red_10m}
AS SELECT
    Bucket AS Minute, ServiceName, SpanName, SpanKind, IsEntry, Calls, Errors, DurationSumNs, DurationMinNs,
    DurationMaxNs, DurationSketch, DurationHistogram, Instances, Versions
FROM (
    SELECT
        toStartOfInterval(Minute, toIntervalMinute(10)) AS Bucket,
        ServiceName, SpanName, SpanKind, IsEntry,
        sum(Calls) AS Calls,
        sum(Errors) AS Errors,
        sum(DurationSumNs) AS DurationSumNs,
        min(DurationMinNs) AS DurationMinNs,
        max(DurationMaxNs) AS DurationMaxNs,
        quantilesDDMergeState(0.01, 0.5)(DurationSketch) AS DurationSketch,
        sumMap(DurationHistogram) AS DurationHistogram,
        groupUniqArrayMergeState(64)(Instances) AS Instances,
        groupUniqArrayMergeState(16)(Versions) AS Versions
    FROM ${LOCAL tracehouse_red_1m}
    GROUP BY Bucket, ServiceName, SpanName, SpanKind, IsEntry
);

${DISTRIBUTED tracehouse_red_10m rand()};

CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_service_edges_10m} ${ON_CLUSTER} AS ${LOCAL tracehouse_service_edges_1m};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_service_edges_10m_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_service_edges_10m}
AS SELECT
    Bucket AS Minute, Source, SourceKind, Target, TargetKind, Operation, Calls, Errors, DurationSumNs,
    DurationSketch, ExampleTraceIds
FROM (
    SELECT
        toStartOfInterval(Minute, toIntervalMinute(10)) AS Bucket,
        Source, SourceKind, Target, TargetKind, Operation,
        sum(Calls) AS Calls,
        sum(Errors) AS Errors,
        sum(DurationSumNs) AS DurationSumNs,
        quantilesDDMergeState(0.01, 0.5)(DurationSketch) AS DurationSketch,
        groupUniqArrayMergeState(5)(ExampleTraceIds) AS ExampleTraceIds
    FROM ${LOCAL tracehouse_service_edges_1m}
    GROUP BY Bucket, Source, SourceKind, Target, TargetKind, Operation
);

${DISTRIBUTED tracehouse_service_edges_10m rand()};

CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_db_calls_10m} ${ON_CLUSTER} AS ${LOCAL tracehouse_db_calls_1m};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_db_calls_10m_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_db_calls_10m}
AS SELECT
    Bucket AS Minute, ServiceName, DbSystem, DbName, Statement, Calls, Errors, DurationSumNs, DurationSketch,
    ExampleTraceIds
FROM (
    SELECT
        toStartOfInterval(Minute, toIntervalMinute(10)) AS Bucket,
        ServiceName, DbSystem, DbName, Statement,
        sum(Calls) AS Calls,
        sum(Errors) AS Errors,
        sum(DurationSumNs) AS DurationSumNs,
        quantilesDDMergeState(0.01, 0.5)(DurationSketch) AS DurationSketch,
        groupUniqArrayMergeState(5)(ExampleTraceIds) AS ExampleTraceIds
    FROM ${LOCAL tracehouse_db_calls_1m}
    GROUP BY Bucket, ServiceName, DbSystem, DbName, Statement
);

${DISTRIBUTED tracehouse_db_calls_10m rand()};
