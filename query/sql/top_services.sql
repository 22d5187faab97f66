SELECT
    toString(ServiceName) AS service,
    sumIf(Calls, IsEntry = 1) AS calls,
    sumIf(Errors, IsEntry = 1) AS errors,
    sumIf(DurationSumNs, IsEntry = 1) AS total_ns,
    quantilesDDMergeIf(0.01, 0.5, 0.95, 0.99)(DurationSketch, IsEntry = 1) AS quantiles
FROM /*WINDOW_RED*/
WHERE 1
GROUP BY ServiceName
