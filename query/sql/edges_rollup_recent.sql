-- Edges over [start_s, end_s) from the rollup plus the newest snapshot of edges past its watermark.
/*EDGES_SELECT*/
FROM (
    /*EDGES_ROLLUP_ROWS*/
    UNION ALL
    SELECT toString(Source) AS Source, toString(SourceKind) AS SourceKind, toString(Target) AS Target,
           toString(TargetKind) AS TargetKind, Calls, Errors, DurationSumNs, DurationSketch, ExampleTraceIds
    FROM tracehouse_edges_recent
    WHERE RunId = {run_id:UInt64}
      AND Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({end_s:Int64})
)
GROUP BY Source, SourceKind, Target, TargetKind
