-- Traces whose service hops make a re-entry possible, checked exactly afterwards. A re-entry
-- A -> B -> ... -> A only takes hops that lie on a cycle of the service graph, and its first hop
-- A -> B has a target that some hop leaves (B -> ...) and a source that some hop enters (... -> A).
SELECT trace_id
FROM (
    SELECT TraceId AS trace_id, groupUniqArray(Source) AS sources, groupUniqArray(Target) AS targets,
           groupUniqArray((Source, Target)) AS hops
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
)
WHERE arrayExists(hop -> has(sources, hop.2) AND has(targets, hop.1), hops)
ORDER BY trace_id
LIMIT {limit:UInt32}
