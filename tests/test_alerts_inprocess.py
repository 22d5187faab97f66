"""Alerts against the real store (chDB, or the server in TRACEHOUSE_TEST_CLICKHOUSE_URL), in-process:
the API on a FastAPI app, signals over spans and metrics inserted by SQL as the exporter writes them,
the evaluator with a real webhook receiver, and the lease between two replicas."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support import free_port, wait_for
from tests.test_alerts_receiver import WebhookReceiver
from tracehouse import storage
from tracehouse.query.alerts.channels import SIGNATURE_HEADER, verify
from tracehouse.query.alerts.lease import Lease
from tracehouse.query.alerts.router import router
from tracehouse.query.alerts.service import AlertService
from tracehouse.query.alerts.settings import AlertSettings
from tracehouse.query.store import StorePool

SECRET = "test-secret"


class DatabasePool(StorePool):
    """The store pool on the test's own database."""

    def __init__(self, dsn: str, database: str) -> None:
        super().__init__(dsn)
        self.database = database

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = storage.connect(self.dsn, database=self.database)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client


@pytest.fixture
def database(clickhouse: Client) -> str:
    return storage.database_of(clickhouse)


@pytest.fixture
def api(session_store_dsn: str, database: str) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router)
    app.state.store = DatabasePool(session_store_dsn, database)
    with TestClient(app) as client:
        yield client
    app.state.store.close()


def settings(**overrides: Any) -> AlertSettings:
    values: dict[str, Any] = {"evaluation_interval_s": 0.2, "lease_ttl_s": 3.0, "lease_settle_s": 0.05,
                              "webhook_backoff_s": 0.05, "webhook_max_attempts": 3, "webhook_timeout_s": 2.0,
                              "replica_id": f"replica-{uuid.uuid4().hex[:6]}"}
    values.update(overrides)
    return AlertSettings(**values)


@pytest.fixture
def service_factory(session_store_dsn: str, database: str) -> Iterator[Any]:
    started: list[AlertService] = []

    def make(**overrides: Any) -> AlertService:
        service = AlertService(session_store_dsn, settings(**overrides), database=database)
        started.append(service)
        return service

    yield make
    for service in started:
        service.shutdown()


def now() -> datetime:
    return datetime.now(tz=UTC)


def insert_spans(client: Client, spans: list[dict[str, Any]]) -> None:
    """Rows as the OpenTelemetry Collector's ClickHouse exporter writes them."""
    columns = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName",
               "ResourceAttributes", "SpanAttributes", "Duration", "StatusCode"]
    rows = []
    for s in spans:
        rows.append([s.get("at", now()), s["trace"], s["span"], s.get("parent", ""), s.get("name", "GET /"),
                     s.get("kind", "Server"), s["service"],
                     {"service.instance.id": s.get("instance", "i-1"), "host.name": s.get("host", "h-1")},
                     s.get("attrs", {}), int(s.get("duration_ms", 10) * 1_000_000),
                     "Error" if s.get("error") else "Unset"])
    client.insert("otel_traces", rows, column_names=columns)


def server_spans(service: str, name: str, durations_ms: list[float], *, errors: int = 0,
                 at: datetime | None = None) -> list[dict[str, Any]]:
    return [{"trace": uuid.uuid4().hex, "span": uuid.uuid4().hex[:16], "service": service, "name": name,
             "duration_ms": d, "error": i < errors, "at": at or now()} for i, d in enumerate(durations_ms)]


def call(parent_service: str, child_service: str, trace: str | None = None) -> list[dict[str, Any]]:
    trace = trace or uuid.uuid4().hex
    parent, child = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    return [{"trace": trace, "span": parent, "service": parent_service, "name": f"call {child_service}",
             "kind": "Client", "parent": uuid.uuid4().hex[:16]},
            {"trace": trace, "span": child, "parent": parent, "service": child_service, "name": "handle"}]


