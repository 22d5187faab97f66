"""The query service: `/api/v1/...` over spans in ClickHouse (`app.create_app`).

Derived data is computed inside ClickHouse from `otel_traces`, so spans written by the official
OpenTelemetry Collector give the same answers (schemas/101-104):

- `tracehouse_red_1m`: calls, errors, duration sketch and histogram per service, operation and span
  kind per minute (materialized view);
- `tracehouse_db_calls_1m`: database calls per normalized statement per minute (materialized view);
- `tracehouse_service_edges_1m`: edges per minute: service -> service (and broker -> consumer, and
  service -> uninstrumented peer) from `tracehouse_span_links`, which the edge rollup job
  (`rollup.EdgeRollup`) fills exactly once per pair over closed windows; service -> database and
  service -> broker straight from CLIENT/PRODUCER spans (materialized view);
- `tracehouse_trace_summaries`: one row per trace for search results (materialized view).

Routes (`routers/`) call readers (`graphs.py`, `rows.fetch`) that run the SQL in `sql/`; analysis
(`analysis/`: cycles, SCCs, percentiles, ranking, statement normalization, N+1) is pure functions.

Settings (`settings.QuerySettings`, `[query]` in the config file, or TRACEHOUSE_<FIELD>):
lateness_s (300), rollup_interval_s (60), rollup_enabled, rollup_max_window_s, max_pair_gap_s,
exact_window_s, raw_tail_max_spans, default_window_s, max_cycles, cycle_trace_limit, n_plus_one_min.
"""
