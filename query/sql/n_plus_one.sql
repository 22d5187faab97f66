-- Parent spans that ran one normalized statement at least {min_executions} times over a window:
-- the rollup's minutes in [start_s, end_s) plus the parents past its watermark (or, for small
-- windows, everything) from raw spans.
SELECT trace_id, parent_span_id, service, parent_operation, db_system, statement, executions
FROM (
    SELECT TraceId AS trace_id, ParentSpanId AS parent_span_id, toString(ServiceName) AS service,
           toString(ParentOperation) AS parent_operation, toString(DbSystem) AS db_system,
           Statement AS statement, Executions AS executions
    FROM tracehouse_db_repeats
    WHERE Minute >= toDateTime({start_s:Int64}) AND Minute < toDateTime({end_s:Int64})
      AND Executions >= {min_executions:UInt32}
      /*ROLLUP_FILTERS*/
    UNION ALL
    SELECT TraceId AS trace_id, ParentSpanId AS parent_span_id, service, parent_operation, db_system,
           statement, executions
    FROM (/*DB_REPEAT_RUNS*/)
)
ORDER BY executions DESC, trace_id, parent_span_id
LIMIT {max_runs:UInt32}
