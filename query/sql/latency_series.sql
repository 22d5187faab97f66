SELECT
    toUnixTimestamp(toStartOfInterval(Minute, toIntervalSecond({step_s:UInt32}))) AS bucket_s,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles
FROM tracehouse_red_1m
WHERE Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({end_s:Int64})
  /*FILTERS*/
GROUP BY bucket_s
ORDER BY bucket_s
