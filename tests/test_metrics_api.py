"""The metrics API in-process over a real store (chDB, or the ClickHouse server of
TRACEHOUSE_TEST_CLICKHOUSE_URL): rows written as the OpenTelemetry Collector's exporter writes
them, read back through /api/v1/metrics, /metrics/query, /hosts and /services/{s}/correlated."""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tracehouse import storage
from tracehouse.query.metrics.router import router
from tracehouse.query.store import StorePool

# A whole hour, three hours ago: inside the stores' retention, and in the past.
T0 = float(int(time.time() // 3600 * 3600 - 3 * 3600))


def at(t_s: float) -> datetime:
    return datetime.fromtimestamp(t_s, tz=UTC)


def ms(t_s: float) -> str:
    return str(int(t_s * 1000))


class DatabasePool(StorePool):
    """The app's thread-local client pool, on the test's own database."""

    def __init__(self, dsn: str, database: str) -> None:
        super().__init__(dsn)
        self.database = database
        self._mine = threading.local()

    def client(self) -> Client:
        client = getattr(self._mine, "client", None)
        if client is None:
            client = self._mine.client = storage.connect(self.dsn, database=self.database)
            with self._lock:
                self._all.append(client)
        return client


@pytest.fixture
def api(clickhouse: Client, session_store_dsn: str) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router)
    app.state.store = DatabasePool(session_store_dsn, storage.database_of(clickhouse))
    with TestClient(app) as client:
        yield client
    app.state.store.close()


def insert_gauges(client: Client, rows: Sequence[dict[str, Any]]) -> None:
    columns = ["ServiceName", "ResourceAttributes", "MetricName", "MetricUnit", "MetricDescription", "Attributes",
               "StartTimeUnix", "TimeUnix", "Value"]
    client.insert("otel_metrics_gauge", [[
        r["service"], {"service.name": r["service"], **r.get("resource", {})}, r["name"], r.get("unit", ""),
        r.get("description", ""), r.get("attributes", {}), at(r.get("start", 0.0)), at(r["t"]), float(r["value"])]
        for r in rows], column_names=columns)


def insert_sums(client: Client, rows: Sequence[dict[str, Any]]) -> None:
    columns = ["ServiceName", "ResourceAttributes", "MetricName", "MetricUnit", "MetricDescription", "Attributes",
               "StartTimeUnix", "TimeUnix", "Value", "AggregationTemporality", "IsMonotonic"]
    client.insert("otel_metrics_sum", [[
        r["service"], {"service.name": r["service"], **r.get("resource", {})}, r["name"], r.get("unit", ""),
        r.get("description", ""), r.get("attributes", {}), at(r.get("start", T0 - 3600)), at(r["t"]),
        float(r["value"]), r.get("temporality", 2), r.get("monotonic", True)]
        for r in rows], column_names=columns)


def insert_spans(client: Client, rows: Sequence[dict[str, Any]]) -> None:
    columns = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName",
               "ResourceAttributes", "SpanAttributes", "Duration", "StatusCode"]
    client.insert("otel_traces", [[
        at(r["t"]), uuid.uuid4().hex, uuid.uuid4().hex[:16], r.get("parent", ""), r.get("name", "GET /"),
        r.get("kind", "Server"), r["service"], {"service.name": r["service"], **r.get("resource", {})},
        r.get("attributes", {}), int(r["duration_ns"]), r.get("status", "Unset")]
        for r in rows], column_names=columns)


