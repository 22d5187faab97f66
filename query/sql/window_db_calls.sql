(
    SELECT * FROM tracehouse_db_calls_10m
    WHERE Minute >= toDateTime({mid_start_s:Int64}) AND Minute < toDateTime({mid_end_s:Int64})
    UNION ALL
    SELECT * FROM tracehouse_db_calls_1m
    WHERE (Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({mid_start_s:Int64}))
       OR (Minute >= toDateTime({mid_end_s:Int64}) AND Minute < toDateTime({end_s:Int64}))
)
