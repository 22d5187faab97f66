"""The known topology inserted straight into otel_traces by SQL, as the OpenTelemetry Collector's
ClickHouse exporter writes it, gives exactly the known graph (the same assertions as the
end-to-end test through the collector)."""

from __future__ import annotations

from tests.test_query_support import (
    KNOWN_CYCLES,
    KNOWN_EDGES,
    KNOWN_NODES,
    KNOWN_TRACE_CYCLES,
    ago,
    api,
    graph_summary,
    insert_spans,
    known_topology,
    topology_rows,
)
from tracehouse import storage
from tracehouse.query.rollup import EdgeRollup
from tracehouse.query.settings import QuerySettings


def test_sql_inserted_topology_gives_the_known_graph(clickhouse: storage.Client, session_store_dsn: str) -> None:
    start = ago(120)
    insert_spans(clickhouse, topology_rows(known_topology(), start))
    window = {"start": str(int(start.timestamp() * 1000) - 60_000), "end": str(int(ago(-60).timestamp() * 1000))}
    with api(session_store_dsn, clickhouse) as http:
        exact = http.get("/api/v1/dependencies", params=window).json()
        hour = http.get("/api/v1/dependencies").json()
        cycles = http.get("/api/v1/dependencies/cycles", params=window).json()
        n_plus_one = http.get("/api/v1/db/n-plus-one", params=window).json()
    assert exact["source"] == "raw" and hour["source"] == "rollup"
    for body in (exact, hour):
        edges, nodes = graph_summary(body)
        assert edges == KNOWN_EDGES
        assert nodes == KNOWN_NODES
        assert [c["services"] for c in body["cycles"]] == KNOWN_CYCLES
    payments = next(e for e in exact["edges"] if e["target"] == "payments")
    assert payments["error_rate"] == 0.4
    assert [(c["path"], c["traces"]) for c in cycles["trace_cycles"]] == KNOWN_TRACE_CYCLES
    [finding] = n_plus_one["findings"]
    assert (finding["statement"], finding["parent_operation"], finding["traces"],
            finding["executions_per_trace_max"]) == ("SELECT * FROM items WHERE order_id = ?", "GET /orders/list", 2, 6)


def test_rolled_up_topology_gives_the_same_graph(clickhouse: storage.Client, session_store_dsn: str) -> None:
    start = ago(1500)
    insert_spans(clickhouse, topology_rows(known_topology(), start))
    settings = QuerySettings(rollup_enabled=False, raw_tail_max_spans=0)
    EdgeRollup(lambda: clickhouse, settings).run_once(client=clickhouse)
    with api(session_store_dsn, clickhouse, settings) as http:
        body = http.get("/api/v1/dependencies").json()
        cycles = http.get("/api/v1/dependencies/cycles").json()
    assert body["source"] == "rollup" and body["complete_until"] is None  # nothing past the rollup
    edges, nodes = graph_summary(body)
    assert edges == KNOWN_EDGES
    assert nodes == KNOWN_NODES
    assert [(c["path"], c["traces"]) for c in cycles["trace_cycles"]] == KNOWN_TRACE_CYCLES