def insert_gauge(client: Client, name: str, value: float, *, service: str = "svc", at: datetime | None = None,
                 attributes: dict[str, str] | None = None, resource: dict[str, str] | None = None) -> None:
    client.insert("otel_metrics_gauge", [[resource or {}, service, name, attributes or {}, at or now(), value]],
                  column_names=["ResourceAttributes", "ServiceName", "MetricName", "Attributes", "TimeUnix", "Value"])


def insert_sum(client: Client, name: str, points: list[tuple[datetime, float]], *, service: str = "svc",
               temporality: int = 2) -> None:
    client.insert("otel_metrics_sum", [[service, name, at, value, temporality, True] for at, value in points],
                  column_names=["ServiceName", "MetricName", "TimeUnix", "Value", "AggregationTemporality",
                                "IsMonotonic"])


ISSUE_RULE = {"name": "checkout p99", "target": {"service": "shop", "operation": "GET /checkout"},
              "signal": "p99_ms", "op": ">", "threshold": 250, "window_s": 300, "for_s": 60,
              "severity": "critical", "labels": {}, "channels": ["ops-webhook"], "enabled": True}


def webhook_channel(api: TestClient, url: str, name: str = "ops-webhook", **extra: Any) -> None:
    response = api.post("/api/v1/alerts/channels", json={"name": name, "type": "webhook", "url": url,
                                                        "secret": SECRET, **extra})
    assert response.status_code == 201, response.text


