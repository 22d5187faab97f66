"""Side by side: the same OTLP/HTTP protobuf load against TraceHouse and another OTLP backend, one
after the other on the same machine, each measured by the spans it *stored* (counted where it
stores them), not by the spans it acknowledged.

The other backend is either Arize Phoenix, started here with `phoenix serve` on free ports (its
spans counted with SQL on its sqlite database), or any backend given by its OTLP/HTTP URL and a way to
count what it stored: a command that prints the count, or a URL that answers with it.

    tracehouse bench compare --phoenix [--phoenix-command /path/to/phoenix]
    tracehouse bench compare --backend-name jaeger --backend-otlp-url http://127.0.0.1:4318 \
        --backend-count-command "curl -s ... | jq .count"
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tracehouse.bench.workload import span_count, trace_request
from tracehouse.launcher import free_port, start_tracehouse, wait_for

PROTOBUF = {"Content-Type": "application/x-protobuf"}


class BackendError(RuntimeError):
    """A backend could not be started or counted."""


@dataclass
class Backend:
    name: str
    traces_url: str  # where OTLP/HTTP protobuf trace exports go (…/v1/traces)
    count: Callable[[], int]  # spans stored so far
    counted_by: str
    stop: Callable[[], None] = field(default=lambda: None)


@dataclass
class SystemResult:
    name: str
    counted_by: str
    sent_spans: int
    acknowledged_spans: int
    stored_spans: int
    failed_requests: int
    refused_requests: int
    acknowledged_after_s: float  # from the first request to the last answer
    stored_after_s: float  # from the first request to the moment the count reached its final value
    acknowledged_spans_per_s: float
    stored_spans_per_s: float
    export_latency_p50_ms: float
    export_latency_p99_ms: float
    complete: bool  # every sent span was counted as stored
    stored_timeline: list[tuple[float, int]] = field(default_factory=list)  # (s since the first request, stored)
    count_error: str | None = None  # the last failed count, if any


# --- load ------------------------------------------------------------------------------------------

def build_bodies(total_spans: int, clients: int, spans_per_request: int, seed: int = 42) -> tuple[list[list[bytes]], int]:
    """Serialized export requests per client, and the number of spans in them all."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rng = random.Random(seed)
    per_client = max(1, total_spans // (clients * spans_per_request))
    bodies = [[trace_request(rng, spans_per_request).SerializeToString() for _ in range(per_client)]
              for _ in range(clients)]
    sent = sum(span_count(ExportTraceServiceRequest.FromString(body)) for group in bodies for body in group)
    return bodies, sent


def _send(client: int, url: str, bodies: list[bytes], start_at: float, out: Any) -> None:
    """One client process: from `start_at`, posts its bodies in turn; 429/503 are retried after
    Retry-After as an OTLP exporter does, other failures are counted and the body is dropped."""
    latencies_ms: list[float] = []
    acknowledged: list[int] = []
    refused = failed = 0
    with httpx.Client(timeout=120) as http:
        while time.time() < start_at:
            time.sleep(0.001)
        for index, body in enumerate(bodies):
            attempts = 0
            while True:
                started = time.perf_counter()
                try:
                    response = http.post(url, content=body, headers=PROTOBUF)
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    latencies_ms.append((time.perf_counter() - started) * 1000)
                    acknowledged.append(index)
                    break
                attempts += 1
                if status in (429, 503) and attempts < 50:
                    refused += 1
                    time.sleep(min(float(response.headers.get("Retry-After", "1") or 1), 5.0) / 5)
                    continue
                failed += 1
                break
    out.put((client, latencies_ms, acknowledged, refused, failed, time.time()))


class StoredSampler:
    """Counts a backend's stored spans every `interval_s` from the first request on, in a thread:
    the latest count, when it last grew, and a timeline of (seconds since start, spans stored)."""

    def __init__(self, backend: Backend, baseline: int, start_at: float, interval_s: float = 0.2) -> None:
        self.backend = backend
        self.baseline = baseline
        self.start_at = start_at
        self.interval_s = interval_s
        self.stored = 0
        self.stored_at = start_at  # wall time of the latest growth
        self.last_growth = time.monotonic()
        self.timeline: list[tuple[float, int]] = [(0.0, 0)]
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stored-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if time.time() < self.start_at:
                continue
            try:
                count = self.backend.count() - self.baseline
            except Exception as exc:  # noqa: BLE001 - a failed count is retried; the last error is kept
                self.error = f"{type(exc).__name__}: {exc}"
                continue
            if count != self.stored:
                now = time.time()
                self.stored, self.stored_at, self.last_growth = count, now, time.monotonic()
                self.timeline.append((round(now - self.start_at, 2), count))


def measure(backend: Backend, bodies: list[list[bytes]], sent: int, *, settle_s: float = 20.0,
            timeout_s: float = 600.0, progress: Callable[[str], None] | None = None) -> SystemResult:
    """Sends `bodies` with one process per client while counting what the backend stored; counting
    goes on until every span is stored or the count has not grown for `settle_s` seconds."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    say = progress or (lambda _: None)
    baseline = backend.count()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 1.5
    workers = [context.Process(target=_send, args=(index, backend.traces_url, group, start_at, results))
               for index, group in enumerate(bodies)]
    for worker in workers:
        worker.start()
    sampler = StoredSampler(backend, baseline, start_at)
    sampler.start()
    say(f"{backend.name}: sending {sent:,} spans")
    latencies: list[float] = []
    acknowledged_spans = refused = failed = 0
    finished_at = start_at
    try:
        for _ in workers:
            client, got, acked, refused_here, failed_here, done_at = results.get(timeout=timeout_s)
            latencies += got
            refused += refused_here
            failed += failed_here
            finished_at = max(finished_at, done_at)
            acknowledged_spans += sum(span_count(ExportTraceServiceRequest.FromString(bodies[client][i]))
                                      for i in acked)
        for worker in workers:
            worker.join()
        sampler.last_growth = max(sampler.last_growth, time.monotonic())  # settle_s counts from the last answer
        deadline = time.monotonic() + timeout_s
        reported = -1
        while time.monotonic() < deadline:
            if sampler.stored != reported:
                reported = sampler.stored
                say(f"{backend.name}: {reported:,} of {sent:,} spans stored")
            if sampler.stored >= sent or time.monotonic() - sampler.last_growth > settle_s:
                break
            time.sleep(0.1)
    finally:
        sampler.stop()
    sampler.timeline.append((round(time.time() - start_at, 2), sampler.stored))
    stored = max(sampler.stored, 0)
    acknowledged_after = max(finished_at - start_at, 1e-6)
    stored_after = max(sampler.stored_at - start_at, 1e-6)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0] if latencies else 0.0] * 99
    return SystemResult(
        name=backend.name, counted_by=backend.counted_by, sent_spans=sent, acknowledged_spans=acknowledged_spans,
        stored_spans=stored, failed_requests=failed, refused_requests=refused,
        acknowledged_after_s=round(acknowledged_after, 2), stored_after_s=round(stored_after, 2),
        acknowledged_spans_per_s=round(acknowledged_spans / acknowledged_after),
        stored_spans_per_s=round(stored / stored_after),
        export_latency_p50_ms=round(quantiles[49], 1), export_latency_p99_ms=round(quantiles[98], 1),
        complete=stored >= sent, stored_timeline=sampler.timeline, count_error=sampler.error,
    )


# --- backends --------------------------------------------------------------------------------------

def tracehouse_backend(work: Path, store_dsn: str | None = None) -> Backend:
    server = start_tracehouse(store_dsn or f"chdb://{work / 'tracehouse-data'}", log_path=str(work / "tracehouse.log"))

    def count() -> int:
        return int(server.sql("SELECT count() AS n FROM otel_traces")[0]["n"])

    def stop() -> None:
        server.stop()

    return Backend("tracehouse", f"{server.otlp_http_url}/v1/traces", count,
                   "SELECT count() FROM otel_traces (POST /api/v1/sql)", stop)


def find_phoenix(explicit: str | None = None) -> str | None:
    """The `phoenix` executable: given, from TRACEHOUSE_BENCH_PHOENIX, next to this Python, or on PATH."""
    for candidate in (explicit, os.environ.get("TRACEHOUSE_BENCH_PHOENIX"),
                      str(Path(sys.executable).with_name("phoenix")), shutil.which("phoenix")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def phoenix_backend(command: str, work: Path, *, ready_timeout_s: float = 180.0) -> Backend:
    """`phoenix serve` on free ports with its sqlite database in `work`; spans counted by SQL on it."""
    directory = work / "phoenix"
    directory.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port = free_port(), free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(directory), "PHOENIX_PORT": str(http_port),
           "PHOENIX_GRPC_PORT": str(grpc_port), "PHOENIX_HOST": "127.0.0.1", "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = open(work / "phoenix.log", "ab")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen([command, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()

    def ready() -> bool:
        if process.poll() is not None:
            raise BackendError(f"phoenix exited with {process.returncode}; see {work / 'phoenix.log'}")
        return httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2).status_code == 200

    database = directory / "phoenix.db"

    def count() -> int:
        if not database.exists():
            return 0
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            return int(connection.execute("SELECT count(*) FROM spans").fetchone()[0])
        finally:
            connection.close()

    try:
        wait_for(ready, timeout_s=ready_timeout_s, interval_s=0.5, message="phoenix /healthz")
    except BaseException:
        stop()
        raise
    return Backend("phoenix", f"http://127.0.0.1:{http_port}/v1/traces", count,
                   "SELECT count(*) FROM spans (Phoenix's sqlite database)", stop)


def parse_count(text: str, field_name: str = "count") -> int:
    """A count from a command's output or a URL's body: a bare number (the last one in the text), a
    JSON number, or a JSON object with a numeric `field_name` (dots go deeper: data.total)."""
    text = text.strip()
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        for part in field_name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        raise BackendError(f"no numeric field {field_name!r} in {text[:200]!r}")
    numbers = re.findall(r"-?\d+", text)
    if not numbers:
        raise BackendError(f"no count in {text[:200]!r}")
    return int(numbers[-1])


def generic_backend(name: str, otlp_url: str, *, count_command: str | None = None, count_url: str | None = None,
                    count_field: str = "count") -> Backend:
    """Any running OTLP/HTTP backend: `otlp_url` is its base (…/v1/traces is added unless given)."""
    if bool(count_command) == bool(count_url):
        raise BackendError("give exactly one of --backend-count-command and --backend-count-url")
    traces_url = otlp_url.rstrip("/")
    if not traces_url.endswith("/v1/traces"):
        traces_url += "/v1/traces"
    if count_command:
        argv = shlex.split(count_command)

        def count() -> int:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                raise BackendError(f"count command failed ({result.returncode}): {result.stderr.strip()[:300]}")
            return parse_count(result.stdout, count_field)

        return Backend(name, traces_url, count, f"command: {count_command}")
    assert count_url is not None

    def count_by_url() -> int:
        response = httpx.get(count_url, timeout=60)
        response.raise_for_status()
        return parse_count(response.text, count_field)

    return Backend(name, traces_url, count_by_url, f"GET {count_url}")


# --- one run ------------------------------------------------------------------------------------------

def run_compare(other: Callable[[Path], Backend], *, total_spans: int, clients: int, spans_per_request: int,
                store_dsn: str | None = None, settle_s: float = 20.0, timeout_s: float = 600.0,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """TraceHouse first, then the other backend (started by `other(work_dir)`), with the same bodies."""
    say = progress or (lambda _: None)
    work = Path(tempfile.mkdtemp(prefix="tracehouse-compare-"))
    say(f"building {total_spans:,} spans of OTLP requests")
    bodies, sent = build_bodies(total_spans, clients, spans_per_request)
    systems: list[dict[str, Any]] = []
    for label, start in (("tracehouse", lambda: tracehouse_backend(work, store_dsn)),
                         ("the other backend", lambda: other(work))):
        say(f"starting {label}")
        backend = start()
        try:
            result = measure(backend, bodies, sent, settle_s=settle_s, timeout_s=timeout_s, progress=say)
        finally:
            backend.stop()
        systems.append(asdict(result))
    return {"sent_spans": sent, "clients": clients, "spans_per_request": spans_per_request, "systems": systems,
            "work_dir": str(work),
            "note": "Each system ran alone on the machine with the same pre-built requests; stored spans/s = "
                    "spans counted in its store / time from the first request until the count reached its final value."}
