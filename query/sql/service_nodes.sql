-- Per service over [start_s, end_s): calls, errors and percentiles of its entry spans, the numbers
-- a dependency graph node shows (services.sql adds operations, instances and versions).
SELECT
    toString(ServiceName) AS service,
    sumIf(Calls, IsEntry = 1) AS entry_calls,
    sumIf(Errors, IsEntry = 1) AS entry_errors,
    quantilesDDMergeIf(0.01, 0.5, 0.95, 0.99)(DurationSketch, IsEntry = 1) AS entry_quantiles,
    sum(Calls) AS span_calls,
    sum(Errors) AS span_errors,
    0 AS operations,
    [] :: Array(String) AS instances,
    [] :: Array(String) AS versions
FROM /*WINDOW_RED*/
WHERE 1
GROUP BY ServiceName
ORDER BY service
