-- Per service over [start_s, end_s): calls, errors and percentiles of its entry spans (SERVER,
-- CONSUMER and roots), operations, instances, versions.
SELECT
    toString(ServiceName) AS service,
    sumIf(Calls, IsEntry = 1) AS entry_calls,
    sumIf(Errors, IsEntry = 1) AS entry_errors,
    quantilesDDMergeIf(0.01, 0.5, 0.95, 0.99)(DurationSketch, IsEntry = 1) AS entry_quantiles,
    sum(Calls) AS span_calls,
    sum(Errors) AS span_errors,
    uniqExact(SpanName) AS operations,
    groupUniqArrayMerge(64)(Instances) AS instances,
    groupUniqArrayMerge(16)(Versions) AS versions
FROM /*WINDOW_RED*/
WHERE 1
GROUP BY ServiceName
ORDER BY service
