-- Traces whose service hops make a re-entry possible: some service is both entered and left, by
-- hops that lie on a cycle of the service graph (every hop of a re-entry A -> ... -> A does, and
-- there is a hop into A and one out of A). Checked exactly afterwards.
SELECT TraceId AS trace_id
FROM (
    SELECT TraceId, toString(Source) AS Source, toString(Target) AS Target
    FROM tracehouse_span_links
    WHERE Minute >= toDateTime({links_start_s:Int64}) AND Minute < toDateTime({links_end_s:Int64})
      AND SourceKind = 'service' AND TargetKind = 'service'
      AND (toString(Source), toString(Target)) IN {cycle_edges:Array(Tuple(String, String))}
    UNION ALL
    SELECT TraceId, Source, Target FROM (/*SPAN_PAIRS*/)
    WHERE SourceKind = 'service' AND TargetKind = 'service'
      AND (Source, Target) IN {cycle_edges:Array(Tuple(String, String))}
)
GROUP BY TraceId
HAVING hasAny(groupUniqArray(Source), groupUniqArray(Target))
ORDER BY trace_id
LIMIT {limit:UInt32}
