-- Percentiles of all spans of the given services (those without entry spans) over [start_s, end_s).
SELECT toString(ServiceName) AS service, quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles
FROM /*WINDOW_RED*/
WHERE ServiceName IN {services:Array(String)}
GROUP BY ServiceName
