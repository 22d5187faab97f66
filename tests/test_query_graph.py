"""Dependency graph, cycles, late spans, N+1 and TOP-N on a real store, with spans inserted into
otel_traces by SQL the way the OpenTelemetry Collector's ClickHouse exporter writes them."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from tests.support import free_port
from tests.test_query_support import Span, ago, api, insert_spans, new_trace_id
from tracehouse import storage
from tracehouse.query.analysis.sqlnorm import normalize_statement
from tracehouse.query.app import create_app
from tracehouse.query.rollup import EdgeRollup, watermark_ms
from tracehouse.query.settings import QuerySettings
from tracehouse.settings import StoreSettings


def call(parent: Span, service: str, operation: str, *, offset_ms: float = 1, duration_ms: float = 10,
         error: bool = False) -> tuple[Span, Span]:
    """A CLIENT span in the parent's service and the SERVER span it causes in `service`."""
    client = parent.child(parent.service, f"call {service}", kind="Client", offset_ms=offset_ms,
                          duration_ms=duration_ms + 1)
    server = client.child(service, operation, offset_ms=0.5, duration_ms=duration_ms, error=error)
    return client, server


def cycle_trace(start: datetime) -> list[Span]:
    """A -> B -> C -> A (then A calls a database)."""
    a = Span(new_trace_id(), "A", "GET /a", start, 100)
    ab, b = call(a, "B", "GET /b", duration_ms=80)
    bc, c = call(b, "C", "GET /c", duration_ms=60)
    ca, a2 = call(c, "A", "GET /a/internal", duration_ms=40)
    db = a2.child("A", "SELECT", kind="Client", offset_ms=1, duration_ms=5,
                  attributes={"db.system": "mysql", "db.name": "shop", "db.statement": "SELECT 1"})
    return [a, ab, b, bc, c, ca, a2, db]


def fan_out_trace(start: datetime) -> list[Span]:
    """G -> A and G -> C -> A: A is entered twice, but never re-entered."""
    g = Span(new_trace_id(), "G", "GET /g", start, 100)
    ga, a = call(g, "A", "GET /a", duration_ms=20)
    gc, c = call(g, "C", "GET /c", offset_ms=30, duration_ms=50)
    ca, a2 = call(c, "A", "GET /a", duration_ms=20)
    return [g, ga, a, gc, c, ca, a2]


def test_cycles_and_per_trace_reentries(clickhouse: storage.Client, session_store_dsn: str) -> None:
    spans: list[Span] = []
    for i in range(4):
        spans += cycle_trace(ago(500 - i))
    for i in range(3):
        spans += fan_out_trace(ago(400 - i))
    insert_spans(clickhouse, spans)
    with api(session_store_dsn, clickhouse) as http:
        graph = http.get("/api/v1/dependencies", params={"start": _ms(ago(900))}).json()
        report = http.get("/api/v1/dependencies/cycles", params={"start": _ms(ago(900))}).json()
        dot = http.get("/api/v1/dependencies", params={"start": _ms(ago(900)), "format": "dot"})
    edges = {(e["source"], e["target"]): e["calls"] for e in graph["edges"]}
    assert edges == {("A", "B"): 4, ("B", "C"): 4, ("C", "A"): 7, ("G", "A"): 3, ("G", "C"): 3,
                     ("A", "mysql/shop"): 4}
    assert [c["services"] for c in graph["cycles"]] == [["A", "B", "C"]]
    [cycle] = report["cycles"]
    assert [(e["source"], e["target"], e["calls"]) for e in cycle["edges"]] == [("A", "B", 4), ("B", "C", 4),
                                                                                ("C", "A", 7)]
    assert all(len(e["example_trace_ids"]) >= 1 for e in cycle["edges"])
    assert report["strongly_connected_components"] == [["A", "B", "C"]]
    assert [(t["path"], t["traces"]) for t in report["trace_cycles"]] == [(["A", "B", "C", "A"], 4)]
    cycle_trace_ids = {s.trace_id for s in spans if s.service == "B"}
    assert set(report["trace_cycles"][0]["example_trace_ids"]) == cycle_trace_ids
    assert dot.status_code == 200 and dot.headers["content-type"].startswith("text/vnd.graphviz")
    assert '"C" -> "A" [label="7 calls"];' in dot.text


