-- The columns every edge query returns, from rows of (Source, SourceKind, Target, TargetKind, Calls, ...).
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
