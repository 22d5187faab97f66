INSERT INTO tracehouse_edges_recent
    (RunId, WatermarkMs, Minute, Source, SourceKind, Target, TargetKind, Calls, Errors, DurationSumNs,
     DurationSketch, ExampleTraceIds)
SELECT {run_id:UInt64}, {watermark_ms:Int64}, Minute, Source, SourceKind, Target, TargetKind,
       toUInt64(count()), toUInt64(sum(IsError)), sum(DurationNs),
       quantilesDDState(0.01, 0.5)(DurationNs / 1e6), groupUniqArrayState(5)(TraceId)
FROM (/*SPAN_PAIRS*/)
GROUP BY Minute, Source, SourceKind, Target, TargetKind
UNION ALL
-- One marker row per run (outside every window), so that an empty snapshot is still a snapshot.
SELECT {run_id:UInt64}, {watermark_ms:Int64}, toDateTime(0), '', '', '', '', toUInt64(0), toUInt64(0), toUInt64(0),
       quantilesDDState(0.01, 0.5)(toFloat64(0)), groupUniqArrayState(5)('')
