-- Edges over [start_s, end_s) from the rollup alone.
/*EDGES_SELECT*/
FROM (
    /*EDGES_ROLLUP_ROWS*/
)
GROUP BY Source, SourceKind, Target, TargetKind
