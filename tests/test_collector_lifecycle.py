"""Acknowledged means stored: SIGTERM under load loses nothing that a client was told was stored,
the process drains and exits 0, and start-up refuses bad configuration with one clear line."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support import TraceHouseProcess, start_tracehouse, wait_for
from tracehouse.bench.workload import trace_request

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def test_sigterm_under_load_keeps_every_acknowledged_span(tracehouse: TraceHouseProcess, server_store_dsn: str,
                                                          tmp_path: Path) -> None:
    acknowledged: list[str] = []  # trace ids whose request got 200
    refused_after_stop: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                request = trace_request(rng, 200)
                trace_ids = {span.trace_id.hex() for rs in request.resource_spans for ss in rs.scope_spans
                             for span in ss.spans}
                try:
                    response = http.post(f"{tracehouse.otlp_http_url}/v1/traces", content=request.SerializeToString(),
                                         headers=PROTOBUF)
                except httpx.TransportError:
                    refused_after_stop.append(1)
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.extend(trace_ids)
                else:
                    assert response.status_code in (429, 503), response.text
                    refused_after_stop.append(response.status_code)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acknowledged) > 500, timeout_s=60, message="some acknowledged traces")
    assert tracehouse.stop(signal.SIGTERM) == 0, tracehouse.log()[-2000:]
    stop.set()
    for thread in threads:
        thread.join()
    assert "stopped cleanly" in tracehouse.log()

    # Start again on the same store and check every acknowledged trace is there.
    again = start_tracehouse(server_store_dsn, log_path=str(tmp_path / "again.log"))
    try:
        stored = {row["TraceId"] for row in again.sql("SELECT DISTINCT TraceId FROM otel_traces")}
    finally:
        again.stop()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged traces lost"


def _spans(count: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns()
    spans = [Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="queued", start_time_unix_nano=now,
                  end_time_unix_nano=now + 1) for _ in range(count)]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return request.SerializeToString()


def test_queue_bound_answers_429_with_retry_after(server_store_dsn: str, tmp_path: Path) -> None:
    """Rows waiting for their batch count against the queue bound; a request that would pass it is
    refused at once with 429 and Retry-After, and the waiting one is still stored."""
    process = start_tracehouse(server_store_dsn, log_path=str(tmp_path / "small.log"),
                               env={"TRACEHOUSE_QUEUE_MAX_ROWS": "60", "TRACEHOUSE_BATCH_MAX_ROWS": "50",
                                    "TRACEHOUSE_BATCH_MAX_DELAY_MS": "3000"})
    try:
        results: list[httpx.Response] = []

        def send_first() -> None:
            results.append(httpx.post(f"{process.otlp_http_url}/v1/traces", content=_spans(40), headers=PROTOBUF,
                                      timeout=30))

        sender = threading.Thread(target=send_first)
        sender.start()
        # The first 40 rows wait up to 3 s for their batch to fill; 40 more would pass the bound of 60.
        wait_for(lambda: "tracehouse_queue_rows 40.0" in httpx.get(f"{process.otlp_http_url}/metrics").text,
                 timeout_s=10, interval_s=0.02, message="the first request to be queued")
        second = httpx.post(f"{process.otlp_http_url}/v1/traces", content=_spans(40), headers=PROTOBUF)
        assert second.status_code == 429
        assert second.headers["Retry-After"] == "2"
        assert "rows are waiting to be stored" in second.text
        sender.join()
        assert results[0].status_code == 200
        assert process.count("otel_traces", "SpanName = 'queued'") == 40
    finally:
        process.stop()


def test_invalid_configuration_stops_start_up_with_one_line(tmp_path: Path) -> None:
    cases = [
        (["--otlp-http-port", "70000"], {}, "otlp_http_port must be a TCP port"),
        ([], {"TRACEHOUSE_BATCH_MAX_ROWS": "lots"}, "batch_max_rows from TRACEHOUSE_BATCH_MAX_ROWS: 'lots' is not valid"),
        (["--store", "ftp://example"], {}, "scheme must be chdb://, http:// or https://"),
        (["--config", str(tmp_path / "missing.toml")], {}, "does not exist"),
    ]
    for args, env, message in cases:
        result = subprocess.run([sys.executable, "-m", "tracehouse", "up", "--data", str(tmp_path / "d"), *args],
                                capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert lines[0].startswith("tracehouse: configuration error:")


def test_toml_configuration_file(tmp_path: Path, server_store_dsn: str) -> None:
    from tests.support import free_port

    port = free_port()
    config = tmp_path / "tracehouse.toml"
    config.write_text(f'[collector]\notlp_http_port = {port}\nmax_body_bytes = 1000\n')
    process = start_tracehouse(server_store_dsn, log_path=str(tmp_path / "toml.log"),
                               extra_args=["--config", str(config)])
    try:
        # The command line names its own port, so the file's port is unused; its body limit applies.
        response = httpx.post(f"{process.otlp_http_url}/v1/traces", content=b"x" * 2000, headers=PROTOBUF)
        assert response.status_code == 413
    finally:
        process.stop()


def test_a_killed_decode_worker_costs_a_retry_not_the_collector(tracehouse: TraceHouseProcess) -> None:
    import psutil

    def workers() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(tracehouse.process.pid).children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:  # a child that ended while we looked
                continue
        return found

    assert wait_for(lambda: len(workers()) >= 1, timeout_s=30, message="decode worker processes")
    body = trace_request(random.Random(3), 500).SerializeToString()
    statuses: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    statuses.append(http.post(f"{tracehouse.otlp_http_url}/v1/traces", content=body,
                                              headers=PROTOBUF).status_code)
                except httpx.TransportError:
                    statuses.append(-1)  # the collector went away: the test fails below
                    return

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: len(statuses) >= 3, timeout_s=30, message="exports before the crash")
    for worker in workers():
        with contextlib.suppress(psutil.Error):
            worker.kill()
    wait_for(lambda: "a decode worker died; restarting the pool" in tracehouse.log(), timeout_s=60,
             message="the collector to notice the dead worker")
    after_restart = len(statuses)
    wait_for(lambda: len(statuses) >= after_restart + 3 and statuses[-3:] == [200, 200, 200], timeout_s=60,
             message="exports to succeed again after the pool restarts")
    stop.set()
    sender.join()
    assert set(statuses) <= {200, 503}
    assert tracehouse.process.poll() is None
    assert len(workers()) >= 1
