-- Calls into the given database and broker nodes over [start_s, end_s), all callers together.
SELECT
    toString(Target) AS target,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles
FROM /*WINDOW_SERVICE_EDGES*/
WHERE TargetKind != 'service'
  AND Target IN {targets:Array(String)}
GROUP BY Target
