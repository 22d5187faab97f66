-- Percentiles of all spans of the given services (those without entry spans) over [start_s, end_s).
SELECT toString(ServiceName) AS service, quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles
FROM tracehouse_red_1m
WHERE Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({end_s:Int64})
  AND ServiceName IN {services:Array(String)}
GROUP BY ServiceName