# -- API -------------------------------------------------------------------------------------
def test_rule_crud_and_validation(api: TestClient, session_store_dsn: str, database: str) -> None:
    missing_channel = api.post("/api/v1/alerts/rules", json=ISSUE_RULE)
    assert missing_channel.status_code == 422
    assert missing_channel.json()["detail"][0]["loc"] == ["body", "channels", 0]

    webhook_channel(api, "http://127.0.0.1:9/hook")
    created = api.post("/api/v1/alerts/rules", json=ISSUE_RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["id"] == "checkout-p99" and rule["state"] == "ok" and rule["threshold"] == 250
    assert created.headers["Location"] == "/api/v1/alerts/rules/checkout-p99"

    bad = api.post("/api/v1/alerts/rules", json={**ISSUE_RULE, "op": "=>", "window_s": -1})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", "op"), ("body", "window_s")}

    changed = api.put("/api/v1/alerts/rules/checkout-p99", json={**ISSUE_RULE, "threshold": 300})
    assert changed.status_code == 200 and changed.json()["threshold"] == 300
    assert [r["id"] for r in api.get("/api/v1/alerts/rules").json()] == ["checkout-p99"]
    assert api.get("/api/v1/alerts/rules/nope").status_code == 404
    assert api.post("/api/v1/alerts/rules", json={**ISSUE_RULE, "id": "checkout-p99"}).status_code == 409

    channel = api.get("/api/v1/alerts/channels/ops-webhook").json()
    assert channel["secret"] == "********" and channel["has_secret"] is True
    assert api.delete("/api/v1/alerts/channels/ops-webhook").status_code == 409  # a rule uses it

    # a fresh app on the same store (as after a restart) sees the rule
    app = FastAPI()
    app.include_router(router)
    app.state.store = DatabasePool(session_store_dsn, database)
    with TestClient(app) as again:
        assert again.get("/api/v1/alerts/rules/checkout-p99").json()["threshold"] == 300
    app.state.store.close()

    assert api.delete("/api/v1/alerts/rules/checkout-p99").status_code == 204
    assert api.get("/api/v1/alerts/rules").json() == []
    assert api.delete("/api/v1/alerts/rules/checkout-p99").status_code == 404


def test_history_rejects_a_bad_time(api: TestClient) -> None:
    response = api.get("/api/v1/alerts/history", params={"start": "yesterday"})
    assert response.status_code == 400 and "start" in response.json()["detail"]


# -- signals ---------------------------------------------------------------------------------
def draft(api: TestClient, rule: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/alerts/test", json=rule)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["error"] is None, result["error"]
    return result


def test_span_signals(api: TestClient, clickhouse: Client) -> None:
    durations = [float(d) for d in range(1, 101)]  # 1..100 ms
    insert_spans(clickhouse, server_spans("shop", "GET /checkout", durations, errors=10))
    insert_spans(clickhouse, server_spans("shop", "GET /other", [5000.0]))
    insert_spans(clickhouse, server_spans("shop", "GET /checkout", [9000.0],
                                          at=now() - timedelta(minutes=30)))  # outside the window
    base = {"name": "t", "target": {"service": "shop", "operation": "GET /checkout"}, "window_s": 300}
    p99 = draft(api, {**base, "signal": "p99_ms", "op": ">", "threshold": 50})
    assert p99["value"] == pytest.approx(99.01, abs=0.5) and p99["state"] == "firing"
    assert p99["would_notify"][0]["channel"] == "log" and p99["would_notify"][0]["kind"] == "firing"
    assert p99["preview"][0]["payload"]["text"].startswith("[TEST] t (warning): p99_ms = 99")
    assert draft(api, {**base, "signal": "p50_ms"})["value"] == pytest.approx(50.5, abs=0.5)
    assert draft(api, {**base, "signal": "error_rate"})["value"] == pytest.approx(0.10)
    assert draft(api, {**base, "signal": "calls_per_min"})["value"] == pytest.approx(100 / 5)
    whole_service = draft(api, {**base, "target": {"service": "shop"}, "signal": "calls_per_min"})
    assert whole_service["value"] == pytest.approx(101 / 5)
    by_operation = draft(api, {**base, "target": {"service": "shop", "group_by": "operation"},
                                  "signal": "p99_ms", "threshold": 1000})
    states = {s["series"]: s["state"] for s in by_operation["series"]}
    assert states == {"GET /checkout": "ok", "GET /other": "firing"}
    quiet = draft(api, {**base, "target": {"service": "nobody"}, "signal": "p99_ms"})
    assert quiet["value"] is None and quiet["state"] == "ok" and quiet["would_notify"] == []


def test_edge_and_db_statement_signals(api: TestClient, clickhouse: Client) -> None:
    spans = []
    for _ in range(5):
        spans += call("web", "payments")
    spans.append({"trace": uuid.uuid4().hex, "span": uuid.uuid4().hex[:16], "service": "payments",
                  "name": "handle"})  # a call from elsewhere: not on the edge
    insert_spans(clickhouse, spans)
    edge = draft(api, {"name": "edge", "signal": "calls_per_min", "window_s": 60,
                       "target": {"service": "web", "peer_service": "payments"}})
    assert edge["value"] == pytest.approx(5.0)

    trace, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    db_spans = [{"trace": trace, "span": uuid.uuid4().hex[:16], "parent": parent, "service": "web",
                 "name": "SELECT", "kind": "Client", "duration_ms": 30 + i,
                 "attrs": {"db.system": "postgresql", "db.statement": f"SELECT * FROM users WHERE id = {i}"}}
                for i in range(8)]
    insert_spans(clickhouse, [{"trace": trace, "span": parent, "service": "web", "name": "GET /users"}, *db_spans])
    statement = draft(api, {"name": "db", "signal": "p99_ms", "op": ">", "threshold": 20,
                            "target": {"service": "web", "db_statement": "SELECT * FROM users WHERE id = 1"}})
    assert statement["value"] == pytest.approx(37, abs=0.2) and statement["state"] == "firing"

    n_plus_one = draft(api, {"name": "n+1", "signal": "n_plus_one", "op": ">=", "threshold": 5,
                             "target": {"service": "web"}})
    assert n_plus_one["state"] == "firing" and n_plus_one["value"] == 8
    (series,) = n_plus_one["series"]
    assert series["labels"] == {"service": "web", "operation": "GET /users",
                                "statement": "SELECT * FROM users WHERE id = ?"}
    assert series["details"]["example_trace_id"] == trace


def test_cycle_signal(api: TestClient, clickhouse: Client) -> None:
    insert_spans(clickhouse, call("a", "b") + call("b", "c"))
    rule = {"name": "cycles", "signal": "new_cycle", "op": ">=", "threshold": 1, "window_s": 300}
    assert draft(api, rule)["series"] == []
    insert_spans(clickhouse, call("c", "a") + call("d", "d"))
    result = draft(api, rule)
    assert [s["series"] for s in result["series"]] == ["a -> b -> c -> a"]
    assert result["state"] == "firing"
    assert [e["calls"] for e in result["series"][0]["details"]["edges"]] == [1, 1, 1]
    assert draft(api, {**rule, "target": {"service": "x"}})["series"] == []


def test_metric_and_heartbeat_signals(api: TestClient, clickhouse: Client) -> None:
    for value in (10.0, 20.0, 60.0):
        insert_gauge(clickhouse, "system.cpu.utilization", value, attributes={"cpu": "0"})
    insert_gauge(clickhouse, "system.cpu.utilization", 99.0, attributes={"cpu": "1"})
    base = {"name": "cpu", "signal": "metric_value", "window_s": 60,
            "target": {"metric": "system.cpu.utilization", "attributes": {"cpu": "0"}}}
    assert draft(api, base)["value"] == pytest.approx(30.0)
    assert draft(api, {**base, "aggregation": "max"})["value"] == pytest.approx(60.0)

    t0 = now() - timedelta(seconds=50)
    insert_sum(clickhouse, "requests", [(t0, 100.0), (t0 + timedelta(seconds=10), 160.0),
                                        (t0 + timedelta(seconds=20), 40.0)])  # a reset: +60, then +40
    rate = draft(api, {"name": "r", "signal": "metric_rate", "window_s": 60, "target": {"metric": "requests"}})
    assert rate["value"] == pytest.approx(100 / 60)

    heartbeat = "tracehouse.agent.heartbeat"
    insert_gauge(clickhouse, heartbeat, 1, service="api", at=now() - timedelta(seconds=300),
                 resource={"service.instance.id": "gone"})
    insert_gauge(clickhouse, heartbeat, 1, service="api", at=now() - timedelta(seconds=2),
                 resource={"service.instance.id": "alive"})
    missing = draft(api, {"name": "hb", "signal": "heartbeat_missing", "op": ">", "threshold": 60,
                          "window_s": 3600, "target": {"service": "api"}})
    states = {s["series"]: s["state"] for s in missing["series"]}
    assert states == {"alive": "ok", "gone": "firing"}


# -- the evaluator -----------------------------------------------------------------------------
def firing_and_resolved(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(r.body)["kind"] for r in receiver.accepted()]


def test_rule_fires_then_resolves_with_one_signed_notification_each(
        api: TestClient, clickhouse: Client, service_factory: Any) -> None:
    with WebhookReceiver() as receiver:
        webhook_channel(api, receiver.url)
        rule = {**ISSUE_RULE, "window_s": 10, "for_s": 0, "threshold": 250}
        assert api.post("/api/v1/alerts/rules", json=rule).status_code == 201
        service = service_factory()
        service.start()
        wait_for(lambda: service.status.passes >= 2, timeout_s=20, message="two evaluation passes")
        assert receiver.requests == []

        insert_spans(clickhouse, server_spans("shop", "GET /checkout", [400.0] * 20))
        wait_for(lambda: len(receiver.accepted()) >= 1, timeout_s=20, message="the firing notification")
        active = api.get("/api/v1/alerts").json()
        assert [(a["rule_id"], a["state"]) for a in active] == [("checkout-p99", "firing")]
        assert api.get("/api/v1/alerts/rules/checkout-p99").json()["state"] == "firing"
        (series,) = api.get("/api/v1/alerts/rules/checkout-p99/series").json()
        assert series["state"] == "firing" and series["value"] >= 250 and series["fired_at"]

        # fast spans keep arriving; the slow ones leave the 10 s window
        def fast_and_resolved() -> bool:
            insert_spans(clickhouse, server_spans("shop", "GET /checkout", [20.0] * 5))
            return len(receiver.accepted()) >= 2

        wait_for(fast_and_resolved, timeout_s=40, interval_s=0.5, message="the resolved notification")
        passes = service.status.passes
        wait_for(lambda: service.status.passes >= passes + 3, timeout_s=20, message="three more passes")
    assert firing_and_resolved(receiver) == ["firing", "resolved"]
    for request in receiver.accepted():
        assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER])
    firing = json.loads(receiver.accepted()[0].body)
    assert firing["rule"]["id"] == "checkout-p99" and firing["value"] >= 250 and firing["status"] == "firing"
    history = api.get("/api/v1/alerts/history", params={"rule_id": "checkout-p99"}).json()
    assert [(h["from_state"], h["to_state"]) for h in reversed(history)] == [("ok", "firing"), ("firing", "resolved")]
    service.flush()
    records = api.get("/api/v1/alerts/notifications").json()
    assert sorted((r["kind"], r["ok"]) for r in records) == [("firing", True), ("resolved", True)]


