-- Service dependency edges.
--
-- tracehouse_span_links holds one row per parent->child span pair whose services differ, and one
-- per CLIENT span to an uninstrumented peer (no child span, the target is an `external` node). It is
-- filled by the query service's rollup job (query/rollup.py), an INSERT ... SELECT over closed time
-- windows that joins each child to its parent by (TraceId, ParentSpanId). A pair belongs to the
-- window that contains the later of the two span end times, so it is counted exactly once, when
-- both spans are known to have arrived (a span is stored at most `lateness_s` after it ends).
-- tracehouse_rollup_windows records which windows are claimed and done. A claim is inserted with
-- an insert_deduplication_token naming the window and attempt, so of several query services
-- claiming one window at once exactly one row is stored: its owner does the work.
--
-- tracehouse_service_edges_1m is the per-minute rollup the API reads: from the links (service ->
-- service, or broker -> consumer) and, straight from otel_traces, CLIENT/PRODUCER spans that name
-- a database (db.system) or a broker (messaging.system).
CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_span_links} ${ON_CLUSTER} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    Source LowCardinality(String),
    SourceKind LowCardinality(String),
    Target LowCardinality(String),
    TargetKind LowCardinality(String),
    Operation LowCardinality(String),
    DurationNs UInt64 CODEC(T64, ZSTD(1)),
    IsError UInt8
) ENGINE = ${ENGINE MergeTree}
PARTITION BY toDate(Minute)
ORDER BY (Minute, Source, Target)
${TTL Minute};

${DISTRIBUTED tracehouse_span_links cityHash64(TraceId)};

CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_service_edges_1m} ${ON_CLUSTER} (
    Minute DateTime CODEC(Delta(4), ZSTD(1)),
    Source LowCardinality(String),
    SourceKind LowCardinality(String),
    Target LowCardinality(String),
    TargetKind LowCardinality(String),
    Operation LowCardinality(String),
    Calls SimpleAggregateFunction(sum, UInt64),
    Errors SimpleAggregateFunction(sum, UInt64),
    DurationSumNs SimpleAggregateFunction(sum, UInt64),
    DurationSketch AggregateFunction(quantilesDD(0.01, 0.5), Float64),
    ExampleTraceIds AggregateFunction(groupUniqArray(5), String)
) ENGINE = ${ENGINE AggregatingMergeTree}
PARTITION BY toDate(Minute)
ORDER BY (Minute, Source, SourceKind, Target, TargetKind, Operation)
${TTL Minute}
SETTINGS index_granularity = 1024;

${DISTRIBUTED tracehouse_service_edges_1m rand()};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_service_edges_links_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_service_edges_1m}
AS SELECT
    Minute,
    Source,
    SourceKind,
    Target,
    TargetKind,
    Operation,
    toUInt64(count()) AS Calls,
    toUInt64(sum(IsError)) AS Errors,
    sum(DurationNs) AS DurationSumNs,
    quantilesDDState(0.01, 0.5)(DurationNs / 1e6) AS DurationSketch,
    groupUniqArrayState(5)(TraceId) AS ExampleTraceIds
FROM ${LOCAL tracehouse_span_links}
GROUP BY Minute, Source, SourceKind, Target, TargetKind, Operation;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${LOCAL tracehouse_service_edges_clients_mv} ${ON_CLUSTER}
TO ${LOCAL tracehouse_service_edges_1m}
AS SELECT
    toStartOfMinute(Timestamp) AS Minute,
    ServiceName AS Source,
    'service' AS SourceKind,
    if(SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '',
        concat(
            if(SpanAttributes['db.system'] != '', SpanAttributes['db.system'], SpanAttributes['db.system.name']),
            multiIf(SpanAttributes['db.name'] != '', concat('/', SpanAttributes['db.name']),
                    SpanAttributes['db.namespace'] != '', concat('/', SpanAttributes['db.namespace']),
                    SpanAttributes['server.address'] != '', concat('@', SpanAttributes['server.address']),
                    SpanAttributes['net.peer.name'] != '', concat('@', SpanAttributes['net.peer.name']),
                    SpanAttributes['peer.service'] != '', concat('@', SpanAttributes['peer.service']),
                    '')),
        concat(SpanAttributes['messaging.system'],
            multiIf(SpanAttributes['messaging.destination.name'] != '', concat('/', SpanAttributes['messaging.destination.name']),
                    SpanAttributes['messaging.destination'] != '', concat('/', SpanAttributes['messaging.destination']),
                    ''))) AS Target,
    if(SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '', 'database', 'messaging') AS TargetKind,
    SpanName AS Operation,
    toUInt64(count()) AS Calls,
    toUInt64(countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'))) AS Errors,
    sum(Duration) AS DurationSumNs,
    quantilesDDState(0.01, 0.5)(Duration / 1e6) AS DurationSketch,
    groupUniqArrayState(5)(TraceId) AS ExampleTraceIds
FROM ${LOCAL otel_traces}
WHERE SpanKind IN ('Client', 'Producer', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER')
  AND (SpanAttributes['db.system'] != '' OR SpanAttributes['db.system.name'] != '' OR SpanAttributes['messaging.system'] != '')
GROUP BY Minute, Source, SourceKind, Target, TargetKind, Operation;

CREATE TABLE IF NOT EXISTS ${LOCAL tracehouse_rollup_windows} ${ON_CLUSTER} (
    Job LowCardinality(String),
    WindowStart DateTime64(3),
    WindowEnd DateTime64(3),
    Attempt UInt32,
    Owner String,
    ClaimedAt DateTime64(6),
    State Enum8('claimed' = 1, 'done' = 2)
) ENGINE = ${ENGINE MergeTree}
ORDER BY (Job, WindowStart, Attempt, State)
SETTINGS non_replicated_deduplication_window = 100000;
