-- Of the live claims on a window start, the earliest wins; a claim never marked done goes stale.
SELECT Owner
FROM tracehouse_rollup_windows
WHERE Job = {job:String}
  AND WindowStart = fromUnixTimestamp64Milli({start_ms:Int64})
  AND State = 'claimed'
  AND ClaimedAt > now64(6) - toIntervalSecond({stale_s:UInt32})
ORDER BY ClaimedAt, Owner
LIMIT 1
