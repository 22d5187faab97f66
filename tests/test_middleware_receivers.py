"""Middleware receivers against the machine's real Redis, MariaDB, PostgreSQL and an nginx started
here: what they export through a real OpenTelemetry MeterProvider agrees with what each server
reports about itself."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pymysql
import pytest
import redis
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.support import free_port, wait_for
from tracehouse.agents.middleware.base import UP_METRIC, Receiver
from tracehouse.agents.middleware.emitter import InstanceMetrics
from tracehouse.agents.middleware.mysql_receiver import MySQLReceiver
from tracehouse.agents.middleware.nginx_receiver import NginxReceiver
from tracehouse.agents.middleware.postgresql_receiver import PostgreSQLReceiver
from tracehouse.agents.middleware.redis_receiver import RedisReceiver

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"

Points = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Scraper:
    """A receiver behind a real MeterProvider with an in-memory reader: `collect()` scrapes once
    and returns every exported point, keyed by metric name and point attributes."""

    def __init__(self, receiver: Receiver) -> None:
        self.reader = InMemoryMetricReader()
        self.instance = InstanceMetrics(receiver, self.reader)

    def collect(self) -> Points:
        self.instance.state.refresh()
        data = self.reader.get_metrics_data()
        points: Points = {}
        assert data is not None
        for resource_metrics in data.resource_metrics:
            self.resource = dict(resource_metrics.resource.attributes)
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, tuple(sorted((k, str(v)) for k, v in (point.attributes or {}).items())))
                        points[key] = float(point.value)  # type: ignore[union-attr]
        return points

    def close(self) -> None:
        self.instance.shutdown()


def collect_until(scraper: Scraper, accept: Callable[[Points], bool], message: str,
                  timeout_s: float = 20.0) -> Points:
    """Collects until `accept` takes the points; fails at the deadline."""
    found: list[Points] = []

    def attempt() -> bool:
        points = scraper.collect()
        if accept(points):
            found.append(points)
            return True
        return False

    wait_for(attempt, timeout_s=timeout_s, message=message)
    return found[-1]


def value(points: Points, name: str, **attributes: str) -> float:
    key = (name, tuple(sorted(attributes.items())))
    assert key in points, f"{name} {attributes} not exported; have {sorted({k[0] for k in points})}"
    return points[key]


class RedisServer:
    """A redis-server of the test's own on a free port, so that nobody else's commands count."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis.Redis(port=self.port, socket_timeout=1).ping(), timeout_s=15,
                 message=f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


