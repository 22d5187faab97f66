-- Endpoints issuing each statement over a window: the rollup's minutes in [start_s, end_s) plus the
-- calls past its watermark (or, for small windows, everything) from raw spans.
SELECT service, statement, endpoint, sum(calls) AS calls
FROM (
    SELECT toString(ServiceName) AS service, Statement AS statement, toString(Endpoint) AS endpoint, Calls AS calls
    FROM tracehouse_db_endpoints_1m
    WHERE Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({end_s:Int64})
      /*ROLLUP_FILTERS*/
    UNION ALL
    SELECT service, statement, endpoint, toUInt64(count()) AS calls
    FROM (/*DB_ENDPOINT_PAIRS*/)
    GROUP BY service, statement, endpoint
)
GROUP BY service, statement, endpoint
