INSERT INTO tracehouse_rollup_windows (Job, WindowStart, WindowEnd, Attempt, Owner, ClaimedAt, State)
SELECT {job:String}, fromUnixTimestamp64Milli({start_ms:Int64}), fromUnixTimestamp64Milli({end_ms:Int64}),
       {attempt:UInt32}, {owner:String}, now64(6), {state:String}
