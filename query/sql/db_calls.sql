-- Database calls per normalized statement over [start_s, end_s); filters appended by the reader.
SELECT
    toString(ServiceName) AS service,
    toString(DbSystem) AS db_system,
    toString(DbName) AS db_name,
    Statement AS statement,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    sum(DurationSumNs) AS total_ns,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles,
    groupUniqArrayMerge(5)(ExampleTraceIds) AS example_trace_ids
FROM /*WINDOW_DB_CALLS*/
WHERE 1
  /*FILTERS*/
GROUP BY ServiceName, DbSystem, DbName, Statement
ORDER BY total_ns DESC, statement
LIMIT {limit:UInt32}
