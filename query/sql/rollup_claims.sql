-- The claims and completions recorded for one window start, and whether each claim is stale.
SELECT Attempt AS attempt, Owner AS owner, toString(State) AS state,
       ClaimedAt < now64(6) - toIntervalSecond({stale_s:UInt32}) AS stale
FROM tracehouse_rollup_windows
WHERE Job = {job:String} AND WindowStart = fromUnixTimestamp64Milli({start_ms:Int64})
ORDER BY Attempt, State
