"""End to end: `tracehouse-agent middleware` exports to a real `tracehouse up`; the metrics land in
the store and the metrics API answers from them, in agreement with what the servers report."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pymysql
import pytest
import redis

from tests.support import TraceHouseProcess, wait_for
from tests.test_middleware_receivers import PG_DSN, RedisServer, running_nginx

INTERVAL_S = 0.5


@contextmanager
def middleware_agent(tmp_path: Path, tracehouse: TraceHouseProcess, targets: str) -> Iterator[Path]:
    """`tracehouse-agent middleware` as its own process, exporting to `tracehouse`."""
    config = tmp_path / "middleware.toml"
    config.write_text(f'[exporter]\nendpoint = "{tracehouse.otlp_http_url}"\ninterval_s = {INTERVAL_S}\n\n{targets}')
    log_path = tmp_path / "middleware.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tracehouse.agents.middleware.cli", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        yield log_path
        assert process.poll() is None, log_path.read_text()[-3000:]
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log_path.read_text()[-3000:]


def stored(tracehouse: TraceHouseProcess, table: str, service: str, metric: str,
           extra: str = "1", parameters: dict[str, str] | None = None) -> list[tuple[float, float]]:
    """(time in s, value) of the stored points, oldest first."""
    rows = tracehouse.sql(
        f"SELECT toUnixTimestamp64Nano(TimeUnix) / 1e9 AS t, Value AS v FROM {table} "
        "WHERE ServiceName = {service:String} AND MetricName = {metric:String} AND " + extra + " ORDER BY TimeUnix",
        {"service": service, "metric": metric, **(parameters or {})})
    return [(float(r["t"]), float(r["v"])) for r in rows]


def test_redis_metrics_arrive_agree_with_the_server_and_survive_a_restart(
        shared_tracehouse: TraceHouseProcess, tmp_path: Path) -> None:
    th = shared_tracehouse
    service = f"cache-{uuid.uuid4().hex[:6]}"
    server = RedisServer(tmp_path)
    server.start()
    client = redis.Redis(port=server.port)
    try:
        with middleware_agent(tmp_path, th, f'[[redis]]\nname = "{service}"\nport = {server.port}\ntimeout_s = 1\n') \
                as log_path:
            first = wait_for(lambda: stored(th, "otel_metrics_sum", service, "redis.commands.processed"),
                             timeout_s=30, message="redis.commands.processed in the store")
            issued = 300
            for i in range(issued):
                client.set(f"k{i}", i)
            server_after_commands = client.info("stats")["total_commands_processed"]
            grown = wait_for(
                lambda: (p := stored(th, "otel_metrics_sum", service, "redis.commands.processed"))[-1][1]
                >= first[-1][1] + issued and p, timeout_s=30, message="the commands to show in the store")
            a_t, a = first[-1]
            assert grown
            b_t, b = next(point for point in grown if point[1] >= a + issued)
            # Each scrape's own INFO counts too: at most one per interval between the two points.
            assert issued <= b - a <= issued + (b_t - a_t) / INTERVAL_S + 3
            assert b <= client.info("stats")["total_commands_processed"]
            assert b >= server_after_commands - 2  # the test's INFO and at most one scrape before it
            keys = stored(th, "otel_metrics_gauge", service, "redis.db.keys", "Attributes['db'] = '0'")
            assert keys and keys[-1][1] == issued

            # The API lists the metric with its reporting service, and turns it into a rate.
            catalogue = httpx.get(f"{th.api_url}/api/v1/metrics", params={"prefix": "redis."}, timeout=30).json()
            listed = {m["name"]: m for m in catalogue["metrics"]}
            assert listed["redis.commands.processed"]["type"] == "counter"
            assert service in listed["redis.commands.processed"]["services"]
            assert service in listed["redis.clients.connected"]["services"]

            server.stop()
            wait_for(lambda: stored(th, "otel_metrics_gauge", service, "up")[-1][1] == 0.0, timeout_s=30,
                     message="up = 0 in the store once redis is stopped")
            listed_down = httpx.get(f"{th.api_url}/api/v1/middleware", timeout=30).json()["instances"]
            assert [(i["system"], i["up"]) for i in listed_down if i["name"] == service] == [("redis", False)]
            server.start()
            client = redis.Redis(port=server.port)
            wait_for(lambda: stored(th, "otel_metrics_gauge", service, "up")[-1][1] == 1.0, timeout_s=30,
                     message="up = 1 in the store once redis is back")
            for i in range(50):
                client.set(f"again{i}", i)
            wait_for(lambda: stored(th, "otel_metrics_sum", service, "redis.commands.processed")[-1][1] >= 50,
                     timeout_s=30, message="the restarted server's commands")
        log_text = log_path.read_text()
        assert "is down" in log_text and "is back up" in log_text
        values = [v for _t, v in stored(th, "otel_metrics_sum", service, "redis.commands.processed")]
        assert min(values[values.index(max(values)):]) < max(values)  # the counter did reset

        # Rates: never negative across the reset; over one step spanning the whole run, the rate times
        # the time the points cover is the counter's growth, the restarted server's counts included.
        points = stored(th, "otel_metrics_sum", service, "redis.commands.processed")
        growth = sum(b - a if b >= a else b for (_ta, a), (_tb, b) in zip(points, points[1:], strict=False))
        base = {"name": "redis.commands.processed", "attr": f"service.name:{service}",
                "start": str(int(points[0][0] * 1000) - 1000), "end": str(int(points[-1][0] * 1000) + 1000)}
        fine = httpx.get(f"{th.api_url}/api/v1/metrics/query", params={**base, "step": "1s"}, timeout=30)
        assert fine.status_code == 200, fine.text
        assert fine.json()["agg"] == "rate"
        rates = [v for v in fine.json()["series"][0]["values"] if v is not None]
        assert rates and min(rates) >= 0
        whole = httpx.get(f"{th.api_url}/api/v1/metrics/query", params={**base, "step": "1d"}, timeout=30).json()
        [rate] = [v for v in whole["series"][0]["values"] if v is not None]
        assert rate * (points[-1][0] - points[0][0]) == pytest.approx(growth)
        assert growth >= issued + 50
    finally:
        client.close()
        server.stop()


def test_postgresql_commits_arrive_and_agree_with_pg_stat_database(
        shared_tracehouse: TraceHouseProcess, tmp_path: Path) -> None:
    th = shared_tracehouse
    service = f"billing-db-{uuid.uuid4().hex[:6]}"
    database = f"mw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    by_database = "Attributes['postgresql.database.name'] = {database:String}"
    try:
        with middleware_agent(tmp_path, th, f'[[postgresql]]\nname = "{service}"\nuser = "postgres"\n'):
            before = wait_for(lambda: stored(th, "otel_metrics_sum", service, "postgresql.commits", by_database,
                                             {"database": database}), timeout_s=30, message="postgresql.commits")
            committed = 40
            with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as conn:
                conn.execute("CREATE TABLE t (i int)")
                conn.commit()
                for i in range(committed - 1):
                    conn.execute("INSERT INTO t VALUES (%s)", (i,))
                    conn.commit()

            def agreed() -> float | None:
                points = stored(th, "otel_metrics_sum", service, "postgresql.commits", by_database,
                                {"database": database})
                with psycopg.connect(PG_DSN, autocommit=True) as check:
                    row = check.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                        (database,)).fetchone()
                assert row is not None
                latest = points[-1][1]
                return latest if latest >= before[-1][1] + committed and latest == row[0] else None

            after = wait_for(agreed, timeout_s=30, message="the stored commits to match pg_stat_database")
            assert after is not None
            # The backend's start-up transaction and an autovacuum visit may count as well.
            assert committed <= after - before[-1][1] <= committed + 2
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_mariadb_and_nginx_metrics_arrive_from_one_agent(shared_tracehouse: TraceHouseProcess,
                                                          tmp_path: Path) -> None:
    with running_nginx(tmp_path) as nginx_url:
        mariadb_and_nginx(shared_tracehouse, tmp_path, nginx_url)


def mariadb_and_nginx(th: TraceHouseProcess, tmp_path: Path, private_nginx: str) -> None:
    mysql_service, nginx_service = f"orders-db-{uuid.uuid4().hex[:6]}", f"edge-{uuid.uuid4().hex[:6]}"
    table = f"mw_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test",
                                 autocommit=True)
    inserts = "Attributes['command'] = 'insert'"
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
        targets = (f'[[mysql]]\nname = "{mysql_service}"\nuser = "root"\n\n'
                   f'[[nginx]]\nname = "{nginx_service}"\nurl = "{private_nginx}/nginx_status"\n')
        with middleware_agent(tmp_path, th, targets):
            before_inserts = wait_for(lambda: stored(th, "otel_metrics_sum", mysql_service, "mysql.commands", inserts),
                                      timeout_s=30, message="mysql.commands in the store")[-1][1]
            before_requests = wait_for(lambda: stored(th, "otel_metrics_sum", nginx_service, "nginx.requests"),
                                       timeout_s=30, message="nginx.requests in the store")[-1][1]
            inserted, requested = 25, 20
            with connection.cursor() as cursor:
                for i in range(inserted):
                    cursor.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
            for _ in range(requested):
                assert httpx.get(private_nginx + "/").status_code == 200
            wait_for(lambda: stored(th, "otel_metrics_sum", mysql_service, "mysql.commands", inserts)[-1][1]
                     >= before_inserts + inserted, timeout_s=30, message="the inserts in the store")
            wait_for(lambda: stored(th, "otel_metrics_sum", nginx_service, "nginx.requests")[-1][1]
                     >= before_requests + requested, timeout_s=30, message="the requests in the store")
            with connection.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'Com_insert'")
                row = cursor.fetchone()
            assert row is not None
            assert stored(th, "otel_metrics_sum", mysql_service, "mysql.commands", inserts)[-1][1] <= float(row[1])
            up = {i["name"]: i["up"] for i in httpx.get(f"{th.api_url}/api/v1/middleware", timeout=30).json()["instances"]}
            assert up[mysql_service] is True and up[nginx_service] is True
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        connection.close()
