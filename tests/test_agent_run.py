"""`tracehouse-agent run` with real processes (a script, Flask under gunicorn's forking workers),
exporting to a real local OTLP/HTTP peer; and `bootstrap`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.otlp_peer import OtlpPeer, running_peer
from tests.support import free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
AGENT = str(Path(sys.executable).with_name("tracehouse-agent"))


def agent_env(*endpoints: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACEHOUSE_"))}
    env.update({
        "PYTHONPATH": str(REPO),
        "TRACEHOUSE_ENDPOINTS": ",".join(endpoints),
        "TRACEHOUSE_SCHEDULE_DELAY_S": "0.1",
        "TRACEHOUSE_METRICS_INTERVAL_S": "0.5",
        "TRACEHOUSE_HOST_METRICS": "false",
    })
    env.update(extra)
    return env


def attributes(span: object) -> dict[str, str]:
    return {kv.key: str(getattr(kv.value, kv.value.WhichOneof("value"))) for kv in span.attributes}  # type: ignore[attr-defined]


def test_run_instruments_a_script_without_code_change() -> None:
    with running_peer() as peer:
        result = subprocess.run(
            [AGENT, "run", "--service-name", "script", "--", sys.executable, "-m", "tests.apps.sqlite_script"],
            cwd=REPO, env=agent_env(peer.url), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "rows 0"
        spans = [span for r in peer.accepted() for span in r.spans()]  # flushed at exit
        statements = {attributes(span).get("db.statement") for span in spans}
        assert "SELECT count(*) FROM users WHERE email = ?" in statements
        resources = [attrs for r in peer.accepted() for attrs in r.resource_attributes()]
        assert {attrs["service.name"] for attrs in resources} == {"script"}
        host, port, start_ns, pid = resources[0]["service.instance.id"].split(":")
        assert port == "0" and int(start_ns) > 0 and int(pid) > 0  # a script listens nowhere


def test_spans_are_flushed_when_a_default_sigterm_ends_the_process() -> None:
    with running_peer() as peer:
        process = subprocess.Popen(
            [AGENT, "run", "--", sys.executable, "-m", "tests.apps.sqlite_script", "--wait"], cwd=REPO,
            env=agent_env(peer.url, TRACEHOUSE_SCHEDULE_DELAY_S="60"), stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "rows 0"
        assert peer.accepted() == []  # nothing sent yet: the batch waits for its 60 s schedule
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == -signal.SIGTERM  # still ended by the signal, as without the agent
        statements = {attributes(span).get("db.statement") for r in peer.accepted() for span in r.spans()}
        assert "SELECT count(*) FROM users WHERE email = ?" in statements


def test_standard_otel_variables_are_honoured() -> None:
    with running_peer() as peer:
        env = agent_env(peer.url, OTEL_SERVICE_NAME="from-otel", OTEL_RESOURCE_ATTRIBUTES="team=payments,region=eu",
                        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20s3cret",
                        OTEL_EXPORTER_OTLP_COMPRESSION="gzip", TRACEHOUSE_ENVIRONMENT="staging",
                        TRACEHOUSE_SERVICE_VERSION="1.2.3")
        result = subprocess.run([AGENT, "run", "--", sys.executable, "-m", "tests.apps.sqlite_script"], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        accepted = peer.accepted()
        assert accepted and all(r.headers.get("authorization") == "Bearer s3cret" for r in accepted)
        assert all(r.headers.get("content-encoding") == "gzip" for r in accepted)  # the peer decompressed them
        resource = accepted[0].resource_attributes()[0]
        assert {key: resource[key] for key in ("service.name", "team", "region", "deployment.environment",
                                               "service.version")} == {
            "service.name": "from-otel", "team": "payments", "region": "eu", "deployment.environment": "staging",
            "service.version": "1.2.3"}


def test_bad_setting_prints_one_line_and_the_app_still_runs() -> None:
    with running_peer() as peer:
        result = subprocess.run(
            [AGENT, "run", "--", sys.executable, "-m", "tests.apps.sqlite_script"], cwd=REPO,
            env=agent_env(peer.url, TRACEHOUSE_SAMPLING_RATIO="7"), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0
        assert result.stdout.strip() == "rows 0"
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        expected = "sampling_ratio must be between 0 and 1, not 7.0 (from TRACEHOUSE_SAMPLING_RATIO)"
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert peer.received == []  # the agent stayed off


def test_init_with_bad_value_returns_none_without_raising() -> None:
    code = ("import tracehouse.agents as a; r = a.init(service_name='x', sampling_ratio=3); "
            "print('agent', r); a.shutdown()")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=agent_env("http://127.0.0.1:9"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "agent None"
    expected = "sampling_ratio must be between 0 and 1, not 3 (from init(sampling_ratio=...))"
    assert result.stderr.strip().count("\n") == 0 and expected in result.stderr


@pytest.fixture
def gunicorn_front(tmp_path: Path) -> Iterator[tuple[OtlpPeer, int, subprocess.Popen[bytes]]]:
    pytest.importorskip("gunicorn", reason="gunicorn (dev extra) is needed for the forking-server test")
    port = free_port()
    with running_peer() as peer:
        log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [AGENT, "run", "--service-name", "front", "--", sys.executable, "-m", "gunicorn", "-w", "2",
             "-b", f"127.0.0.1:{port}", "tests.apps.flask_front:app"],
            cwd=REPO, env=agent_env(peer.url, BACKEND_URL="http://127.0.0.1:9"), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200,
                     timeout_s=60, message="gunicorn to answer")
            yield peer, port, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the server and every worker it started
            log.close()


def test_gunicorn_workers_each_report_their_own_instance(
        gunicorn_front: tuple[OtlpPeer, int, subprocess.Popen[bytes]]) -> None:
    peer, port, _process = gunicorn_front
    worker_pids: set[int] = set()

    def both_workers_answered() -> bool:
        with httpx.Client() as client:  # a fresh connection each time reaches either worker
            worker_pids.add(client.get(f"http://127.0.0.1:{port}/ping", timeout=5).json()["pid"])
        return len(worker_pids) == 2

    wait_for(both_workers_answered, timeout_s=30, interval_s=0.01, message="both gunicorn workers to answer")

    def server_span_instances() -> dict[str, str]:
        found = {}
        for request in peer.accepted("/v1/traces"):
            for resource in request.resource_attributes():
                found[resource["process.pid"]] = resource["service.instance.id"]
        return found if set(found) >= {str(pid) for pid in worker_pids} else {}

    instances = wait_for(server_span_instances, timeout_s=30, message="spans from both workers")
    for pid in worker_pids:
        host, listen_port, start_ns, id_pid = instances[str(pid)].split(":")
        assert (listen_port, id_pid) == (str(port), str(pid))  # workers found the inherited listening socket
    assert len({instances[str(pid)] for pid in worker_pids}) == 2

    def heartbeats_from_workers() -> bool:
        pids = set()
        for request in peer.accepted("/v1/metrics"):
            if "tracehouse.agent.heartbeat" in request.metric_names():
                pids |= {resource["process.pid"] for resource in request.resource_attributes()}
        return pids >= {str(pid) for pid in worker_pids}

    wait_for(heartbeats_from_workers, timeout_s=30, message="heartbeats from each forked worker")
    spans = [span for r in peer.accepted() for span in r.spans()]
    routes = {attributes(span).get("http.route") for span in spans}
    assert "/ping" in routes


def test_one_line_init_and_shutdown() -> None:
    with running_peer() as peer:
        code = ("import tracehouse.agents as agent\n"
                f"assert agent.init(service_name='oneline', endpoints=['{peer.url}']) is not None\n"
                "import sqlite3\n"
                "sqlite3.connect(':memory:').cursor().execute(\"SELECT 'secret' AS s\")\n"
                "agent.shutdown()\n"
                "print('done')\n")
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=agent_env("http://127.0.0.1:9"),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr
        spans = [span for r in peer.accepted() for span in r.spans()]  # shutdown flushed them
        assert [attributes(s).get("db.statement") for s in spans] == ["SELECT ? AS s"]
        assert {a["service.name"] for r in peer.accepted() for a in r.resource_attributes()} == {"oneline"}


@pytest.mark.parametrize(("mode", "workers"), [(["--workers", "2"], 2), (["--reload", "--reload-dir", "tests/apps"], 1)])
def test_uvicorn_spawned_workers_start_the_agent_too(tmp_path: Path, mode: list[str], workers: int) -> None:
    port = free_port()
    with running_peer() as peer:
        log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [AGENT, "run", "--service-name", "back", "--", sys.executable, "-m", "uvicorn", *mode,
             "--host", "127.0.0.1", "--port", str(port), "tests.apps.fastapi_back:app"],
            cwd=REPO, env=agent_env(peer.url), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            pids: set[int] = set()

            def both_workers() -> bool:
                with httpx.Client() as client:
                    pids.add(client.get(f"http://127.0.0.1:{port}/ping", timeout=5).json()["pid"])
                return len(pids) == workers

            wait_for(both_workers, timeout_s=60, interval_s=0.01, message="every uvicorn worker to answer")
            assert process.pid not in pids  # the requests were served by spawned children

            def instances() -> dict[str, str]:
                found = {a["process.pid"]: a["service.instance.id"]
                         for r in peer.accepted() for a in r.resource_attributes()}
                return found if {str(p) for p in pids} <= set(found) else {}

            found = wait_for(instances, timeout_s=30, message="spans from both spawned workers")
            for pid in pids:
                assert found[str(pid)].split(":")[1:4:2] == [str(port), str(pid)]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the server and every worker it started
            log.close()


def test_bootstrap_lists_instrumentations_for_installed_libraries() -> None:
    result = subprocess.run([AGENT, "bootstrap"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("opentelemetry-")}
    assert any(name.startswith("opentelemetry-instrumentation-flask") for name in lines)
    assert any(name.startswith("opentelemetry-instrumentation-psycopg=") for name in lines)
    flask_line = next(line for name, line in lines.items() if name.startswith("opentelemetry-instrumentation-flask"))
    assert " installed " in flask_line


def test_django_keeps_its_settings_and_is_traced(tmp_path: Path) -> None:
    pytest.importorskip("django", reason="Django (dev extra) is needed for the Django test")
    port = free_port()
    with running_peer() as peer:
        log = open(tmp_path / "django.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [AGENT, "run", "--service-name", "site", "--", sys.executable, "-m", "gunicorn", "-w", "1",
             "-b", f"127.0.0.1:{port}", "tests.apps.django_site:application"],
            cwd=REPO, env=agent_env(peer.url, SQLITE_PATH=str(tmp_path / "site.db")), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            response = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/orders/41", timeout=5), timeout_s=60,
                                message="the Django site to answer")
            assert response.status_code == 200, (tmp_path / "django.log").read_text()[-2000:]
            assert response.json()["next"] == 42 and response.json()["marker"] == "configured-by-the-site"

            def spans() -> list[dict[str, str]]:
                found = [attributes(span) | {"name": span.name, "kind": str(span.kind)}
                         for r in peer.accepted() for span in r.spans()]
                return found if any("db.statement" in s for s in found) and len(found) >= 2 else []

            found = wait_for(spans, timeout_s=30, message="Django request and query spans")
            server = [s for s in found if s.get("http.route") == "orders/<int:order_id>"]
            assert server, found
            statements = [s["db.statement"] for s in found if "db.statement" in s]
            assert statements == ["SELECT %s + ?, ?"]
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            log.close()


def test_celery_task_continues_the_producers_trace_in_a_prefork_worker(tmp_path: Path) -> None:
    pytest.importorskip("celery", reason="Celery (dev extra) is needed for the Celery test")
    queue = f"tracehouse-agent-{os.getpid()}-{free_port()}"
    with running_peer() as peer:
        env = agent_env(peer.url, CELERY_QUEUE=queue)
        log_path = tmp_path / "worker.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [AGENT, "run", "--service-name", "worker", "--", sys.executable, "-m", "celery", "-A",
             "tests.apps.celery_tasks", "worker", "--pool", "prefork", "--concurrency", "1", "-Q", queue,
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: "ready" in log_path.read_text(errors="replace"), timeout_s=60,
                     message="the Celery worker to be ready")
            sent = subprocess.run([AGENT, "run", "--service-name", "producer", "--", sys.executable, "-m",
                                   "tests.apps.celery_tasks"], cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=60)
            assert sent.returncode == 0 and sent.stdout.strip() == "sent", sent.stderr

            def spans_by_service() -> dict[str, list[Any]]:
                found: dict[str, list[Any]] = {}
                for request in peer.accepted():
                    service = request.resource_attributes()[0]["service.name"]
                    found.setdefault(service, []).extend(request.spans())
                worker_spans = found.get("worker", [])
                done = any(attributes(s).get("db.statement") for s in worker_spans) and any(
                    s.kind == s.SPAN_KIND_CONSUMER for s in worker_spans)
                return found if done and found.get("producer") else {}

            found = wait_for(spans_by_service, timeout_s=60, message="producer and worker spans")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
            log.close()
            from tests.apps.celery_tasks import app as celery_app

            with celery_app.connection_for_write() as connection:
                connection.default_channel.queue_delete(queue)  # leave the shared broker as it was
    publish = [s for s in found["producer"] if s.kind == s.SPAN_KIND_PRODUCER]
    run = [s for s in found["worker"] if s.kind == s.SPAN_KIND_CONSUMER]
    assert len(publish) == 1 and len(run) == 1
    assert run[0].trace_id == publish[0].trace_id and run[0].parent_span_id == publish[0].span_id
    query = [s for s in found["worker"] if attributes(s).get("db.statement")]
    assert [attributes(s)["db.statement"] for s in query] == ["SELECT ? + ?, ?"]
    assert query[0].trace_id == run[0].trace_id and query[0].parent_span_id == run[0].span_id


@pytest.mark.parametrize(("setting", "frozen"), [("true", True), ("false", False)])
def test_run_freezes_start_up_objects_out_of_gc_sweeps(setting: str, frozen: bool) -> None:
    result = subprocess.run([AGENT, "run", "--", sys.executable, "-c", "import gc; print(gc.get_freeze_count())"],
                            cwd=REPO, env=agent_env("http://127.0.0.1:9", TRACEHOUSE_GC_FREEZE=setting,
                                                    TRACEHOUSE_METRICS_ENABLED="false"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (int(result.stdout.strip()) > 10_000) is frozen
