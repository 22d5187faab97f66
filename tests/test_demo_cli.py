"""`tracehouse demo` end to end: TraceHouse and the shop start as real processes, every service's traces
arrive within 30 s, the service map shows the shop (and its cycle), the planted problems are found,
and on Ctrl-C (SIGINT) no process of the demo is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support import free_port, wait_for
from tracehouse.demo.cli import DEFAULT_POSTGRES, DEFAULT_REDIS, RUN_MARKER, SERVICE_NAMES, redis_prefix

EXPECTED_EDGES = {("gateway", "orders"), ("orders", "inventory"), ("orders", "payments"),
                  ("payments", "notifications"), ("notifications", "orders")}


def _get(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def _demo_processes(run_id: str) -> list[psutil.Process]:
    """Every live process that carries this demo run's marker in its environment."""
    found = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and process.environ().get(RUN_MARKER) == run_id:
                found.append(process)
        except psutil.Error:
            continue
    return found


def _redis_keys(run_id: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(DEFAULT_REDIS)
    try:
        return list(client.scan_iter(match=f"{redis_prefix(run_id)}:*"))
    finally:
        client.close()


def _postgres_schema_exists(schema: str) -> bool:
    import psycopg

    with psycopg.connect(DEFAULT_POSTGRES) as connection:
        return connection.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def _alive(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _start_demo(dsn: str, tmp_path: Path, *options: str) -> tuple[subprocess.Popen[bytes], Path, int]:
    http_port = free_port()
    output = tmp_path / "demo.out"
    argv = [sys.executable, "-m", "tracehouse.demo.cli", "--store", dsn, "--host", "127.0.0.1",
            "--otlp-grpc-port", str(free_port()), "--otlp-http-port", str(free_port()),
            "--zipkin-port", str(free_port()), "--http-port", str(http_port),
            "--logs", str(tmp_path / "logs"), "--no-progress", *options]
    with open(output, "wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return process, output, http_port


def _stop_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:  # the test failed before its own signal: clean up as a user would
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_banner(process: subprocess.Popen[bytes], output: Path) -> str:
    def banner() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"demo exited with {process.returncode}:\n{output.read_text()[-3000:]}")
        return "TraceHouse demo is running" in output.read_text()

    wait_for(banner, timeout_s=180, interval_s=0.5, message="the demo's banner")
    return output.read_text()


def _run_id(process: subprocess.Popen[bytes]) -> str:
    run_ids = {p.environ().get(RUN_MARKER) for p in psutil.Process(process.pid).children(recursive=True)}
    run_ids.discard(None)
    assert len(run_ids) == 1, run_ids
    return str(run_ids.pop())


def _edges(api: str) -> set[tuple[str, str]]:
    return {(e["source"], e["target"]) for e in _get(f"{api}/api/v1/dependencies")["edges"]}


def _all_services_traced(api: str) -> set[str]:
    names = {s["name"] for s in _get(f"{api}/api/v1/services")["services"] if s["calls"] > 0}
    return names if set(SERVICE_NAMES) <= names else set()


@pytest.fixture
def demo(server_store_dsn: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    process, output, http_port = _start_demo(server_store_dsn, tmp_path, "--cycle", "--rate", "8")
    try:
        yield process, output, http_port
    finally:
        _stop_if_running(process)


def test_demo_traces_every_service_shows_the_map_and_stops_cleanly(
        demo: tuple[subprocess.Popen[bytes], Path, int]) -> None:
    process, output, http_port = demo
    api = f"http://127.0.0.1:{http_port}"

    text = _wait_banner(process, output)
    assert f"{api}/ui/" in text and "Ctrl-C" in text

    # Every service produces traces within 30 s of the shop being up.
    wait_for(lambda: _all_services_traced(api), timeout_s=30, interval_s=1, message="traces from every shop service")

    # The service map shows the shop, its databases and the cycle of --cycle.
    def service_map() -> dict[str, Any]:
        graph = _get(f"{api}/api/v1/dependencies")
        edges = {(e["source"], e["target"]) for e in graph["edges"]}
        return graph if edges >= EXPECTED_EDGES else {}

    graph = wait_for(service_map, timeout_s=60, interval_s=2, message="the shop's service map")
    kinds = {node["id"]: node["kind"] for node in graph["nodes"]}
    assert {kinds[name] for name in SERVICE_NAMES} == {"service"}
    assert "database" in set(kinds.values()), kinds
    assert any({"orders", "payments", "notifications"} <= set(cycle["services"]) for cycle in graph["cycles"]), \
        graph["cycles"]

    # The planted problems: an N+1 loop in orders, failing payments.
    def n_plus_one() -> list[dict[str, Any]]:
        return [f for f in _get(f"{api}/api/v1/db/n-plus-one")["findings"] if f["service"] == "orders"]

    findings = wait_for(n_plus_one, timeout_s=30, interval_s=2, message="the N+1 loop of orders")
    assert findings[0]["executions_per_trace_max"] >= 10
    payments = wait_for(lambda: [s for s in _get(f"{api}/api/v1/services")["services"]
                                 if s["name"] == "payments" and s["errors"] > 0],
                        timeout_s=30, interval_s=2, message="failed payments")
    assert 0 < payments[0]["error_rate"] < 0.6

    # The slow query is among the three slowest statements (a busy machine may slow another one as much).
    def slow_query() -> list[dict[str, Any]]:
        top = _get(f"{api}/api/v1/top?by=p99&entity=db_statement&n=3")["items"]
        return [t for t in top if t["service"] == "orders" and "LIKE" in t["name"] and t["p99_ms"] >= 250]

    wait_for(slow_query, timeout_s=30, interval_s=2, message="the slow search query among the slowest statements")

    # Every page the banner points at answers.
    for url in sorted({word for word in text.split() if word.startswith(f"{api}/ui/")}):
        assert httpx.get(url, timeout=60, follow_redirects=True).status_code == 200, url

    # Ctrl-C stops every process the demo started, and whatever they started.
    run_id = _run_id(process)
    started = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
    assert len(started) >= 1 + len(SERVICE_NAMES)
    assert {p.pid for p in _demo_processes(run_id)} >= started
    uses_postgres, uses_redis = "databases   PostgreSQL" in text, ", Redis " in text
    if uses_redis:
        assert _redis_keys(run_id), "the shop's Redis keys"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 0, output.read_text()[-3000:]
    assert "none left running" in output.read_text()
    assert _alive(started) == []
    assert _demo_processes(run_id) == []
    # ... and leaves nothing in the machine's databases.
    if uses_redis:
        assert _redis_keys(run_id) == []
    if uses_postgres:
        assert not _postgres_schema_exists(f"tracehouse_demo_{run_id}")


def test_demo_on_sqlite_without_redis_has_no_cycle_and_stops_on_sigterm(server_store_dsn: str, tmp_path: Path) -> None:
    process, output, http_port = _start_demo(server_store_dsn, tmp_path, "--db", "sqlite", "--redis", "off",
                                             "--rate", "6")
    api = f"http://127.0.0.1:{http_port}"
    try:
        text = _wait_banner(process, output)
        assert "sqlite files in" in text and "no Redis" in text
        wait_for(lambda: _all_services_traced(api), timeout_s=30, interval_s=1, message="traces from every service")
        expected = EXPECTED_EDGES - {("notifications", "orders")}
        edges = wait_for(lambda: _edges(api) if _edges(api) >= expected else set(), timeout_s=60, interval_s=2,
                         message="the shop's service map")
        assert ("notifications", "orders") not in edges
        graph = _get(f"{api}/api/v1/dependencies")
        databases = {n["id"] for n in graph["nodes"] if n["kind"] == "database"}
        assert databases and all("sqlite" in name for name in databases), databases
        assert graph["cycles"] == []
        run_id = _run_id(process)
        started = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, output.read_text()[-3000:]
        assert _alive(started) == [] and _demo_processes(run_id) == []
        assert list((tmp_path / "logs").glob("*.db")), "the services' sqlite files"
    finally:
        _stop_if_running(process)


def test_ctrl_c_while_starting_leaves_nothing_behind(server_store_dsn: str, tmp_path: Path) -> None:
    process, output, _ = _start_demo(server_store_dsn, tmp_path)
    try:
        children = wait_for(lambda: psutil.Process(process.pid).children(recursive=True), timeout_s=60,
                            message="the demo's first child")
        run_id = _run_id(process)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130, output.read_text()[-3000:]
        assert "TraceHouse demo is running" not in output.read_text()
        assert _alive({p.pid for p in children}) == [] and _demo_processes(run_id) == []
    finally:
        _stop_if_running(process)


@pytest.mark.parametrize(("options", "message"), [
    (["--rate", "0"], "--rate must be > 0"),
    (["--failure-rate", "1.5"], "--failure-rate within 0..1"),
    (["--http-port", "70000"], "configuration error"),
    (["--db", "postgresql", "--postgres-dsn", "postgresql://postgres@127.0.0.1:1/test"], "PostgreSQL at"),
])
def test_bad_options_stop_the_demo_with_one_clear_line(options: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tracehouse.demo.cli", "--data", str(tmp_path / "data"),
                             "--logs", str(tmp_path / "logs"), *options], capture_output=True, text=True, timeout=120)
    assert result.returncode in (1, 2), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "logs" / "tracehouse.log").exists()  # nothing was started


def test_a_service_that_dies_stops_the_demo_with_its_log(server_store_dsn: str, tmp_path: Path) -> None:
    process, output, _ = _start_demo(server_store_dsn, tmp_path, "--db", "sqlite", "--redis", "off")
    try:
        _wait_banner(process, output)
        run_id = _run_id(process)
        payments = [p for p in psutil.Process(process.pid).children(recursive=True)
                    if "tracehouse.demo.services.payments" in " ".join(p.cmdline())]
        assert len(payments) == 1
        payments[0].kill()
        assert process.wait(timeout=120) == 1
        text = output.read_text()
        assert "payments exited with -9" in text and "payments.log" in text
        assert _demo_processes(run_id) == []
    finally:
        _stop_if_running(process)


def test_duration_ends_the_demo_by_itself(server_store_dsn: str, tmp_path: Path) -> None:
    process, output, _ = _start_demo(server_store_dsn, tmp_path, "--db", "sqlite", "--redis", "off",
                                     "--duration-s", "3")
    try:
        assert process.wait(timeout=240) == 0, output.read_text()[-3000:]
        text = output.read_text()
        assert "TraceHouse demo is running" in text and "demo: sent" in text and "none left running" in text
    finally:
        _stop_if_running(process)


def test_missing_shop_packages_are_named_with_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    from tracehouse.demo import cli

    monkeypatch.setattr(cli, "REQUIRED_MODULES", ("flask", "no_such_module_for_the_shop"))
    assert cli.main(["--logs", str(tmp_path / "logs")]) == 2
    error = capsys.readouterr().err
    assert "packages for the shop: no_such_module_for_the_shop (pip install 'tracehouse[demo]')" in error
    assert not (tmp_path / "logs").exists()