def test_down_webhook_is_retried_and_evaluation_goes_on(
        api: TestClient, clickhouse: Client, service_factory: Any) -> None:
    down_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with WebhookReceiver() as receiver:
        webhook_channel(api, down_url, name="down")
        webhook_channel(api, receiver.url, name="up")
        base = {"signal": "calls_per_min", "op": ">", "threshold": 0, "window_s": 60}
        api.post("/api/v1/alerts/rules", json={**base, "name": "to-down", "target": {"service": "a"},
                                               "channels": ["down"]})
        service = service_factory(webhook_max_attempts=3)
        service.start()
        insert_spans(clickhouse, server_spans("a", "GET /", [1.0]))

        def failed_delivery() -> list[dict[str, Any]]:
            service.flush(timeout_s=0)
            return [r for r in api.get("/api/v1/alerts/notifications").json() if not r["ok"]]

        (failure,) = wait_for(failed_delivery, timeout_s=30, message="the failed delivery to be recorded")
        assert failure["attempts"] == 3 and failure["channel"] == "down" and "ConnectError" in failure["error"]
        # still evaluating: a rule added now fires into the working channel
        api.post("/api/v1/alerts/rules", json={**base, "name": "to-up", "target": {"service": "b"},
                                               "channels": ["up"]})
        insert_spans(clickhouse, server_spans("b", "GET /", [1.0]))
        wait_for(lambda: receiver.accepted(), timeout_s=30, message="the working channel's notification")
    assert service.status.running


