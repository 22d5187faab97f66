-- Edges over [start_s, end_s) from the rollup, plus the span pairs the rollup job has not reached
-- yet (later end time at or after its watermark), read from raw spans.
/*EDGES_SELECT*/
FROM (
    /*EDGES_ROLLUP_ROWS*/
    UNION ALL
    SELECT Source, SourceKind, Target, TargetKind, toUInt64(count()) AS Calls,
           toUInt64(sum(IsError)) AS Errors, sum(DurationNs) AS DurationSumNs,
           quantilesDDState(0.01, 0.5)(DurationNs / 1e6) AS DurationSketch,
           groupUniqArrayState(5)(TraceId) AS ExampleTraceIds
    FROM (/*SPAN_PAIRS*/)
    GROUP BY Source, SourceKind, Target, TargetKind
)
GROUP BY Source, SourceKind, Target, TargetKind
