-- Edges over [start_s, end_s) from the rollup, plus the span pairs the rollup job has not reached
-- yet (later end time at or after its watermark), read from raw spans.
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
    SELECT Source, SourceKind, Target, TargetKind, toUInt64(count()) AS Calls,
           toUInt64(sum(IsError)) AS Errors, sum(DurationNs) AS DurationSumNs,
           quantilesDDState(0.01, 0.5)(DurationNs / 1e6) AS DurationSketch,
           groupUniqArrayState(5)(TraceId) AS ExampleTraceIds
    FROM (/*SPAN_PAIRS*/)
    GROUP BY Source, SourceKind, Target, TargetKind
)
GROUP BY Source, SourceKind, Target, TargetKind
