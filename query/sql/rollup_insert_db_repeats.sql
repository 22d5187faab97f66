INSERT INTO tracehouse_db_repeats
    (Minute, TraceId, ParentSpanId, ServiceName, ParentOperation, DbSystem, Statement, Executions)
/*DB_REPEAT_RUNS*/