NGINX_CONF = """
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /nginx_status {{ stub_status; }}
    location / {{ return 200 "ok\\n"; }}
  }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        pytest.fail("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


@contextlib.contextmanager
def running_nginx(directory: Path) -> Iterator[str]:
    """An nginx of the test's own with stub_status, on a free port; yields its base URL."""
    port = free_port()
    prefix = directory / "nginx"
    prefix.mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port))
    process = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(prefix), "-e", str(prefix / "error.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(base + "/", timeout=1).status_code == 200, timeout_s=15, message="nginx")
        yield base
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def private_nginx(tmp_path: Path) -> Iterator[str]:
    with running_nginx(tmp_path) as base:
        yield base


def test_redis_commands_processed_grows_by_the_commands_issued(private_redis: RedisServer) -> None:
    scraper = Scraper(RedisReceiver("cache", "127.0.0.1", private_redis.port))
    client = redis.Redis(port=private_redis.port)
    client.ping()  # connect (and send the client's handshake) before the first scrape
    try:
        before = scraper.collect()
        issued = 250
        for i in range(issued):
            client.set(f"key:{i}", i)
        after = scraper.collect()
        server_says = client.info("stats")["total_commands_processed"]
    finally:
        scraper.close()
        client.close()
    grown = value(after, "redis.commands.processed") - value(before, "redis.commands.processed")
    # The receiver's own INFO of the first scrape is counted too; the second one counts after it replied.
    assert grown == issued + 1
    # The test's own INFO reports the value after the second scrape's INFO.
    assert server_says == value(after, "redis.commands.processed") + 1
    assert value(after, "redis.db.keys", db="0") == issued
    assert value(after, "redis.clients.connected") == 2  # the receiver and the test's client
    assert value(after, UP_METRIC) == 1
    assert scraper.resource["service.name"] == "cache"
    assert scraper.resource["server.port"] == private_redis.port
    assert scraper.resource["db.system"] == "redis"
    assert "127.0.0.1" not in str(scraper.resource.get("tracehouse.middleware.addresses", ""))  # only aliases


def test_a_host_name_is_resolved_for_matching_by_address() -> None:
    receiver = RedisReceiver("cache", "localhost", 6379)
    aliases = str(receiver.resource_attributes()["tracehouse.middleware.addresses"]).split(",")
    assert "127.0.0.1" in aliases or "::1" in aliases


def test_redis_keyspace_hit_ratio_matches_the_lookups(private_redis: RedisServer) -> None:
    scraper = Scraper(RedisReceiver("cache", "127.0.0.1", private_redis.port))
    client = redis.Redis(port=private_redis.port)
    try:
        client.set("present", 1)
        for _ in range(3):
            client.get("present")
        client.get("absent")
        points = scraper.collect()
    finally:
        scraper.close()
        client.close()
    assert value(points, "redis.keyspace.hits") == 3
    assert value(points, "redis.keyspace.misses") == 1
    assert value(points, "redis.keyspace.hit_ratio") == pytest.approx(0.75)
    assert value(points, "redis.replication.role", role="master") == 1


def test_the_shared_redis_is_read() -> None:
    scraper = Scraper(RedisReceiver("redis-shared", "127.0.0.1", 6379))
    try:
        points = scraper.collect()
    finally:
        scraper.close()
    assert value(points, UP_METRIC) == 1
    assert value(points, "redis.memory.used") > 0
    assert value(points, "redis.uptime") > 0


def test_a_stopped_redis_reports_up_zero_and_recovers(private_redis: RedisServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    scraper = Scraper(RedisReceiver("cache", "127.0.0.1", private_redis.port, timeout_s=1))
    try:
        assert value(scraper.collect(), UP_METRIC) == 1
        redis.Redis(port=private_redis.port).set("before-restart", 1)
        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="tracehouse.agents.middleware"):
            down = scraper.collect()
        assert value(down, UP_METRIC) == 0
        assert ("redis.commands.processed", ()) not in down or scraper.instance.state.latest().samples == []
        assert any("is down" in r.getMessage() and str(private_redis.port) in r.getMessage() for r in caplog.records)
        # Still down on the next collection: no crash, no second warning.
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tracehouse.agents.middleware"):
            assert value(scraper.collect(), UP_METRIC) == 0
        assert not [r for r in caplog.records if "is down" in r.getMessage()]
        private_redis.start()
        with caplog.at_level(logging.INFO, logger="tracehouse.agents.middleware"):
            back = collect_until(scraper, lambda p: value(p, UP_METRIC) == 1, "the receiver to see redis again")
        assert any("is back up" in r.getMessage() for r in caplog.records)
        # A fresh server: its counter restarted from zero (the query side turns that into a reset).
        assert value(back, "redis.commands.processed") < 10
        assert value(back, "redis.uptime") < 60
    finally:
        scraper.close()


def test_mysql_status_agrees_with_the_server() -> None:
    table = f"mw_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test",
                                 autocommit=True)

    def server_status(variable: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE %s", (variable,))
            row = cursor.fetchone()
            assert row is not None
            return float(row[1])

    scraper = Scraper(MySQLReceiver("orders-db", "127.0.0.1", 3306, user="root"))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY)")
        before = scraper.collect()
        inserted, slow = 40, 5
        with connection.cursor() as cursor:
            for i in range(inserted):
                cursor.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
            cursor.execute("SET SESSION long_query_time = 0")  # every statement of this session is slow
            for _ in range(slow):
                cursor.execute(f"SELECT COUNT(*) FROM {table}")
            cursor.execute("SET SESSION long_query_time = DEFAULT")
        server_before = server_status("Com_insert")
        after = scraper.collect()
        server_after = server_status("Com_insert")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        connection.close()
        scraper.close()
    inserts = value(after, "mysql.commands", command="insert") - value(before, "mysql.commands", command="insert")
    assert inserts >= inserted  # other clients of the shared server may insert too
    # The scraped value lies between what the server said just before and just after the scrape.
    assert server_before <= value(after, "mysql.commands", command="insert") <= server_after
    slow_grown = value(after, "mysql.query.slow.count") - value(before, "mysql.query.slow.count")
    assert slow_grown >= slow
    assert value(after, "mysql.threads", kind="connected") >= 2
    assert 0 <= value(after, "mysql.buffer_pool.hit_ratio") <= 1
    assert value(after, "mysql.connection.max") > 0
    assert value(after, UP_METRIC) == 1
    assert scraper.resource["db.system"] == "mysql"


