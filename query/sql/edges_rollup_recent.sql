-- Edges over [start_s, end_s) from the rollup plus the newest snapshot of edges past its watermark.
SELECT
    toString(Source) AS source,
    toString(SourceKind) AS source_kind,
    toString(Target) AS target,
    toString(TargetKind) AS target_kind,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    sum(DurationSumNs) AS total_ns,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles,
    /*EXAMPLES*/ AS example_trace_ids
FROM (
    SELECT toString(Source) AS Source, toString(SourceKind) AS SourceKind, toString(Target) AS Target,
           toString(TargetKind) AS TargetKind, Calls, Errors, DurationSumNs, DurationSketch, ExampleTraceIds
    FROM /*WINDOW_SERVICE_EDGES*/
    WHERE 1
    UNION ALL
    SELECT toString(Source) AS Source, toString(SourceKind) AS SourceKind, toString(Target) AS Target,
           toString(TargetKind) AS TargetKind, Calls, Errors, DurationSumNs, DurationSketch, ExampleTraceIds
    FROM tracehouse_edges_recent
    WHERE RunId = {run_id:UInt64}
      AND Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({end_s:Int64})
)
GROUP BY Source, SourceKind, Target, TargetKind