def test_late_child_is_counted_exactly_once(clickhouse: storage.Client, session_store_dsn: str) -> None:
    """The child span reaches the store two minutes after its parent; the rollup job runs before,
    between and after; the API answers one call at every point."""
    settings = QuerySettings(rollup_enabled=False, lateness_s=300, rollup_interval_s=60)
    base = ago(1800).replace(second=0, microsecond=0)
    t0 = base.timestamp()
    parent = Span(new_trace_id(), "frontend", "GET /", base + timedelta(seconds=10), 5000)
    client_span, child = call(parent, "orders", "GET /orders", duration_ms=2000)
    job = EdgeRollup(lambda: clickhouse, settings)

    def calls() -> int:
        with api(session_store_dsn, clickhouse, settings) as http:
            body = http.get("/api/v1/dependencies").json()
        assert body["source"] == "rollup"
        return sum(e["calls"] for e in body["edges"] if (e["source"], e["target"]) == ("frontend", "orders"))

    insert_spans(clickhouse, [parent, client_span])
    assert job.run_once(now_s=t0 + 16, client=clickhouse) == 0
    assert calls() == 0
    insert_spans(clickhouse, [child])  # two minutes later
    assert calls() == 1  # not rolled up yet: answered from the raw tail
    for now_s in (t0 + 136, t0 + 300, t0 + 400, t0 + 420, t0 + 900, t0 + 1500):
        job.run_once(now_s=now_s, client=clickhouse)
        assert calls() == 1, now_s
    assert watermark_ms(clickhouse) == (t0 + 1200) * 1000
    assert clickhouse.command("SELECT count() FROM tracehouse_span_links") == 1


def test_parent_arriving_after_its_child_is_counted_once(clickhouse: storage.Client) -> None:
    settings = QuerySettings(rollup_enabled=False, lateness_s=300)
    base = ago(1800).replace(second=0, microsecond=0)
    parent = Span(new_trace_id(), "frontend", "GET /", base + timedelta(seconds=30), 1000)
    client_span, child = call(parent, "orders", "GET /orders", duration_ms=500)
    job = EdgeRollup(lambda: clickhouse, settings)
    insert_spans(clickhouse, [child])
    job.run_once(now_s=base.timestamp() + 60, client=clickhouse)
    insert_spans(clickhouse, [parent, client_span])
    job.run_once(now_s=base.timestamp() + 3600, client=clickhouse)
    job.run_once(now_s=base.timestamp() + 3700, client=clickhouse)
    assert clickhouse.command("SELECT count() FROM tracehouse_span_links") == 1


def test_concurrent_rollup_jobs_insert_each_window_once(clickhouse: storage.Client, session_store_dsn: str) -> None:
    settings = QuerySettings(rollup_enabled=False, lateness_s=0, rollup_max_window_s=60)
    spans: list[Span] = []
    for i in range(20):
        spans += cycle_trace(ago(1200 - i * 30))
    insert_spans(clickhouse, spans)
    dsn = _dsn(session_store_dsn, clickhouse)
    errors: list[BaseException] = []

    def run(owner: str) -> None:
        client = storage.connect(dsn)
        try:
            EdgeRollup(lambda: client, settings, owner=owner).run_once(client=client)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(f"owner-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    EdgeRollup(lambda: clickhouse, settings, owner="last").run_once(client=clickhouse)
    hops = clickhouse.command("SELECT count() FROM tracehouse_span_links")
    assert hops == 20 * 3  # A->B, B->C, C->A in each trace


def test_n_plus_one_and_db_normalization(clickhouse: storage.Client, session_store_dsn: str) -> None:
    spans: list[Span] = []
    for t in range(3):
        root = Span(new_trace_id(), "orders", "GET /orders", ago(300 - t), 200)
        spans.append(root)
        for i in range(7):
            spans.append(root.child("orders", "SELECT", kind="Client", offset_ms=1 + i * 10, duration_ms=2,
                                    attributes={"db.system": "postgresql", "db.name": "shop",
                                                "db.statement": f"SELECT * FROM items WHERE order_id = {i + 100 * t}"}))
        spans.append(root.child("orders", "INSERT", kind="Client", offset_ms=150, duration_ms=2,
                                attributes={"db.system": "postgresql", "db.name": "shop",
                                            "db.statement": "INSERT INTO log VALUES (1, 'x'), (2, 'y')"}))
    insert_spans(clickhouse, spans)
    with api(session_store_dsn, clickhouse) as http:
        report = http.get("/api/v1/db/n-plus-one").json()
        strict = http.get("/api/v1/db/n-plus-one", params={"k": 8}).json()
        calls = http.get("/api/v1/db/calls", params={"db_system": "postgresql"}).json()
        top = http.get("/api/v1/top", params={"entity": "db_statement", "by": "calls", "n": 1}).json()
    [finding] = report["findings"]
    assert finding["statement"] == "SELECT * FROM items WHERE order_id = ?"
    assert (finding["service"], finding["parent_operation"], finding["traces"]) == ("orders", "GET /orders", 3)
    assert finding["executions_per_trace_max"] == 7
    assert strict["findings"] == []
    statements = {s["statement"]: s["calls"] for s in calls["statements"]}
    assert statements == {"SELECT * FROM items WHERE order_id = ?": 21, "INSERT INTO log VALUES (?)": 3}
    assert [i["name"] for i in top["items"]] == ["SELECT * FROM items WHERE order_id = ?"]


@pytest.mark.parametrize("statement", [
    "SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x'",
    "INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b')",
    "UPDATE accounts SET balance = balance - 10.5 WHERE id = 7",
    "select   a\n  from b where c = 'it''s'",
])
def test_sql_and_python_normalization_agree(clickhouse: storage.Client, statement: str) -> None:
    span = Span(new_trace_id(), "svc", "q", ago(60), 1, kind="Client",
                attributes={"db.system": "postgresql", "db.statement": statement})
    insert_spans(clickhouse, [span])
    stored = clickhouse.command("SELECT Statement FROM tracehouse_db_calls_1m")
    assert stored == normalize_statement(statement, "postgresql")


def test_messaging_calls_go_through_the_broker(clickhouse: storage.Client, session_store_dsn: str) -> None:
    producer_root = Span(new_trace_id(), "shop", "POST /order", ago(120), 50)
    publish = producer_root.child("shop", "orders publish", kind="Producer", duration_ms=3,
                                  attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "orders"})
    consume = publish.child("billing", "orders process", kind="Consumer", duration_ms=20)
    insert_spans(clickhouse, [producer_root, publish, consume])
    with api(session_store_dsn, clickhouse) as http:
        body = http.get("/api/v1/dependencies", params={"start": _ms(ago(600))}).json()
    assert {(e["source"], e["target"]) for e in body["edges"]} == {("shop", "rabbitmq/orders"),
                                                                   ("rabbitmq/orders", "billing")}
    assert {n["id"]: n["kind"] for n in body["nodes"]}["rabbitmq/orders"] == "messaging"