def test_catalogue_lists_names_types_units_services_and_hosts(clickhouse: Client, api: TestClient) -> None:
    host = {"host.name": "node-a"}
    insert_gauges(clickhouse, [
        {"service": "checkout", "resource": host, "name": "system.cpu.utilization", "unit": "1",
         "attributes": {"cpu.mode": "user"}, "t": T0, "value": 0.2},
        {"service": "cart", "resource": {"host.name": "node-b"}, "name": "system.cpu.utilization", "unit": "1",
         "attributes": {"cpu.mode": "user"}, "t": T0, "value": 0.3},
    ])
    insert_sums(clickhouse, [
        {"service": "cache", "name": "redis.commands.processed", "unit": "{command}", "t": T0, "value": 5},
        {"service": "checkout", "resource": host, "name": "system.memory.usage", "unit": "By", "t": T0,
         "value": 1e9, "monotonic": False},
    ])
    answer = api.get("/api/v1/metrics", params={"start": ms(T0 - 60), "end": ms(T0 + 60)})
    assert answer.status_code == 200, answer.text
    metrics = {m["name"]: m for m in answer.json()["metrics"]}
    assert metrics["system.cpu.utilization"]["type"] == "gauge"
    assert metrics["system.cpu.utilization"]["unit"] == "1"
    assert metrics["system.cpu.utilization"]["services"] == ["cart", "checkout"]
    assert metrics["system.cpu.utilization"]["hosts"] == ["node-a", "node-b"]
    assert metrics["redis.commands.processed"]["type"] == "counter"
    assert metrics["redis.commands.processed"]["hosts"] == []
    assert metrics["system.memory.usage"]["type"] == "updowncounter"
    only_b = api.get("/api/v1/metrics", params={"start": ms(T0 - 60), "end": ms(T0 + 60), "host": "node-b"}).json()
    assert [m["name"] for m in only_b["metrics"]] == ["system.cpu.utilization"]
    redis_only = api.get("/api/v1/metrics", params={"start": ms(T0 - 60), "end": ms(T0 + 60), "prefix": "redis."})
    assert [m["name"] for m in redis_only.json()["metrics"]] == ["redis.commands.processed"]
    assert api.get("/api/v1/metrics", params={"start": "soon"}).status_code == 400