def test_silence_mutes_until_lifted(api: TestClient, clickhouse: Client, service_factory: Any) -> None:
    with WebhookReceiver() as receiver:
        webhook_channel(api, receiver.url)
        api.post("/api/v1/alerts/rules", json={"name": "busy", "signal": "calls_per_min", "op": ">",
                                               "threshold": 0, "window_s": 60, "target": {"service": "s"},
                                               "channels": ["ops-webhook"]})
        until = (now() + timedelta(hours=1)).isoformat()
        silenced = api.put("/api/v1/alerts/rules/busy/silence", json={"until": until, "comment": "deploy"})
        assert silenced.status_code == 200 and silenced.json()["active"] is True
        assert api.get("/api/v1/alerts/rules/busy").json()["silenced_until"] is not None
        service = service_factory()
        service.start()
        insert_spans(clickhouse, server_spans("s", "GET /", [1.0]))
        wait_for(lambda: any(a["state"] == "firing" for a in api.get("/api/v1/alerts").json()), timeout_s=20,
                 message="the rule to fire")
        passes = service.status.passes
        wait_for(lambda: service.status.passes >= passes + 3, timeout_s=20, message="more passes")
        assert receiver.requests == []
        assert api.get("/api/v1/alerts").json()[0]["silenced"] is True
        assert api.delete("/api/v1/alerts/rules/busy/silence").status_code == 204
        wait_for(lambda: receiver.accepted(), timeout_s=20, message="the notification after the silence")
        passes = service.status.passes
        wait_for(lambda: service.status.passes >= passes + 3, timeout_s=20, message="more passes")
    assert firing_and_resolved(receiver) == ["firing"]


