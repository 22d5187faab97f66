"""Ingest benchmark: concurrent OTLP/HTTP protobuf clients against a real `tracehouse up`.

Reports spans per second *stored* (counted in ClickHouse once every client has been answered, over
the time from the first request to the last stored row), bytes per span on disk (system.parts),
the server's peak RSS and the p50/p99 export latency seen by clients.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tracehouse.bench.workload import span_count, trace_request
from tracehouse.launcher import start_tracehouse

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass
class IngestResult:
    clients: int
    connections_per_client: int
    spans_per_request: int
    sent_spans: int
    stored_spans: int
    elapsed_s: float
    stored_spans_per_s: float
    bytes_per_span_on_disk: float  # active parts right after the run
    bytes_per_span_merged: float  # after the parts are merged, as they are in steady state
    server_peak_rss_mib: float
    export_latency_p50_ms: float
    export_latency_p99_ms: float
    refused_requests: int


def _client(url: str, bodies: list[bytes], connections: int, start_at: float, out: Any) -> None:
    """One client process with `connections` concurrent exporters: waits for the common start,
    sends its pre-built bodies, reports latencies. (The collector answers only once data is stored,
    so, as with a fleet of services, throughput needs many requests in flight.)"""
    latencies_ms: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def exporter(share: list[bytes]) -> None:
        with httpx.Client(timeout=60) as http:
            for body in share:
                while True:
                    started = time.perf_counter()
                    response = http.post(url, content=body, headers=PROTOBUF)
                    if response.status_code == 200:
                        with lock:
                            latencies_ms.append((time.perf_counter() - started) * 1000)
                        break
                    with lock:
                        refused[0] += 1  # 429/503: back off as an OTLP exporter would, then resend
                    time.sleep(float(response.headers.get("Retry-After", "1")) / 10)

    while time.time() < start_at:
        time.sleep(0.001)
    threads = [threading.Thread(target=exporter, args=(bodies[i::connections],)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies_ms, refused[0]))


def _sql(api: str, query: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{api}/api/v1/sql", json={"query": query}, timeout=60)
    response.raise_for_status()
    return list(response.json()["rows"])


PARTS_SQL = ("SELECT sum(bytes_on_disk) AS bytes, sum(rows) AS rows FROM system.parts"
             " WHERE active AND database = currentDatabase() AND table = 'otel_traces'")


def _merged_bytes_per_span(server: Any, dsn: str) -> float:
    """Stops the server, merges the spans' parts and measures them again (this process has not
    opened an embedded store yet, so it may open the server's once the server is gone)."""
    from tracehouse import storage

    server.stop()
    client = storage.connect(dsn)
    client.command("OPTIMIZE TABLE otel_traces FINAL")
    row = client.query(PARTS_SQL).result_rows[0]
    client.close()
    return round(int(row[0]) / max(1, int(row[1])), 1)


def run_ingest(total_spans: int, clients: int, spans_per_request: int, store_dsn: str | None = None,
               progress: Any = None, connections_per_client: int = 8,
               server_env: dict[str, str] | None = None) -> IngestResult:
    work = Path(tempfile.mkdtemp(prefix="tracehouse-bench-"))
    dsn = store_dsn or f"chdb://{work / 'data'}"
    server = start_tracehouse(dsn, log_path=str(work / "server.log"), env=server_env)
    try:
        requests_per_client = max(1, total_spans // (clients * spans_per_request))
        rng = random.Random(42)
        bodies = [[trace_request(rng, spans_per_request).SerializeToString() for _ in range(requests_per_client)]
                  for _ in range(clients)]
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        sent = sum(span_count(ExportTraceServiceRequest.FromString(b)) for group in bodies for b in group)
        process = psutil.Process(server.process.pid)
        peak_rss = [process.memory_info().rss]
        sampling = threading.Event()

        def sample_rss() -> None:
            while not sampling.is_set():
                peak_rss[0] = max(peak_rss[0], process.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        start_at = time.time() + 2.0
        workers = [context.Process(target=_client, args=(f"{server.otlp_http_url}/v1/traces", group,
                                                          connections_per_client, start_at, results))
                   for group in bodies]
        for worker in workers:
            worker.start()
        latencies: list[float] = []
        refused = 0
        for _ in workers:
            got, refused_here = results.get()
            latencies += got
            refused += refused_here
            if progress:
                progress()
        for worker in workers:
            worker.join()
        # Every request was answered 200, so every span is stored: the clock stops now.
        elapsed = time.time() - start_at
        sampling.set()
        sampler.join()
        stored = int(_sql(server.api_url, "SELECT count() AS n FROM otel_traces")[0]["n"])
        parts = _sql(server.api_url, PARTS_SQL)[0]
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
        return IngestResult(
            clients=clients, connections_per_client=connections_per_client, spans_per_request=spans_per_request, sent_spans=sent, stored_spans=stored,
            elapsed_s=round(elapsed, 2), stored_spans_per_s=round(stored / elapsed),
            bytes_per_span_on_disk=round(int(parts["bytes"]) / max(1, int(parts["rows"])), 1),
            bytes_per_span_merged=_merged_bytes_per_span(server, dsn),
            server_peak_rss_mib=round(peak_rss[0] / 2**20, 1),
            export_latency_p50_ms=round(quantiles[49], 1), export_latency_p99_ms=round(quantiles[98], 1),
            refused_requests=refused,
        )
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracehouse bench ingest", description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans to send in all (default 1 000 000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent exporters per client (default 8)")
    parser.add_argument("--spans-per-request", type=int, default=1000, help="spans per export request")
    parser.add_argument("--store", help="store DSN (default: a fresh embedded store)")
    parser.add_argument("--quick", action="store_true", help="a short run (100 000 spans)")
    parser.add_argument("--batch-max-rows", type=int, help="the collector's batch size (default: its own, 10 000)")
    parser.add_argument("--batch-max-delay-ms", type=int, help="the collector's batch delay (default: its own, 200)")
    args = parser.parse_args(argv)
    total = 100_000 if args.quick else args.spans
    server_env = {name: str(value) for name, value in (("TRACEHOUSE_BATCH_MAX_ROWS", args.batch_max_rows),
                                                       ("TRACEHOUSE_BATCH_MAX_DELAY_MS", args.batch_max_delay_ms))
                  if value is not None}
    result = run_ingest(total, args.clients, args.spans_per_request, args.store,
                        connections_per_client=args.connections, server_env=server_env)
    width = max(len(k) for k in asdict(result))
    for key, value in asdict(result).items():
        print(f"{key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
