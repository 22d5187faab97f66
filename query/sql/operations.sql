-- Per operation and span kind of one service over [start_s, end_s).
SELECT
    toString(SpanName) AS operation,
    toString(SpanKind) AS span_kind,
    sum(Calls) AS calls,
    sum(Errors) AS errors,
    quantilesDDMerge(0.01, 0.5, 0.95, 0.99)(DurationSketch) AS quantiles,
    sum(DurationSumNs) AS total_ns
FROM /*WINDOW_RED*/
WHERE ServiceName = {service:String}
GROUP BY SpanName, SpanKind
ORDER BY operation, span_kind
