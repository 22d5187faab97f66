-- The service-edge rollup's rows over the window, in the shape edges_select.sql reads.
SELECT toString(Source) AS Source, toString(SourceKind) AS SourceKind, toString(Target) AS Target,
       toString(TargetKind) AS TargetKind, Calls, Errors, DurationSumNs, DurationSketch, ExampleTraceIds
FROM /*WINDOW_SERVICE_EDGES*/
WHERE 1
