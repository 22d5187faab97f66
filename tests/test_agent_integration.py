"""The agent end to end against a running TraceHouse: a real Flask app calling a real FastAPI app,
each under `tracehouse-agent run` in its own process, the second querying the machine's PostgreSQL,
MariaDB, Redis and an sqlite3 file; failover between two collectors when one is killed; a collector
answering 429; host metrics compared with psutil."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.apps.fastapi_back import SECRET
from tests.apps.otlp_peer import OtlpPeer, running_peer
from tests.support import TraceHouseProcess, free_port, start_tracehouse, wait_for
from tracehouse import storage

REPO = Path(__file__).resolve().parents[1]
AGENT = str(Path(sys.executable).with_name("tracehouse-agent"))
SERVER_URL = os.environ.get("TRACEHOUSE_TEST_CLICKHOUSE_URL")

SPANS_SQL = """
SELECT TraceId AS trace_id, SpanId AS span_id, ParentSpanId AS parent_id, ServiceName AS service,
       SpanKind AS kind, SpanName AS name,
       SpanAttributes['db.system'] AS db_system, SpanAttributes['db.statement'] AS statement,
       SpanAttributes['http.route'] AS route,
       if(SpanAttributes['http.response.status_code'] != '', SpanAttributes['http.response.status_code'],
          SpanAttributes['http.status_code']) AS status_code,
       if(SpanAttributes['http.request.method'] != '', SpanAttributes['http.request.method'],
          SpanAttributes['http.method']) AS method,
       ResourceAttributes['service.instance.id'] AS instance_id
