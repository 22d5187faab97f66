"""The query API in-process on a real store: spans inserted into otel_traces as the OpenTelemetry
Collector's exporter writes them; answers checked against what was seeded."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tests.test_query_support import Span, ago, api, insert_spans, new_trace_id
from tracehouse import storage
from tracehouse.query.rollup import EdgeRollup
from tracehouse.query.settings import QuerySettings


def chain_trace(start, error_at_c: bool = False) -> list[Span]:
    """frontend -> orders -> payments, with a database call in orders."""
    trace = new_trace_id()
    root = Span(trace, "frontend", "GET /checkout", start, 100)
    call_orders = root.child("frontend", "POST orders", kind="Client", offset_ms=5, duration_ms=80)
    orders = call_orders.child("orders", "POST /orders", offset_ms=1, duration_ms=78)
    db = orders.child("orders", "SELECT", kind="Client", offset_ms=2, duration_ms=3,
                      attributes={"db.system": "postgresql", "db.name": "shop",
                                  "db.statement": "SELECT * FROM orders WHERE id = 42"})
    call_pay = orders.child("orders", "POST payments", kind="Client", offset_ms=10, duration_ms=50)
    pay = call_pay.child("payments", "POST /charge", offset_ms=1, duration_ms=48, error=error_at_c)
    return [root, call_orders, orders, db, call_pay, pay]


@pytest.fixture
def seeded(clickhouse: storage.Client) -> storage.Client:
    spans: list[Span] = []
    for i in range(10):
        spans += chain_trace(ago(600 - i), error_at_c=(i < 3))
    insert_spans(clickhouse, spans)
    return clickhouse


def test_services_report_calls_errors_and_latency(seeded: storage.Client, session_store_dsn: str) -> None:
    with api(session_store_dsn, seeded) as http:
        response = http.get("/api/v1/services")
    assert response.status_code == 200, response.text
    services = {s["name"]: s for s in response.json()["services"]}
    assert set(services) == {"frontend", "orders", "payments"}
    assert services["payments"]["calls"] == 10
    assert services["payments"]["errors"] == 3
    assert services["payments"]["error_rate"] == pytest.approx(0.3)
    assert services["frontend"]["error_rate"] == 0
    assert services["orders"]["operations"] == 3
    assert services["frontend"]["p50_ms"] == pytest.approx(100, rel=0.011)


def test_small_window_graph_is_exact_from_raw_spans(seeded: storage.Client, session_store_dsn: str) -> None:
    with api(session_store_dsn, seeded) as http:
        response = http.get("/api/v1/dependencies", params={"start": _ms(ago(890)), "end": _ms(ago(0))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "raw"
    edges = {(e["source"], e["target"]): e for e in body["edges"]}
    assert set(edges) == {("frontend", "orders"), ("orders", "payments"), ("orders", "postgresql/shop")}
    assert edges[("orders", "payments")]["calls"] == 10
    assert edges[("orders", "payments")]["errors"] == 3
    assert edges[("orders", "payments")]["error_rate"] == pytest.approx(0.3)
    kinds = {n["id"]: n["kind"] for n in body["nodes"]}
    assert kinds == {"frontend": "service", "orders": "service", "payments": "service",
                     "postgresql/shop": "database"}
    assert body["cycles"] == []


def test_rollup_graph_equals_raw_graph(seeded: storage.Client, session_store_dsn: str) -> None:
    settings = QuerySettings(rollup_enabled=False, lateness_s=0)
    EdgeRollup(lambda: seeded, settings).run_once(client=seeded)
    with api(session_store_dsn, seeded, settings) as http:
        rolled = http.get("/api/v1/dependencies").json()
        raw = http.get("/api/v1/dependencies", params={"start": _ms(ago(890))}).json()
    assert (rolled["source"], raw["source"]) == ("rollup", "raw")
    assert [(e["source"], e["target"], e["calls"], e["errors"]) for e in rolled["edges"]] == \
        [(e["source"], e["target"], e["calls"], e["errors"]) for e in raw["edges"]]


def test_percentiles_match_numpy_within_sketch_accuracy(clickhouse: storage.Client, session_store_dsn: str) -> None:
    rng = np.random.default_rng(7)
    durations = rng.lognormal(mean=3.0, sigma=1.0, size=2000)
    base = ago(1200)
    spans = [Span(new_trace_id(), "svc", "GET /x", base + timedelta(milliseconds=i * 100), float(d))
             for i, d in enumerate(durations)]
    insert_spans(clickhouse, spans)
    with api(session_store_dsn, clickhouse) as http:
        body = http.get("/api/v1/latency", params={"service": "svc"}).json()
    assert body["count"] == 2000
    exact = np.sort(np.round(durations * 1e6) / 1e6)
    for key, q in (("p50_ms", 0.5), ("p75_ms", 0.75), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        low = np.quantile(exact, q, method="lower") * (1 - body["relative_accuracy"])
        high = np.quantile(exact, q, method="higher") * (1 + body["relative_accuracy"])
        assert low <= body[key] <= high, (key, body[key], low, high)
    assert body["min_ms"] == pytest.approx(exact[0], abs=0.0005)
    assert body["max_ms"] == pytest.approx(exact[-1], abs=0.0005)
    assert sum(b["count"] for b in body["histogram"]) == 2000
    assert sum(p["calls"] for p in body["series"]) == 2000


def test_trace_by_id_and_search(seeded: storage.Client, session_store_dsn: str) -> None:
    with api(session_store_dsn, seeded) as http:
        found = http.get("/api/v1/traces", params={"service": "payments", "status": "error"}).json()["traces"]
        assert len(found) == 3
        assert all(t["root_service"] == "frontend" and t["span_count"] == 6 and t["error_count"] == 1
                   for t in found)
        assert [t["start_unix_ms"] for t in found] == sorted((t["start_unix_ms"] for t in found), reverse=True)
        slow = http.get("/api/v1/traces", params={"service": "orders", "min_duration_ms": 77}).json()["traces"]
        assert len(slow) == 10
        none = http.get("/api/v1/traces", params={"service": "orders", "min_duration_ms": 79}).json()["traces"]
        assert none == []
        by_attr = http.get("/api/v1/traces", params={"attr": "db.name:shop"}).json()["traces"]
        assert len(by_attr) == 10
        trace = http.get(f"/api/v1/traces/{found[0]['trace_id']}").json()
        assert trace["span_count"] == 6
        assert {s["service"] for s in trace["spans"]} == {"frontend", "orders", "payments"}
        assert http.get("/api/v1/traces/" + "ab" * 16).status_code == 404
        bad = http.get("/api/v1/traces/not-a-trace-id")
        assert bad.status_code == 400 and "trace_id" in bad.json()["detail"]


def test_db_calls_normalize_and_name_endpoints(seeded: storage.Client, session_store_dsn: str) -> None:
    with api(session_store_dsn, seeded) as http:
        body = http.get("/api/v1/db/calls", params={"service": "orders"}).json()
    [statement] = body["statements"]
    assert statement["statement"] == "SELECT * FROM orders WHERE id = ?"
    assert statement["calls"] == 10 and statement["db_system"] == "postgresql" and statement["db_name"] == "shop"
    assert statement["endpoints"] == [{"service": "orders", "operation": "POST /orders", "calls": 10, "share": 1.0}]


def test_bad_parameters_name_the_parameter(clickhouse: storage.Client, session_store_dsn: str) -> None:
    with api(session_store_dsn, clickhouse) as http:
        response = http.get("/api/v1/services", params={"start": "yesterday"})
        assert response.status_code == 400 and "start" in response.json()["detail"]
        response = http.get("/api/v1/services", params={"start": "2030-01-01T00:00:00Z", "end": "2029-01-01T00:00:00Z"})
        assert response.status_code == 400 and "start" in response.json()["detail"]
        response = http.get("/api/v1/top", params={"by": "nonsense"})
        assert response.status_code == 422 and "by" in str(response.json()["detail"])


def _ms(value) -> str:
    return str(int(value.timestamp() * 1000))