def test_counter_rates_across_a_reset(clickhouse: Client, api: TestClient) -> None:
    """Two instances of one counter, 10 s apart; the first restarts (its value drops) mid-way."""
    first = [100, 110, 120, 130, 5, 15, 25, 35]  # +1/s, reset after 130: 5 since the restart
    second = [0, 20, 40, 60, 80, 100, 120, 140]  # +2/s
    rows = []
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        rows.append({"service": "cache", "name": "redis.commands.processed", "unit": "{command}",
                     "resource": {"server.port": "6379"}, "t": T0 + 10 * i, "value": a})
        rows.append({"service": "cache-2", "name": "redis.commands.processed", "unit": "{command}",
                     "resource": {"server.port": "6380"}, "t": T0 + 10 * i, "value": b})
    insert_sums(clickhouse, rows)
    params: dict[str, Any] = {"name": "redis.commands.processed", "start": ms(T0 + 10), "end": ms(T0 + 80),
                              "step": "10s"}
    answer = api.get("/api/v1/metrics/query", params={**params, "group_by": "service.name"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["type"] == "counter" and body["agg"] == "rate" and body["unit"] == "{command}/s"
    series = {s["labels"]["service.name"]: s for s in body["series"]}
    assert series["cache"]["values"] == [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]
    assert series["cache-2"]["values"] == [2.0] * 7
    assert series["cache"]["timestamps"][0] == at(T0 + 10).isoformat().replace("+00:00", "Z")
    total = api.get("/api/v1/metrics/query", params=params).json()
    assert total["series"][0]["labels"] == {}
    assert total["series"][0]["values"] == [3.0, 3.0, 3.0, 2.5, 3.0, 3.0, 3.0]
    one = api.get("/api/v1/metrics/query", params={**params, "attr": "server.port:6380"}).json()
    assert one["series"][0]["values"] == [2.0] * 7
    # raw values of a counter are there too
    highest = api.get("/api/v1/metrics/query", params={**params, "agg": "max", "step": "80s",
                                                        "start": ms(T0), "end": ms(T0 + 80)}).json()
    assert highest["series"][0]["values"] == [140.0]


def test_gauge_aggregations_and_errors(clickhouse: Client, api: TestClient) -> None:
    values = [random.Random(5).uniform(0, 100) for _ in range(60)]
    insert_gauges(clickhouse, [{"service": "checkout", "resource": {"host.name": "node-a"}, "name": "queue.depth",
                                "attributes": {"queue": "q1"}, "t": T0 + i, "value": v} for i, v in enumerate(values)])
    base = {"name": "queue.depth", "start": ms(T0), "end": ms(T0 + 60), "step": "60s"}
    for agg, expected in (("avg", sum(values) / 60), ("max", max(values)), ("min", min(values))):
        body = api.get("/api/v1/metrics/query", params={**base, "agg": agg}).json()
        assert body["series"][0]["values"][0] == pytest.approx(expected), agg
    import numpy as np
    p99 = api.get("/api/v1/metrics/query", params={**base, "agg": "p99"}).json()["series"][0]["values"][0]
    assert p99 == pytest.approx(float(np.quantile(values, 0.99)))
    by_host = api.get("/api/v1/metrics/query", params={**base, "group_by": ["host.name", "queue"]}).json()
    assert by_host["series"][0]["labels"] == {"host.name": "node-a", "queue": "q1"}
    assert api.get("/api/v1/metrics/query", params={**base, "agg": "rate"}).status_code == 400
    assert api.get("/api/v1/metrics/query", params={**base, "agg": "median"}).status_code == 422
    assert api.get("/api/v1/metrics/query", params={**base, "name": "no.such.metric"}).status_code == 404
    assert api.get("/api/v1/metrics/query", params={**base, "attr": "nocolon"}).status_code == 400
    assert api.get("/api/v1/metrics/query", params={**base, "step": "soon"}).status_code == 400
    assert api.get("/api/v1/metrics/query", params={**base, "attr": "queue:other"}).json()["series"] == []


def test_hosts_show_latest_figures_and_the_services_on_them(clickhouse: Client, api: TestClient) -> None:
    node = {"host.name": "node-a"}
    rows = []
    for i in range(6):
        t = T0 + 10 * i
        for mode, share in (("user", 0.5), ("system", 0.1), ("idle", 0.35), ("iowait", 0.05)):
            rows.append({"service": "checkout", "resource": {**node, "service.instance.id": "c1"},
                         "name": "system.cpu.utilization", "attributes": {"cpu.mode": mode}, "t": t, "value": share})
        rows.append({"service": "checkout", "resource": {**node, "service.instance.id": "c1"},
                     "name": "system.cpu.utilization", "attributes": {"cpu.mode": "idle", "cpu.logical_number": "0"},
                     "t": t, "value": 0.99})  # per core: not the host's total
        rows.append({"service": "checkout", "resource": {**node, "service.instance.id": "c1"},
                     "name": "system.memory.utilization", "attributes": {"system.memory.state": "used"}, "t": t,
                     "value": 0.25})
        rows.append({"service": "checkout", "resource": {**node, "service.instance.id": "c1"},
                     "name": "system.filesystem.utilization", "attributes": {"system.filesystem.mountpoint": "/"},
                     "t": t, "value": 0.4})
        rows.append({"service": "checkout", "resource": {**node, "service.instance.id": "c1"},
                     "name": "system.filesystem.utilization", "attributes": {"system.filesystem.mountpoint": "/data"},
                     "t": t, "value": 0.8})
    insert_gauges(clickhouse, rows)
    sums = []
    for i in range(6):
        t = T0 + 10 * i
        resource = {**node, "service.instance.id": "c1"}
        sums += [
            {"service": "checkout", "resource": resource, "name": "system.memory.usage", "monotonic": False,
             "attributes": {"system.memory.state": "used"}, "t": t, "value": 4e9},
            {"service": "checkout", "resource": resource, "name": "system.network.io",
             "attributes": {"network.interface.name": "eth0", "network.io.direction": "receive"}, "t": t,
             "value": 1000 * 10 * i},
            {"service": "checkout", "resource": resource, "name": "system.network.io",
             "attributes": {"network.interface.name": "eth0", "network.io.direction": "transmit"}, "t": t,
             "value": 500 * 10 * i},
            {"service": "checkout", "resource": resource, "name": "system.disk.io",
             "attributes": {"system.device": "sda", "disk.io.direction": "write"}, "t": t, "value": 300 * 10 * i},
        ]
    insert_sums(clickhouse, sums)
    insert_spans(clickhouse, [
        {"service": "checkout", "resource": {**node, "service.instance.id": "c1"}, "t": T0 + 5, "duration_ns": 1e6},
        {"service": "checkout", "resource": {**node, "service.instance.id": "c2"}, "t": T0 + 6, "duration_ns": 1e6},
        {"service": "cart", "resource": node, "t": T0 + 7, "duration_ns": 1e6},
        {"service": "search", "resource": {"host.name": "node-b"}, "t": T0 + 8, "duration_ns": 1e6},
    ])
    answer = api.get("/api/v1/hosts", params={"start": ms(T0 - 60), "end": ms(T0 + 120)})
    assert answer.status_code == 200, answer.text
    hosts = {h["host"]: h for h in answer.json()["hosts"]}
    assert set(hosts) == {"node-a", "node-b"}
    a = hosts["node-a"]
    assert a["cpu_utilization"] == pytest.approx(0.6)
    assert a["memory_utilization"] == pytest.approx(0.25)
    assert a["memory_used_bytes"] == pytest.approx(4e9)
    assert a["filesystem_utilization_max"] == pytest.approx(0.8)
    assert a["network_io_bytes_per_s"] == pytest.approx(1500)
    assert a["disk_io_bytes_per_s"] == pytest.approx(300)
    services = {s["service"]: s for s in a["services"]}
    assert set(services) == {"checkout", "cart"}
    assert services["checkout"]["instances"] == ["c1", "c2"]
    b = hosts["node-b"]
    assert b["cpu_utilization"] is None and [s["service"] for s in b["services"]] == ["search"]


STEPS = 60
STEP_S = 60.0


def incident(i: int) -> bool:
    """The incident lasts from step 20 to step 34."""
    return 20 <= i < 35


def seed_checkout(clickhouse: Client, cause: str) -> None:
    """checkout runs on node-a and calls Redis (cache) and MariaDB (orders-db). During the incident
    either node-a's CPU burns (`cpu`) or orders-db runs slow queries (`mysql`), and checkout is
    slow. node-b (where checkout does not run) burns at another time; Redis stays steady."""
    rng = random.Random(42)
    node_a = {"host.name": "node-a", "service.instance.id": "checkout-1"}
    node_b = {"host.name": "node-b", "service.instance.id": "search-1"}
    redis_resource = {"server.address": "127.0.0.1", "server.port": "6379", "db.system": "redis",
                      "tracehouse.middleware.system": "redis"}
    mysql_resource = {"server.address": "db.internal", "server.port": "3306", "db.system": "mysql",
                      "tracehouse.middleware.system": "mysql"}
    gauges: list[dict[str, Any]] = []
    sums: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    for i in range(STEPS):
        burning = cause == "cpu" and incident(i)
        slow_queries = cause == "mysql" and incident(i)
        for k in range(6):  # every 10 s
            t = T0 + i * STEP_S + k * 10
            load_a = min(1.0, max(0.0, (0.92 if burning else 0.08) + rng.gauss(0, 0.03)))
            load_b = 0.9 if 5 <= i < 15 else 0.1
            for resource, load, service in ((node_a, load_a, "checkout"), (node_b, load_b, "search")):
                gauges += [
                    {"service": service, "resource": resource, "name": "system.cpu.utilization",
                     "attributes": {"cpu.mode": "user"}, "t": t, "value": load * 0.8},
                    {"service": service, "resource": resource, "name": "system.cpu.utilization",
                     "attributes": {"cpu.mode": "system"}, "t": t, "value": load * 0.2},
                    {"service": service, "resource": resource, "name": "system.cpu.utilization",
                     "attributes": {"cpu.mode": "idle"}, "t": t, "value": 1 - load},
                    {"service": service, "resource": resource, "name": "system.memory.utilization",
                     "attributes": {"system.memory.state": "used"}, "t": t, "value": 0.4 + rng.gauss(0, 0.02)},
                ]
                sums.append({"service": service, "resource": resource, "name": "system.network.io", "unit": "By",
                             "attributes": {"network.interface.name": "eth0", "network.io.direction": "receive"},
                             "t": t, "value": (i * 6 + k) * 10_000 + rng.randint(0, 3000)})
            gauges.append({"service": "checkout", "resource": node_a, "name": "process.memory.utilization",
                           "t": t, "value": 0.05 + rng.gauss(0, 0.002)})
            gauges += [
                {"service": "cache", "resource": redis_resource, "name": "up", "t": t, "value": 1},
                {"service": "cache", "resource": redis_resource, "name": "redis.memory.used", "unit": "By",
                 "t": t, "value": 5e6 + rng.gauss(0, 1e5)},
                {"service": "orders-db", "resource": mysql_resource, "name": "up", "t": t, "value": 1},
                {"service": "orders-db", "resource": mysql_resource, "name": "mysql.threads",
                 "attributes": {"kind": "running"}, "t": t, "value": (30 if slow_queries else 2) + rng.randint(0, 2)},
            ]
            sums.append({"service": "cache", "resource": redis_resource, "name": "redis.commands.processed",
                         "t": t, "value": (i * 6 + k) * 500 + rng.randint(0, 200)})
            sums.append({"service": "orders-db", "resource": mysql_resource, "name": "mysql.queries",
                         "t": t, "value": (i * 6 + k) * 300 + rng.randint(0, 100)})
        for _ in range(40):  # requests of this minute
            t = T0 + i * STEP_S + rng.uniform(0, STEP_S)
            duration_ms = rng.lognormvariate(math.log(180 if incident(i) else 20), 0.25)
            spans.append({"service": "checkout", "resource": node_a, "t": t, "duration_ns": duration_ms * 1e6,
                          "status": "Error" if rng.random() < 0.02 else "Unset"})
            spans.append({"service": "checkout", "resource": node_a, "t": t, "kind": "Client", "name": "GET",
                          "duration_ns": 1e5, "parent": "ab" * 8,
                          "attributes": {"db.system": "redis", "server.address": "localhost", "server.port": "6379"}})
            spans.append({"service": "checkout", "resource": node_a, "t": t, "kind": "Client", "name": "SELECT",
                          "duration_ns": 1e6, "parent": "ab" * 8,
                          "attributes": {"db.system": "mysql", "db.name": "orders", "server.address": "db.internal",
                                         "server.port": "3306"}})
        spans.append({"service": "search", "resource": node_b, "t": T0 + i * STEP_S, "duration_ns": 5e6})
    insert_gauges(clickhouse, gauges)
    insert_sums(clickhouse, sums)
    insert_spans(clickhouse, spans)


def correlated_checkout(api: TestClient) -> dict[str, Any]:
    answer = api.get("/api/v1/services/checkout/correlated",
                     params={"start": ms(T0), "end": ms(T0 + STEPS * STEP_S), "step": "60s"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert len(body["timestamps"]) == STEPS
    p99 = body["latency"]["p99_ms"]
    assert min(p99[20:35]) > 3 * max(p99[:20] + p99[35:])  # the service really was slow in the incident
    scores = [s["score"] for s in body["series"]]
    assert scores == sorted(scores, reverse=True)
    return body


def test_correlation_ranks_a_cpu_burn_above_unrelated_series(clickhouse: Client, api: TestClient) -> None:
    """A CPU burn on node-a makes checkout slow: node-a's CPU comes first, above memory, network,
    Redis and MariaDB series that do not move with it; node-b's burn at another time (a host
    checkout does not run on) does not appear."""
    seed_checkout(clickhouse, "cpu")
    body = correlated_checkout(api)
    assert body["hosts"] == ["node-a"]
    assert sum(body["latency"]["calls"]) == STEPS * 40
    assert sorted((d["node"], d["middleware"]) for d in body["dependencies"]) == [
        ("mysql/orders", "orders-db"), ("redis@localhost", "cache")]
    ranked = body["series"]
    sources = {(s["source"], s["entity"]) for s in ranked}
    # node-b is not where checkout runs; search's metrics are not checkout's
    assert sources == {("host", "node-a"), ("middleware", "cache"), ("middleware", "orders-db"),
                       ("process", "checkout")}
    top = ranked[0]
    assert top["source"] == "host" and top["entity"] == "node-a" and top["metric"] == "system.cpu.utilization"
    assert top["score"] > 0.9
    cpu = [s for s in ranked if s["metric"] == "system.cpu.utilization"]
    others = [s for s in ranked if s["metric"] != "system.cpu.utilization"]
    assert len(cpu) == 3 and others
    assert min(s["score"] for s in cpu) > max(s["score"] for s in others) + 0.3
    idle = next(s for s in cpu if s["labels"] == {"cpu.mode": "idle"})
    assert idle["pearson"] < -0.9  # idle falls as p99 rises
    redis_rate = next(s for s in ranked if s["metric"] == "redis.commands.processed")
    assert redis_rate["agg"] == "rate"
    assert all(v is None or 45 <= v <= 55 for v in redis_rate["values"]), redis_rate["values"]  # ~500 per 10 s


def test_correlation_tells_a_slow_database_from_a_busy_host(clickhouse: Client, api: TestClient) -> None:
    """The same service made slow by its database instead: the database's series come first and
    the host's CPU, which stayed quiet, ranks low."""
    seed_checkout(clickhouse, "mysql")
    ranked = correlated_checkout(api)["series"]
    top = ranked[0]
    assert (top["source"], top["entity"], top["metric"], top["labels"]) == \
        ("middleware", "orders-db", "mysql.threads", {"kind": "running"})
    assert top["score"] > 0.9
    cpu = [s for s in ranked if s["metric"] == "system.cpu.utilization"]
    assert cpu and max(s["score"] for s in cpu) < top["score"] - 0.3


def test_a_service_name_with_a_slash(clickhouse: Client, api: TestClient) -> None:
    insert_spans(clickhouse, [{"service": "shop/api", "t": T0 + i, "duration_ns": 1e6 * (i + 1)} for i in range(10)])
    answer = api.get("/api/v1/services/shop%2Fapi/correlated", params={"start": ms(T0), "end": ms(T0 + 60),
                                                                        "step": "60s"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["service"] == "shop/api"
    assert answer.json()["latency"]["calls"] == [10]


def test_correlation_of_an_unknown_service_is_404(api: TestClient) -> None:
    answer = api.get("/api/v1/services/nobody/correlated", params={"start": ms(T0), "end": ms(T0 + 600)})
    assert answer.status_code == 404
    assert "nobody" in answer.json()["detail"]


def test_middleware_instances_with_up_and_availability(clickhouse: Client, api: TestClient) -> None:
    resource = {"server.address": "127.0.0.1", "server.port": "6379", "tracehouse.middleware.system": "redis",
                "db.system": "redis"}
    insert_gauges(clickhouse, [
        {"service": "cache", "resource": resource, "name": "up", "t": T0 + i * 10, "value": v}
        for i, v in enumerate([1, 1, 0])] + [
        {"service": "orders-db", "resource": {**resource, "tracehouse.middleware.system": "mysql",
                                              "server.port": "3306", "db.system": "mysql"},
         "name": "up", "t": T0, "value": 1},
        {"service": "checkout", "name": "up", "t": T0, "value": 1},  # not a middleware instance
    ])
    answer = api.get("/api/v1/middleware", params={"start": ms(T0 - 60), "end": ms(T0 + 60)})
    assert answer.status_code == 200, answer.text
    instances = {i["name"]: i for i in answer.json()["instances"]}
    assert set(instances) == {"cache", "orders-db"}
    assert instances["cache"]["up"] is False
    assert instances["cache"]["availability"] == pytest.approx(2 / 3, abs=1e-4)
    assert (instances["cache"]["system"], instances["cache"]["address"], instances["cache"]["port"]) == \
        ("redis", "127.0.0.1", 6379)
    assert instances["orders-db"]["up"] is True and instances["orders-db"]["system"] == "mysql"


def insert_histograms(client: Client, rows: Sequence[dict[str, Any]]) -> None:
    columns = ["ServiceName", "ResourceAttributes", "MetricName", "MetricUnit", "Attributes", "StartTimeUnix",
               "TimeUnix", "Count", "Sum", "BucketCounts", "ExplicitBounds", "AggregationTemporality"]
    client.insert("otel_metrics_histogram", [[
        r["service"], {"service.name": r["service"]}, r["name"], r.get("unit", "ms"), r.get("attributes", {}),
        at(T0 - 3600), at(r["t"]), int(sum(r["counts"])), float(r["sum"]), list(r["counts"]), list(r["bounds"]), 2]
        for r in rows], column_names=columns)


def test_histograms_give_p99_avg_and_rate(clickhouse: Client, api: TestClient) -> None:
    bounds = [10.0, 100.0, 1000.0]
    rows = []
    for instance in ("a", "b"):  # two instances, cumulative, each +10 fast and +1 slow observations per 10 s
        for i in range(7):
            rows.append({"service": "checkout", "name": "http.server.request.duration", "t": T0 + 10 * i,
                         "attributes": {"instance": instance}, "counts": [10 * i, 0, i, 0], "sum": 55.0 * i,
                         "bounds": bounds})
    insert_histograms(clickhouse, rows)
    base = {"name": "http.server.request.duration", "start": ms(T0 + 10), "end": ms(T0 + 70), "step": "10s"}
    p99 = api.get("/api/v1/metrics/query", params=base)
    assert p99.status_code == 200, p99.text
    body = p99.json()
    assert body["type"] == "histogram" and body["agg"] == "p99" and body["unit"] == "ms"
    # 22 observations per step: 20 in (0,10], 2 in (100,1000]: p99 = 100 + 900 * (21.78 - 20) / 2
    assert body["series"][0]["values"] == [pytest.approx(901.0)] * 6
    avg = api.get("/api/v1/metrics/query", params={**base, "agg": "avg"}).json()
    assert avg["series"][0]["values"] == [pytest.approx(110 / 22)] * 6
    rate = api.get("/api/v1/metrics/query", params={**base, "agg": "rate", "group_by": "instance"}).json()
    assert [s["labels"]["instance"] for s in rate["series"]] == ["a", "b"]
    assert rate["series"][0]["values"] == [pytest.approx(1.1)] * 6
    assert api.get("/api/v1/metrics/query", params={**base, "agg": "max"}).status_code == 400
