SELECT
    toString(ServiceName) AS service,
    toString(SpanName) AS operation,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    sum(DurationSumNs) AS total_ns,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles
FROM /*WINDOW_RED*/
WHERE 1
GROUP BY ServiceName, SpanName
