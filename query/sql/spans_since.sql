-- How many spans arrived since a time, from the RED rollup (cheap): decides whether the raw tail
-- of the edge graph is small enough to join at request time.
SELECT sum(Calls) AS spans
FROM tracehouse_red_1m
WHERE Minute >= toDateTime({since_s:Int64}) AND Minute < toDateTime({end_s:Int64})
