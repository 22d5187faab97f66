-- Parent spans that ran one normalized database statement two or more times (the raw material of
-- N+1 detection), filled by the query service's rollup job in the same windows as
-- tracehouse_span_links: a parent is counted in the window holding its end, when all of its
-- synchronous children have arrived.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_db_repeats} ${ON_CLUSTER} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    ParentOperation LowCardinality(String),
    DbSystem LowCardinality(String),
    Statement String CODEC(ZSTD(1)),
    Executions UInt32
) ENGINE = ${ENGINE MergeTree}
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, Statement, Minute)
${TTL Minute};

${DISTRIBUTED tracehouse_db_repeats cityHash64(TraceId)};
