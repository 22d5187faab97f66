-- Calls into every database, broker and external node over [start_s, end_s), all callers together.
SELECT
    toString(Target) AS target,
    toString(TargetKind) AS target_kind,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    sum(DurationSumNs) AS total_ns,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles
FROM /*WINDOW_SERVICE_EDGES*/
WHERE TargetKind != 'service'
GROUP BY Target, TargetKind
