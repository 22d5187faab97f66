-- Latency of the selected spans over [start_s, end_s): entry spans of a service (or of every
-- service), or every span of one operation. The filter fragment is appended by the reader.
SELECT
    sum(Calls) AS calls,
    min(DurationMinNs) AS min_ns,
    max(DurationMaxNs) AS max_ns,
    sum(DurationSumNs) AS sum_ns,
    quantilesDDMerge(0.01, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)(DurationSketch) AS quantiles,
    sumMap(DurationHistogram) AS histogram
FROM /*WINDOW_RED*/
WHERE 1
  /*FILTERS*/