def test_rules_file_is_applied_at_start(tmp_path: Path, api: TestClient, service_factory: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("channels:\n  - {name: hook, type: webhook, url: 'http://127.0.0.1:9/x'}\n"
                    "rules:\n  - {name: Slow shop, signal: p99_ms, target: {service: shop}, threshold: 300,"
                    " channels: [hook]}\n  - {id: gone-soon, name: other, signal: new_cycle}\n")
    service_factory(rules_file=str(path), alerts_enabled=False).start()
    rules = {r["id"]: r for r in api.get("/api/v1/alerts/rules").json()}
    assert set(rules) == {"slow-shop", "gone-soon"} and rules["slow-shop"]["source"] == "file"
    assert rules["slow-shop"]["channels"] == ["hook"]
    path.write_text("rules:\n  - {name: Slow shop, signal: p99_ms, target: {service: shop}, threshold: 500}\n")
    service_factory(rules_file=str(path), alerts_enabled=False).start()
    rules = {r["id"]: r for r in api.get("/api/v1/alerts/rules").json()}
    assert set(rules) == {"slow-shop"} and rules["slow-shop"]["threshold"] == 500
    assert [c["name"] for c in api.get("/api/v1/alerts/channels").json()] == ["log"]


# -- the lease ---------------------------------------------------------------------------------
def test_lease_has_one_holder_at_a_time(session_store_dsn: str, database: str) -> None:
    """Two replicas try to take the lease as fast as they can; the periods in which each believes it
    holds the lease (from its confirming read to the expiry it read, by the database clock) never overlap."""
    held: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    stop = time.monotonic() + 10.0

    def contend(name: str) -> None:
        client = storage.connect(session_store_dsn, database=database)
        lease = Lease(client, name, ttl_s=1.0, settle_s=0.2)
        while time.monotonic() < stop:
            if lease.try_acquire():
                view = lease.current()
                assert view is not None
                held[name].append((view.now_ms, lease.expires_ms))
            # sometimes stall past the expiry so that the other replica can take over
            time.sleep(1.2 if len(held[name]) % 4 == 3 else 0.01)
        client.close()

    threads = [threading.Thread(target=contend, args=(name,)) for name in held]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert held["a"] and held["b"], "both replicas should have held the lease at some point"
    for start_a, end_a in held["a"]:
        for start_b, end_b in held["b"]:
            assert end_a <= start_b or end_b <= start_a, f"a held {start_a}-{end_a}, b held {start_b}-{end_b}"


def test_one_replica_evaluates_and_the_other_takes_over(service_factory: Any, api: TestClient) -> None:
    api.post("/api/v1/alerts/rules", json={"name": "any", "signal": "calls_per_min", "op": "<", "threshold": 1,
                                           "window_s": 60, "target": {"service": "idle"}})
    first, second = service_factory(), service_factory()
    first.start()
    wait_for(lambda: first.status.leader, timeout_s=20, message="the first replica to lead")
    second.start()
    wait_for(lambda: second.status.passes == 0 and first.status.passes >= 10, timeout_s=30,
             message="the first replica evaluating alone")
    assert second.status.passes == 0 and not second.status.leader
    first.shutdown()  # releases the lease
    wait_for(lambda: second.status.passes >= 3, timeout_s=20, message="the second replica to take over")
    history = api.get("/api/v1/alerts/history").json()
    assert {h["rule_id"] for h in history} == {"any"}
    metrics = second.metrics.render().decode()
    assert "tracehouse_alert_evaluator_leader 1.0" in metrics
    assert "tracehouse_alert_evaluation_passes_total" in metrics and "tracehouse_alert_evaluator_leader 0.0" \
        in first.metrics.render().decode()


def test_disabling_a_firing_rule_resolves_it(api: TestClient, clickhouse: Client, service_factory: Any) -> None:
    with WebhookReceiver() as receiver:
        webhook_channel(api, receiver.url)
        rule = {"name": "busy", "signal": "calls_per_min", "op": ">", "threshold": 0, "window_s": 60,
                "target": {"service": "s"}, "channels": ["ops-webhook"]}
        api.post("/api/v1/alerts/rules", json=rule)
        api.post("/api/v1/alerts/rules", json={**rule, "name": "doomed", "channels": []})
        insert_spans(clickhouse, server_spans("s", "GET /", [1.0]))
        service = service_factory()
        service.start()
        wait_for(lambda: len(api.get("/api/v1/alerts").json()) == 2, timeout_s=20, message="both rules firing")
        assert api.put("/api/v1/alerts/rules/busy", json={**rule, "enabled": False}).status_code == 200
        assert api.delete("/api/v1/alerts/rules/doomed").status_code == 204
        wait_for(lambda: len(receiver.accepted()) >= 2, timeout_s=20, message="the resolved notification")
        passes = service.status.passes
        wait_for(lambda: service.status.passes >= passes + 3, timeout_s=20, message="more passes")
        assert api.get("/api/v1/alerts").json() == []
    assert firing_and_resolved(receiver) == ["firing", "resolved"]
    history = api.get("/api/v1/alerts/history").json()
    assert sorted((h["rule_id"], h["from_state"], h["to_state"]) for h in history) == [
        ("busy", "firing", "resolved"), ("busy", "ok", "firing"),
        ("doomed", "firing", "resolved"), ("doomed", "ok", "firing")]


def test_a_write_beats_a_row_from_a_replica_with_a_clock_ahead(api: TestClient, clickhouse: Client) -> None:
    far_future_version = (time.time_ns() + 3600 * 10**9)  # another replica's clock, an hour ahead
    body = json.dumps({"name": "skewed", "signal": "p99_ms", "target": {"service": "a"}, "threshold": 1})
    clickhouse.insert("tracehouse_alert_rules", [["skewed", "skewed", body, "api", 0, far_future_version]],
                      column_names=["id", "name", "body", "source", "deleted", "version"])
    assert api.get("/api/v1/alerts/rules/skewed").json()["threshold"] == 1
    changed = api.put("/api/v1/alerts/rules/skewed", json={**json.loads(body), "threshold": 2})
    assert changed.json()["threshold"] == 2
    assert api.get("/api/v1/alerts/rules/skewed").json()["threshold"] == 2


def test_repeat_interval_renotifies_while_firing(api: TestClient, clickhouse: Client,
                                                 service_factory: Any) -> None:
    with WebhookReceiver() as receiver:
        webhook_channel(api, receiver.url)
        api.post("/api/v1/alerts/rules", json={"name": "nagging", "signal": "calls_per_min", "op": ">",
                                               "threshold": 0, "window_s": 60, "target": {"service": "s"},
                                               "channels": ["ops-webhook"], "repeat_interval_s": 1})
        insert_spans(clickhouse, server_spans("s", "GET /", [1.0]))
        service_factory().start()
        wait_for(lambda: len(receiver.accepted()) >= 3, timeout_s=30, message="two repeats")
    sent = [json.loads(r.body) for r in receiver.accepted()]
    assert [s["kind"] for s in sent[:3]] == ["firing", "repeat", "repeat"]
    assert {s["fired_at"] for s in sent} == {sent[0]["fired_at"]}  # one episode
    gaps_s = [(datetime.fromisoformat(b["sent_at"]) - datetime.fromisoformat(a["sent_at"])).total_seconds()
              for a, b in zip(sent, sent[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps_s), gaps_s


def test_a_pass_whose_lease_lapsed_writes_and_sends_nothing(api: TestClient, clickhouse: Client) -> None:
    from tracehouse.query.alerts.evaluator import evaluate_all
    from tracehouse.query.alerts.repository import AlertRepository, now_ms

    api.post("/api/v1/alerts/rules", json={"name": "busy", "signal": "calls_per_min", "op": ">", "threshold": 0,
                                           "window_s": 60, "target": {"service": "s"}})
    insert_spans(clickhouse, server_spans("s", "GET /", [1.0]))
    repository = AlertRepository(clickhouse)
    lapsed = evaluate_all(clickhouse, repository, now_ms=now_ms(), replica_id="r", default_repeat_interval_s=0,
                          still_leader=lambda: False)
    assert lapsed.notifications == [] and "lease" in lapsed.errors
    assert api.get("/api/v1/alerts").json() == [] and api.get("/api/v1/alerts/history").json() == []
    held = evaluate_all(clickhouse, repository, now_ms=now_ms(), replica_id="r", default_repeat_interval_s=0,
                        still_leader=lambda: True)
    assert [n.kind for _, n in held.notifications] == ["firing"]
    assert [a["state"] for a in api.get("/api/v1/alerts").json()] == ["firing"]


def test_lease_is_released_and_taken_over(session_store_dsn: str, database: str) -> None:
    a = Lease(storage.connect(session_store_dsn, database=database), "a", ttl_s=30, settle_s=0.05)
    b = Lease(storage.connect(session_store_dsn, database=database), "b", ttl_s=30, settle_s=0.05)
    assert a.try_acquire() and a.still_held()
    assert not b.try_acquire()
    assert a.try_acquire()  # renewal
    a.release()
    assert not a.still_held()
    assert b.try_acquire() and not a.try_acquire()
    view = b.current()
    assert view is not None and view.holder == "b"


def test_rules_file_waits_for_a_store_that_is_not_there_yet(tmp_path: Path, session_store_dsn: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\nname = "late"\nsignal = "new_cycle"\nop = ">="\nthreshold = 1\n')
    database = f"t_late_{uuid.uuid4().hex[:8]}"
    service = AlertService(session_store_dsn, settings(rules_file=str(path)), database=database)
    service.start()  # the database does not exist yet: start-up goes on, the evaluator retries
    admin = storage.connect(session_store_dsn)
    try:
        wait_for(lambda: service.status.last_error, timeout_s=20, message="a failed pass")
        admin.command(f"CREATE DATABASE {database}")
        client = storage.connect(session_store_dsn, database=database)
        storage.migrate(client)
        wait_for(lambda: service.status.passes >= 1, timeout_s=30, message="a pass once the store is there")
        from tracehouse.query.alerts.repository import AlertRepository

        assert [r.id for r in AlertRepository(client).list_rules()] == ["late"]
        client.close()
    finally:
        service.shutdown()
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


def test_a_late_claim_at_the_same_version_does_not_unseat_the_holder(clickhouse: Client) -> None:
    holder = Lease(clickhouse, "zz-holder", ttl_s=30, settle_s=0.05)
    assert holder.try_acquire()
    view = holder.current()
    assert view is not None
    # a contender that read the lease as free long ago and inserts its claim only now
    clickhouse.command("INSERT INTO tracehouse_alert_lease (name, holder, expires_at, version, claimed_at) "
                       "SELECT 'alert-evaluator', 'aa-late', now64(3) + toIntervalSecond(30), {v:UInt64}, "
                       "now64(3) + toIntervalMillisecond(5)", parameters={"v": view.version})
    late = Lease(clickhouse, "aa-late", ttl_s=30, settle_s=0.05)
    current = late.current()
    assert current is not None and current.holder == "zz-holder"
    assert holder.still_held() and not late.try_acquire()


def test_channel_test_sends_one_signed_notification(api: TestClient) -> None:
    with WebhookReceiver() as receiver:
        webhook_channel(api, receiver.url)
        result = api.post("/api/v1/alerts/channels/ops-webhook/test").json()
    assert result["ok"] is True and result["attempts"] == 1 and result["status_code"] == 200
    (request,) = receiver.requests
    assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER])
    assert request.headers["X-TraceHouse-Event"] == "test" and json.loads(request.body)["kind"] == "test"
    webhook_channel(api, f"http://127.0.0.1:{free_port()}/hook", name="dead")
    dead = api.post("/api/v1/alerts/channels/dead/test").json()
    assert dead["ok"] is False and dead["attempts"] == 1 and "ConnectError" in dead["error"]
    assert api.post("/api/v1/alerts/channels/log/test").json()["ok"] is True
    assert api.post("/api/v1/alerts/channels/nope/test").status_code == 404
    recorded = {(r["channel"], r["kind"], r["ok"]) for r in api.get("/api/v1/alerts/notifications").json()}
    assert recorded == {("ops-webhook", "test", True), ("dead", "test", False), ("log", "test", True)}
