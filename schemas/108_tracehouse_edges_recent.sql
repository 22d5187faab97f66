-- The edges the rollup has not finalized yet (span pairs whose later end is at or after its
-- watermark), recomputed by the rollup job on every run and tagged with the run. A busy system's
-- dependency graph reads the newest run's rows instead of joining the raw tail per request.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_edges_recent} ${ON_CLUSTER} (
    RunId UInt64,
    WatermarkMs Int64,
    Minute DateTime,
    Source LowCardinality(String),
    SourceKind LowCardinality(String),
    Target LowCardinality(String),
    TargetKind LowCardinality(String),
    Calls UInt64,
    Errors UInt64,
    DurationSumNs UInt64,
    DurationSketch AggregateFunction(quantilesDD(0.01, 0.5), Float64),
    ExampleTraceIds AggregateFunction(groupUniqArray(5), String),
    InsertedAt DateTime DEFAULT now()
) ENGINE = ${ENGINE MergeTree}
ORDER BY (RunId, Minute)
TTL InsertedAt + INTERVAL 1 HOUR;