def test_top_ranks_services_operations_and_edges(clickhouse: storage.Client, session_store_dsn: str) -> None:
    spans: list[Span] = []
    for i in range(6):
        root = Span(new_trace_id(), "web", "GET /", ago(300 - i), 100)
        c1, api_span = call(root, "api", "GET /api", duration_ms=50, error=i < 3)
        c2, auth = call(root, "auth", "POST /login", duration_ms=5 + i)
        spans += [root, c1, api_span, c2, auth]
    insert_spans(clickhouse, spans)
    with api(session_store_dsn, clickhouse) as http:
        by_errors = http.get("/api/v1/top", params={"by": "error_rate", "entity": "service", "n": 1}).json()
        by_p99 = http.get("/api/v1/top", params={"by": "p99", "entity": "operation", "n": 2}).json()
        edges = http.get("/api/v1/top", params={"by": "total_time", "entity": "edge", "n": 5}).json()
        ops = http.get("/api/v1/services/api/operations").json()
    assert [(i["name"], i["value"]) for i in by_errors["items"]] == [("api", 0.5)]
    assert [i["name"] for i in by_p99["items"]] == ["web: GET /", "web: call api"]
    assert [i["name"] for i in edges["items"]] == ["web -> api", "web -> auth"]
    assert ops["operations"][0]["name"] == "GET /api" and ops["operations"][0]["error_rate"] == 0.5


def test_store_down_answers_503() -> None:
    app = create_app(StoreSettings(store=f"http://127.0.0.1:{free_port()}/default"), {},
                     settings=QuerySettings(rollup_enabled=False))
    from fastapi.testclient import TestClient

    with TestClient(app) as http:
        response = http.get("/api/v1/services")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("store unavailable")


def _dsn(store_dsn: str, client: storage.Client) -> str:
    from tests.test_query_support import dsn_with_database

    return dsn_with_database(store_dsn, storage.database_of(client))


def _ms(value: datetime) -> str:
    return str(int(value.timestamp() * 1000))


def test_calls_to_uninstrumented_peers_are_external_nodes(clickhouse: storage.Client, session_store_dsn: str) -> None:
    spans: list[Span] = []
    for i in range(3):
        root = Span(new_trace_id(), "checkout", "POST /pay", ago(1500 - i), 100)
        stripe = root.child("checkout", "POST", kind="Client", offset_ms=5, duration_ms=40, error=i == 0,
                            attributes={"server.address": "api.stripe.com", "http.request.method": "POST"})
        traced = root.child("checkout", "GET", kind="Client", offset_ms=50, duration_ms=20,
                            attributes={"server.address": "inventory.internal"})
        inventory = traced.child("inventory", "GET /stock", duration_ms=15)
        spans += [root, stripe, traced, inventory]
    insert_spans(clickhouse, spans)
    settings = QuerySettings(rollup_enabled=False)
    with api(session_store_dsn, clickhouse, settings) as http:
        raw = http.get("/api/v1/dependencies", params={"start": _ms(ago(1800)), "end": _ms(ago(1000))}).json()
        EdgeRollup(lambda: clickhouse, settings).run_once(client=clickhouse)
        rolled = http.get("/api/v1/dependencies").json()
    for body in (raw, rolled):
        edges = {(e["source"], e["target"]): (e["calls"], e["errors"]) for e in body["edges"]}
        assert edges == {("checkout", "api.stripe.com"): (3, 1), ("checkout", "inventory"): (3, 0)}
        assert {n["id"]: n["kind"] for n in body["nodes"]} == {"checkout": "service", "inventory": "service",
                                                               "api.stripe.com": "external"}
    assert raw["source"] == "raw" and rolled["source"] == "rollup"


