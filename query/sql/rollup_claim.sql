INSERT INTO tracehouse_rollup_windows (Job, WindowStart, WindowEnd, Owner, ClaimedAt, State)
SELECT {job:String}, fromUnixTimestamp64Milli({start_ms:Int64}), fromUnixTimestamp64Milli({end_ms:Int64}),
       {owner:String}, now64(6), {state:String}