def test_postgresql_commits_grow_by_the_committed_transactions() -> None:
    """In a database of the test's own, so that other clients of the shared server do not count."""
    database = f"mw_{uuid.uuid4().hex[:10]}"
    label = {"postgresql.database.name": database}
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    scraper = Scraper(PostgreSQLReceiver("billing-db", "127.0.0.1", 5432, user="postgres"))
    committed, rolled_back = 37, 5
    try:
        before = scraper.collect()
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as conn:
            conn.execute("CREATE TABLE items (id int)")
            conn.commit()
            for i in range(committed - 1):
                conn.execute("INSERT INTO items VALUES (%s)", (i,))
                conn.commit()
            for i in range(rolled_back):
                conn.execute("INSERT INTO items VALUES (%s)", (-i,))
                conn.rollback()

        def server_agrees() -> Points | None:
            # A backend reports its statistics when it exits, shortly after the client closed.
            points = scraper.collect()
            with psycopg.connect(PG_DSN, autocommit=True) as check:
                row = check.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
                                    (database,)).fetchone()
            scraped = (value(points, "postgresql.commits", **label), value(points, "postgresql.rollbacks", **label))
            done = scraped[1] == rolled_back and scraped[0] >= value(before, "postgresql.commits", **label) + committed
            return points if done and row == scraped else None

        agreed = wait_for(server_agrees, timeout_s=30, message="pg_stat_database to show the transactions")
        assert agreed is not None
        after = agreed
    finally:
        scraper.close()
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    grown = value(after, "postgresql.commits", **label) - value(before, "postgresql.commits", **label)
    # The backend's start-up reads the catalog in a transaction of its own, and autovacuum may visit
    # a new database once: both count as commits too.
    assert committed <= grown <= committed + 2
    assert value(after, "postgresql.rollbacks", **label) - value(before, "postgresql.rollbacks", **label) == rolled_back
    # (CREATE TABLE inserts catalog rows as well)
    assert value(after, "postgresql.rows", operation="inserted", **label) >= committed - 1 + rolled_back
    assert 0 <= value(after, "postgresql.cache.hit_ratio", **label) <= 1
    assert value(after, "postgresql.backends", state="active") >= 1  # the receiver's own query
    assert value(after, "postgresql.connection.max") > 0
    assert value(after, UP_METRIC) == 1


def test_postgresql_longest_running_query_is_seen() -> None:
    scraper = Scraper(PostgreSQLReceiver("billing-db", "127.0.0.1", 5432, user="postgres", database="test"))
    sleeper = psycopg.connect(PG_DSN, autocommit=True)
    pid = sleeper.info.backend_pid

    def sleep_until_cancelled() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            sleeper.execute("SELECT pg_sleep(30)")

    worker = threading.Thread(target=sleep_until_cancelled, daemon=True)
    worker.start()
    try:
        points = collect_until(scraper, lambda p: value(p, "postgresql.query.longest_duration") >= 1,
                               "a query running for a second")
        assert value(points, "postgresql.backends", state="active") >= 2
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        worker.join(timeout=10)
        sleeper.close()
        scraper.close()


def test_nginx_requests_grow_by_the_requests_sent(private_nginx: str) -> None:
    port = int(private_nginx.rsplit(":", 1)[1])
    scraper = Scraper(NginxReceiver("edge", "127.0.0.1", port, url=private_nginx + "/nginx_status"))
    try:
        before = scraper.collect()
        sent = 30
        for _ in range(sent):
            assert httpx.get(private_nginx + "/").status_code == 200  # a new connection each time
        after = scraper.collect()
    finally:
        scraper.close()
    # The scrape's own stub_status request counts as well.
    assert value(after, "nginx.requests") - value(before, "nginx.requests") == sent + 1
    assert value(after, "nginx.connections_accepted") - value(before, "nginx.connections_accepted") == sent + 1
    assert value(after, "nginx.connections_handled") == value(after, "nginx.connections_accepted")
    assert value(after, "nginx.connections_current", state="writing") >= 1
    assert value(after, UP_METRIC) == 1


def test_a_page_that_is_not_stub_status_counts_as_down(private_nginx: str) -> None:
    port = int(private_nginx.rsplit(":", 1)[1])
    scraper = Scraper(NginxReceiver("edge", "127.0.0.1", port, url=private_nginx + "/"))
    try:
        assert value(scraper.collect(), UP_METRIC) == 0
        assert "not an nginx stub_status page" in scraper.instance.state.latest().error
    finally:
        scraper.close()


def test_every_sample_name_is_in_the_catalogue(private_redis: RedisServer, private_nginx: str) -> None:
    """A sample whose name has no instrument would be silently dropped."""
    receivers: list[Any] = [
        RedisReceiver("a", "127.0.0.1", private_redis.port),
        MySQLReceiver("b", "127.0.0.1", 3306),
        PostgreSQLReceiver("c", "127.0.0.1", 5432),
        NginxReceiver("d", "127.0.0.1", 0, url=private_nginx + "/nginx_status"),
    ]
    for receiver in receivers:
        names = {s.name for s in receiver.scrape()}
        receiver.close()
        assert names, receiver.system
        assert names <= {spec.name for spec in receiver.catalogue}, receiver.system