def test_edges_past_a_busy_rollup_say_where_they_are_complete(clickhouse: storage.Client,
                                                             session_store_dsn: str) -> None:
    spans: list[Span] = []
    for i in range(5):
        spans += cycle_trace(ago(120 - i))
    insert_spans(clickhouse, spans)
    settings = QuerySettings(rollup_enabled=False, raw_tail_max_spans=0)
    with api(session_store_dsn, clickhouse, settings) as http:
        body = http.get("/api/v1/dependencies").json()
    assert body["complete_until"] is not None
    assert {(e["source"], e["target"]) for e in body["edges"]} == {("A", "mysql/shop")}  # from the span itself


def test_db_endpoints_from_the_rollup_match_raw_spans(clickhouse: storage.Client, session_store_dsn: str) -> None:
    spans: list[Span] = []
    for t in range(4):
        root = Span(new_trace_id(), "orders", "GET /orders", ago(1500 - t), 200)
        internal = root.child("orders", "load items", kind="Internal", offset_ms=5, duration_ms=100)
        spans += [root, internal]
        for i in range(3):
            spans.append(internal.child("orders", "SELECT", kind="Client", offset_ms=1 + i * 10, duration_ms=2,
                                        attributes={"db.system": "mysql", "db.statement": f"SELECT * FROM t WHERE id = {i}"}))
        job = Span(new_trace_id(), "orders", "nightly", ago(1400 - t), 50, kind="Internal")
        spans += [job, job.child("orders", "SELECT", kind="Client", duration_ms=2,
                                 attributes={"db.system": "mysql", "db.statement": "SELECT * FROM t WHERE id = 9"})]
    insert_spans(clickhouse, spans)
    settings = QuerySettings(rollup_enabled=False, raw_tail_max_spans=0)
    EdgeRollup(lambda: clickhouse, settings).run_once(client=clickhouse)
    with api(session_store_dsn, clickhouse, settings) as http:
        rolled = http.get("/api/v1/db/calls", params={"db_system": "mysql"}).json()
        raw = http.get("/api/v1/db/calls", params={"db_system": "mysql", "start": _ms(ago(1800)),
                                                   "end": _ms(ago(1000))}).json()
        repeats_rolled = http.get("/api/v1/db/n-plus-one", params={"k": 3}).json()
        repeats_raw = http.get("/api/v1/db/n-plus-one", params={"k": 3, "start": _ms(ago(1800)),
                                                                "end": _ms(ago(1000))}).json()
    for body in (rolled, raw):
        [statement] = body["statements"]
        assert statement["calls"] == 16
        assert statement["endpoints"] == [{"service": "orders", "operation": "GET /orders", "calls": 12, "share": 0.75}]
    for body in (repeats_rolled, repeats_raw):
        [finding] = body["findings"]
        assert (finding["parent_operation"], finding["traces"], finding["executions_per_trace_max"]) == \
            ("load items", 4, 3)


def test_busy_graph_reads_the_jobs_snapshot_of_the_tail(clickhouse: storage.Client, session_store_dsn: str) -> None:
    """Past a busy rollup the graph comes from the job's newest snapshot of unfinalized edges:
    the same edges, counted once, complete up to the snapshot."""
    older: list[Span] = []
    for i in range(3):
        older += cycle_trace(ago(1500 - i))
    recent: list[Span] = []
    for i in range(2):
        recent += cycle_trace(ago(60 - i))
    insert_spans(clickhouse, older + recent)
    settings = QuerySettings(rollup_enabled=False, raw_tail_max_spans=0)
    job = EdgeRollup(lambda: clickhouse, settings)
    job.run_once(client=clickhouse)
    with api(session_store_dsn, clickhouse, settings) as http:
        body = http.get("/api/v1/dependencies").json()
        job.run_once(client=clickhouse)  # a newer snapshot replaces the older one
        again = http.get("/api/v1/dependencies").json()
    for answer in (body, again):
        edges = {(e["source"], e["target"]): e["calls"] for e in answer["edges"]}
        assert edges == {("A", "B"): 5, ("B", "C"): 5, ("C", "A"): 5, ("A", "mysql/shop"): 5}
        assert answer["complete_until"] is not None
