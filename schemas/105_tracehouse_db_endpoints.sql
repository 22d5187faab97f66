-- Which endpoint issues each database statement: per minute, the innermost SERVER span of the same
-- service and trace that encloses a database CLIENT span in time. Filled by the query service's
-- rollup job in the same windows as tracehouse_span_links: a call is counted in the window holding
-- its enclosing SERVER span's end (the later of the two ends), so exactly once.
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_db_endpoints_1m} ${ON_CLUSTER} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String),
    DbSystem LowCardinality(String),
    Statement String CODEC(ZSTD(1)),
    Endpoint LowCardinality(String),
    Calls UInt64
) ENGINE = ${ENGINE SummingMergeTree}
PARTITION BY toDate(Minute)
ORDER BY (ServiceName, DbSystem, Statement, Endpoint, Minute)
${TTL Minute};

${DISTRIBUTED tracehouse_db_endpoints_1m rand()};