FROM otel_traces
WHERE ServiceName IN ({services:Array(String)})
"""


def agent_env(endpoints: list[str], **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACEHOUSE_"))}
    env.update({"PYTHONPATH": str(REPO), "TRACEHOUSE_ENDPOINTS": ",".join(endpoints),
                "TRACEHOUSE_SCHEDULE_DELAY_S": "0.2", "TRACEHOUSE_METRICS_INTERVAL_S": "1",
                "TRACEHOUSE_ENDPOINT_COOLDOWN_S": "5"})
    env.update(extra)
    return env


@contextmanager
def app_process(command: list[str], env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A command under `tracehouse-agent run`, up once GET /ping answers; stopped with SIGTERM (agent flushes)."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([AGENT, "run", "--", *command], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{command} exited {process.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200

    try:
        wait_for(up, timeout_s=60, message=f"{command[:3]} to answer on {port}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the server and every worker it started
                process.wait()
        log.close()


def front_and_back(tmp_path: Path, endpoints: list[str], **extra: str) -> tuple[list[str], dict[str, str], int,
                                                                                 list[str], dict[str, str], int]:
    back_port, front_port = free_port(), free_port()
    back_cmd = [sys.executable, "-m", "uvicorn", "tests.apps.fastapi_back:app", "--host", "127.0.0.1",
                "--port", str(back_port)]
    back_env = agent_env(endpoints, TRACEHOUSE_SERVICE_NAME="inventory", SQLITE_PATH=str(tmp_path / "stock.db"),
                         **extra)
    front_cmd = [sys.executable, "-m", "tests.apps.flask_front"]
    front_env = agent_env(endpoints, TRACEHOUSE_SERVICE_NAME="shop", PORT=str(front_port),
                          BACKEND_URL=f"http://127.0.0.1:{back_port}", **extra)
    return back_cmd, back_env, back_port, front_cmd, front_env, front_port


def spans_of(collector: TraceHouseProcess, services: tuple[str, ...] = ("shop", "inventory")) -> list[dict[str, Any]]:
    return collector.sql(SPANS_SQL, {"services": list(services)})


def test_spans_across_two_services_and_four_databases(tracehouse: TraceHouseProcess, tmp_path: Path) -> None:
    back_cmd, back_env, back_port, front_cmd, front_env, front_port = front_and_back(
        tmp_path, [tracehouse.otlp_http_url])
    with app_process(back_cmd, back_env, back_port, tmp_path / "back.log") as back, \
            app_process(front_cmd, front_env, front_port, tmp_path / "front.log") as front:
        for item in (1, 2, 3):
            response = httpx.get(f"http://127.0.0.1:{front_port}/checkout/{item}", timeout=30)
            assert response.status_code == 200, response.text
            assert response.json()["inventory"]["stock"] == 7
        back_pid, front_pid = back.pid, front.pid  # `run` execs the command: same pid

        def complete_traces() -> list[dict[str, Any]]:
            rows = spans_of(tracehouse)
            checkouts = [r for r in rows if r["service"] == "shop" and r["kind"] in ("Server", "SPAN_KIND_SERVER")
                         and r["route"] == "/checkout/<int:item_id>"]
            db_systems = {(r["trace_id"], r["db_system"]) for r in rows if r["db_system"]}
            complete = [c for c in checkouts
                        if all((c["trace_id"], s) in db_systems for s in ("postgresql", "mysql", "redis", "sqlite"))]
            return rows if len(complete) == 3 else []

        rows = wait_for(complete_traces, timeout_s=60, message="three complete traces in otel_traces")

    by_id = {r["span_id"]: r for r in rows}
    host = socket.gethostname()
    for checkout in [r for r in rows if r["service"] == "shop" and r["route"] == "/checkout/<int:item_id>"]:
        trace = [r for r in rows if r["trace_id"] == checkout["trace_id"]]
        assert checkout["parent_id"] == ""  # the root
        assert (checkout["method"], checkout["status_code"]) == ("GET", "200")
        client = [r for r in trace if r["service"] == "shop" and r["kind"] in ("Client", "SPAN_KIND_CLIENT")]
        assert len(client) == 1 and client[0]["parent_id"] == checkout["span_id"]
        server = [r for r in trace if r["service"] == "inventory" and r["kind"] in ("Server", "SPAN_KIND_SERVER")]
        assert len(server) == 1
        assert server[0]["parent_id"] == client[0]["span_id"]  # the link across the two processes
        assert server[0]["route"] == "/inventory/{item_id}" and server[0]["status_code"] == "200"
        db_spans = [r for r in trace if r["db_system"]]
        assert {r["db_system"] for r in db_spans} == {"postgresql", "mysql", "redis", "sqlite"}
        for span in db_spans:
            assert span["service"] == "inventory" and span["kind"] in ("Client", "SPAN_KIND_CLIENT")
            ancestor = span
            while ancestor["parent_id"] and ancestor["span_id"] != server[0]["span_id"]:
                ancestor = by_id[ancestor["parent_id"]]
            assert ancestor["span_id"] == server[0]["span_id"]  # every query sits under the request
            assert SECRET not in span["statement"], span
            assert span["statement"], span
        statements = {r["statement"] for r in db_spans}
        assert "SELECT %s::int + ? AS next_id, ? AS tag" in statements
        assert "SELECT %s * ? AS doubled, ? AS tag" in statements
        assert "SET ? ?" in statements
        assert "INSERT OR REPLACE INTO stock VALUES (?, ?, ?)" in statements
    instances = {(r["service"], r["instance_id"]) for r in rows}
    shop_ids = {i for s, i in instances if s == "shop"}
    inventory_ids = {i for s, i in instances if s == "inventory"}
    assert len(shop_ids) == 1 and len(inventory_ids) == 1
    shop_host, shop_port, shop_start, shop_pid = next(iter(shop_ids)).split(":")
    inv_host, inv_port, inv_start, inv_pid = next(iter(inventory_ids)).split(":")
    assert (shop_host, shop_port, shop_pid) == (host, str(front_port), str(front_pid))
    assert (inv_host, inv_port, inv_pid) == (host, str(back_port), str(back_pid))
    assert int(shop_start) > 0 and int(inv_start) > 0


def test_heartbeat_and_host_metrics_are_plausible(tracehouse: TraceHouseProcess, tmp_path: Path) -> None:
    port = free_port()
    env = agent_env([tracehouse.otlp_http_url], TRACEHOUSE_SERVICE_NAME="metered", PORT=str(port),
                    BACKEND_URL="http://127.0.0.1:9")
    with app_process([sys.executable, "-m", "tests.apps.flask_front"], env, port, tmp_path / "app.log") as app:
        def latest(table: str, metric: str, where: str = "1") -> list[dict[str, Any]]:
            return tracehouse.sql(
                f"SELECT Value AS value, ResourceAttributes['service.instance.id'] AS instance_id, "
                f"Attributes AS attributes FROM {table} "
                f"WHERE ServiceName = 'metered' AND MetricName = {{metric:String}} AND {where} "
                f"ORDER BY TimeUnix DESC LIMIT 1", {"metric": metric})

        def close_to(reported: list[dict[str, Any]], actual: float) -> bool:
            return bool(reported) and abs(float(reported[0]["value"]) - actual) <= 0.2 * actual

        # Memory moves while the test runs: the newest point must come within 20 % of psutil's reading.
        wait_for(lambda: close_to(latest("otel_metrics_sum", "system.memory.usage",
                                         "Attributes['system.memory.state'] = 'used'"), psutil.virtual_memory().used),
                 timeout_s=60, message="system.memory.usage (used) within 20 % of psutil")
        wait_for(lambda: close_to(latest("otel_metrics_sum", "process.memory.usage"),
                                  psutil.Process(app.pid).memory_info().rss),
                 timeout_s=30, message="process.memory.usage within 20 % of the app's RSS")
        available = latest("otel_metrics_sum", "linux.memory.available")
        assert 0 < float(available[0]["value"]) <= psutil.virtual_memory().total

        def cpu_stats() -> dict[str, Any] | None:
            row = tracehouse.sql(
                "SELECT count() AS n, min(Value) AS low, max(Value) AS high FROM otel_metrics_gauge "
                "WHERE ServiceName = 'metered' AND MetricName = 'system.cpu.utilization'")[0]
            return row if int(row["n"]) > 0 else None

        cpu = wait_for(cpu_stats, timeout_s=30, message="system.cpu.utilization")
        assert cpu is not None
        assert 0.0 <= float(cpu["low"]) <= float(cpu["high"]) <= 1.0
        heartbeat = wait_for(lambda: latest("otel_metrics_gauge", "tracehouse.agent.heartbeat"), timeout_s=30,
                             message="heartbeat")
        host, instance_port, _start, pid = heartbeat[0]["instance_id"].split(":")
        assert (instance_port, pid) == (str(port), str(app.pid))
        assert float(heartbeat[0]["value"]) == 1.0
        names = {r["name"] for r in tracehouse.sql(
            "SELECT DISTINCT MetricName AS name FROM merge(currentDatabase(), '^otel_metrics_(sum|gauge)$') "
            "WHERE ServiceName = 'metered'")}
        for name in ("system.cpu.load_average.1m", "system.network.io", "system.disk.io", "system.filesystem.usage",
                     "system.paging.usage", "process.cpu.utilization", "process.thread.count",
                     "process.open_file_descriptor.count", "cpython.gc.collections"):
            assert name in names, (name, sorted(names))


USER_AGENT = "failover-test-client"
FROM_TEST_CLIENT = (f"SpanKind IN ('Server', 'SPAN_KIND_SERVER') AND (SpanAttributes['user_agent.original'] = "
                    f"'{USER_AGENT}' OR SpanAttributes['http.user_agent'] = '{USER_AGENT}')")


def _second_store(tmp_path: Path, first: str) -> str:
    return first if SERVER_URL else storage.dsn_for_data_path(tmp_path / "second-data")


@pytest.mark.slow
def test_failover_when_a_collector_is_killed_loses_no_span(server_store_dsn: str, tmp_path: Path) -> None:
    first = start_tracehouse(server_store_dsn, log_path=str(tmp_path / "first.log"))
    second = start_tracehouse(_second_store(tmp_path, server_store_dsn), log_path=str(tmp_path / "second.log"))
    port = free_port()
    env = agent_env([first.otlp_http_url, second.otlp_http_url], TRACEHOUSE_SERVICE_NAME="failover",
                    PORT=str(port), BACKEND_URL="http://127.0.0.1:9", TRACEHOUSE_SCHEDULE_DELAY_S="0.05",
                    TRACEHOUSE_HOST_METRICS="false")
    requests_sent = 0
    try:
        with app_process([sys.executable, "-m", "tests.apps.flask_front"], env, port, tmp_path / "app.log"), \
                httpx.Client(headers={"User-Agent": USER_AGENT}) as client:
            def first_has_some() -> bool:
                nonlocal requests_sent
                for _ in range(10):
                    assert client.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200
                    requests_sent += 1
                return first.count("otel_traces", "ServiceName = 'failover' AND " + FROM_TEST_CLIENT) > 0

            wait_for(first_has_some, timeout_s=60, message="the first collector to have received spans too")
            first.stop(signal.SIGKILL)  # mid-run, no goodbye
            for _ in range(150):
                assert client.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200
                requests_sent += 1
        # The app flushed at SIGTERM; now read what each collector stored.
        second_ids = {r["id"] for r in second.sql(
            "SELECT DISTINCT SpanId AS id FROM otel_traces WHERE ServiceName = 'failover' AND " + FROM_TEST_CLIENT)}
    finally:
        second.stop()
        first.stop(signal.SIGKILL)
    reopened = start_tracehouse(server_store_dsn, log_path=str(tmp_path / "first-again.log"))
    try:
        first_ids = {r["id"] for r in reopened.sql(
            "SELECT DISTINCT SpanId AS id FROM otel_traces WHERE ServiceName = 'failover' AND " + FROM_TEST_CLIENT)}
    finally:
        reopened.stop()
    assert first_ids and second_ids, (len(first_ids), len(second_ids))  # both took a share
    assert len(first_ids | second_ids) == requests_sent  # every request's server span is stored somewhere


def test_a_collector_answering_429_is_backed_off_then_used_again(tracehouse: TraceHouseProcess,
                                                                tmp_path: Path) -> None:
    # A front for the real collector that answers 429 (Retry-After: 2) three times, then forwards.
    gate = OtlpPeer(forward_to=tracehouse.otlp_http_url, script=[(429, "2")] * 3)
    with running_peer(gate):
        port = free_port()
        env = agent_env([gate.url], TRACEHOUSE_SERVICE_NAME="throttled", PORT=str(port),
                        BACKEND_URL="http://127.0.0.1:9", TRACEHOUSE_METRICS_ENABLED="false")
        with app_process([sys.executable, "-m", "tests.apps.flask_front"], env, port, tmp_path / "app.log"), \
                httpx.Client() as client:
            for _ in range(20):
                assert client.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200
            wait_for(lambda: tracehouse.count("otel_traces", "ServiceName = 'throttled'") >= 20, timeout_s=60,
                     message="all 20 server spans to be stored")
            for _ in range(5):
                assert client.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200
            wait_for(lambda: tracehouse.count("otel_traces", "ServiceName = 'throttled'") >= 25, timeout_s=30,
                     message="later spans through the same endpoint")
    attempts = [r for r in gate.received if r.path == "/v1/traces"]
    assert [r.status for r in attempts[:4]] == [429, 429, 429, 200]
    gaps = [b.at - a.at for a, b in zip(attempts[:3], attempts[1:4], strict=True)]
    assert all(gap >= 1.9 for gap in gaps), gaps  # Retry-After honoured
    assert all(r.status == 200 for r in attempts[3:]) and len(attempts) >= 5  # used again afterwards
    assert tracehouse.count("otel_traces", "ServiceName = 'throttled'") == \
        len({s.span_id for r in attempts if r.status == 200 for s in r.spans()})  # nothing lost, nothing doubled


def test_otlp_grpc_export_with_a_dead_endpoint_first(tracehouse: TraceHouseProcess, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = agent_env([dead, f"http://{tracehouse.otlp_grpc_endpoint}"], TRACEHOUSE_PROTOCOL="grpc",
                    TRACEHOUSE_SERVICE_NAME="grpc-script", TRACEHOUSE_HOST_METRICS="false")
    for _ in range(3):  # three processes: each starts at a random endpoint, so some start at the dead one
        result = subprocess.run([AGENT, "run", "--", sys.executable, "-m", "tests.apps.sqlite_script"], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.strip() == "rows 0", result.stderr
    def stored() -> list[dict[str, Any]]:
        rows = tracehouse.sql(
            "SELECT SpanAttributes['db.statement'] AS statement, ResourceAttributes['service.instance.id'] AS instance "
            "FROM otel_traces WHERE ServiceName = 'grpc-script'")
        return rows if len(rows) >= 6 else []  # two statements per process

    rows = wait_for(stored, timeout_s=30, message="the three processes' spans over gRPC")
    assert {r["statement"] for r in rows} == {"CREATE TABLE users (email TEXT)",
                                              "SELECT count(*) FROM users WHERE email = ?"}
    assert len(rows) == 6 and len({r["instance"] for r in rows}) == 3
