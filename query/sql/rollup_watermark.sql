-- The end of the last window the job has finished (0 when it has not finished any).
SELECT toUnixTimestamp64Milli(max(WindowEnd)) AS end_ms, count() AS windows
FROM tracehouse_rollup_windows
WHERE Job = {job:String} AND State = 'done'
