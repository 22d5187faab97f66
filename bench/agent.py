"""Agent overhead: a Flask endpoint doing one database query, measured three ways in fresh processes.

    uninstrumented     the app as it is
    bare OTel SDK      the app with the OpenTelemetry SDK, BatchSpanProcessor, OTLP/HTTP exporter and
                       the Flask + DB instrumentations, set up by hand (the reference to beat)
    tracehouse agent   the app under `tracehouse-agent run` (all installed instrumentations, host and
                       process metrics, heartbeat, statement sanitizing, load-balanced export)

Requests go over HTTP/1.1 keep-alive to a real (werkzeug) server in the measured process, or with
--via test-client through the WSGI stack alone (no network, the overhead at its most visible); spans go
to a real OTLP/HTTP endpoint (a local sink started here, or --endpoint). Reported: latency p50/p99
per request, the latency added over the uninstrumented app, and process CPU per request and per
span, CPU of the export threads included (process_time covers every thread, flush included).

    tracehouse bench agent [--requests 3000] [--rounds 3] [--db sqlite|postgresql [--query-ms 2]]
                           [--via http|test-client] [--endpoint URL] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = ("uninstrumented", "bare-sdk", "agent")
LABELS = {"uninstrumented": "uninstrumented", "bare-sdk": "bare OTel SDK + BSP", "agent": "tracehouse agent"}
ITEMS = 1000


# --- the span sink ---------------------------------------------------------------------------------

@dataclass
class Sink:
    spans: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes, path: str) -> None:
        if path != "/v1/traces":
            return
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest.FromString(body)
        count = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self.lock:
            self.spans += count
            self.requests += 1


@contextmanager
def running_sink() -> Iterator[tuple[Sink, str]]:
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            sink.add(body, self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- the measured process ----------------------------------------------------------------------------

def _setup_bare_sdk(endpoint: str, db: str) -> Any:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "bench-bare"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    trace.set_tracer_provider(provider)
    FlaskInstrumentor().instrument()
    if db == "postgresql":
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument()
    else:
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        SQLite3Instrumentor().instrument()
    return provider


def _make_app(db: str, sqlite_path: str, query_ms: float = 0.0) -> Any:
    from flask import Flask

    app = Flask("bench")
    local = threading.local()

    def connection() -> Any:
        conn = getattr(local, "conn", None)
        if conn is None:
            if db == "postgresql":
                import psycopg

                conn = psycopg.connect(os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"),
                                       autocommit=True)
            else:
                import sqlite3

                conn = sqlite3.connect(sqlite_path)
            local.conn = conn
        return conn

    @app.get("/item/<int:item_id>")
    def item(item_id: int) -> dict[str, Any]:
        cursor = connection().cursor()
        if db == "postgresql" and query_ms > 0:  # a query that takes the database query_ms to answer
            cursor.execute("SELECT %s::int AS id, 'widget' AS name, 9.5 AS price FROM pg_sleep(%s)",
                           (item_id, query_ms / 1000.0))
        elif db == "postgresql":
            cursor.execute("SELECT %s::int AS id, 'widget' AS name, 9.5 AS price", (item_id,))
        else:
            cursor.execute("SELECT id, name, price FROM items WHERE id = ?", (item_id,))
        row = cursor.fetchone()
        return {"id": row[0], "name": row[1], "price": float(row[2])}

    return app


def _client(app: Any, via: str) -> Callable[[str], int]:
    """GET path -> status: through Flask's test client, or over HTTP/1.1 keep-alive to a real server."""
    if via == "test-client":
        client = app.test_client()
        return lambda path: int(client.get(path).status_code)
    import http.client

    from werkzeug.serving import WSGIRequestHandler, make_server

    WSGIRequestHandler.protocol_version = "HTTP/1.1"  # keep-alive, as a client behind a proxy would see
    server = make_server("127.0.0.1", 0, app, threaded=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)

    def get(path: str) -> int:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return int(response.status)

    return get


def worker(mode: str, requests: int, db: str, sqlite_path: str, endpoint: str, via: str,
           query_ms: float = 0.0) -> dict[str, Any]:
    provider = _setup_bare_sdk(endpoint, db) if mode == "bare-sdk" else None
    app = _make_app(db, sqlite_path, query_ms)
    get = _client(app, via)
    warmup = min(500, requests)
    for index in range(warmup):
        assert get(f"/item/{index % ITEMS + 1}") == 200
    if mode == "agent":
        import tracehouse.agents

        tracehouse.agents.force_flush()
    elif provider is not None:
        provider.force_flush()
    gc.collect()
    latencies_ns: list[int] = []
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for index in range(requests):
        started = time.perf_counter_ns()
        status = get(f"/item/{index % ITEMS + 1}")
        latencies_ns.append(time.perf_counter_ns() - started)
        if status != 200:
            raise RuntimeError(f"request failed: {status}")
    wall_s = time.perf_counter() - wall_start
    if mode == "agent":
        import tracehouse.agents

        # Spans only: a metrics collection is a fixed cost per interval (psutil, every 10 s), not per span.
        agent = tracehouse.agents.current()
        if agent is not None and agent.processor is not None:
            agent.processor.force_flush()
    elif provider is not None:
        provider.force_flush()
    cpu_s = time.process_time() - cpu_start
    return {"mode": mode, "requests": requests, "warmup": warmup, "latencies_ns": latencies_ns, "cpu_s": cpu_s, "wall_s": wall_s}


# --- orchestration ----------------------------------------------------------------------------------

def _prepare_sqlite(path: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany("INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
                     [(i, f"item-{i}", i * 1.5) for i in range(1, ITEMS + 1)])
    conn.commit()
    conn.close()


def _run_worker(mode: str, args: argparse.Namespace, sqlite_path: str, endpoint: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEHOUSE_"))}
    command = [sys.executable, "-m", "tracehouse.bench.agent", "--worker", mode, "--requests", str(args.requests),
               "--db", args.db, "--via", args.via, "--query-ms", str(args.query_ms), "--sqlite-path", sqlite_path, "--endpoint", endpoint]
    if mode == "agent":
        agent = str(Path(sys.executable).with_name("tracehouse-agent"))
        command = [agent, "run", "--service-name", "bench-agent", "--endpoint", endpoint, "--", *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(share * len(ordered)))])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tracehouse bench agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per round and mode")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per mode (interleaved)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--query-ms", type=float, default=0.0,
                        help="postgresql: make the query take this long in the database (pg_sleep)")
    parser.add_argument("--via", choices=("http", "test-client"), default="http",
                        help="real HTTP/1.1 server and client (default) or Flask's test client (no network)")
    parser.add_argument("--endpoint", help="OTLP/HTTP endpoint for the spans (default: a local sink)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--sqlite-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 10 or args.rounds < 1:
        parser.error("--requests must be at least 10 and --rounds at least 1")
    if args.query_ms < 0 or (args.query_ms and args.db != "postgresql"):
        parser.error("--query-ms needs --db postgresql and a value of 0 or more")

    if args.worker:
        print(json.dumps(worker(args.worker, args.requests, args.db, args.sqlite_path, args.endpoint, args.via,
                                args.query_ms)))
        return 0

    with tempfile.TemporaryDirectory() as tmp, running_sink() as (sink, sink_url):
        sqlite_path = os.path.join(tmp, "items.db")
        _prepare_sqlite(sqlite_path)
        endpoint = args.endpoint or sink_url
        results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        spans: dict[str, int] = dict.fromkeys(MODES, 0)
        for round_number in range(args.rounds):
            for mode in MODES:
                before = sink.spans
                results[mode].append(_run_worker(mode, args, sqlite_path, endpoint))
                spans[mode] += sink.spans - before
                print(f"round {round_number + 1}/{args.rounds}: {LABELS[mode]} done", file=sys.stderr)
    summary = summarize(results, spans, args)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary, args)
    return 0


def summarize(results: dict[str, list[dict[str, Any]]], spans: dict[str, int],
              args: argparse.Namespace) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for mode, runs in results.items():
        latencies = [value for run in runs for value in run["latencies_ns"]]
        requests = sum(int(run["requests"]) for run in runs)
        cpu_s = sum(float(run["cpu_s"]) for run in runs)
        served = sum(int(run["requests"]) + int(run["warmup"]) for run in runs)
        round_p50s = [_percentile(list(run["latencies_ns"]), 0.5) for run in runs]
        summary[mode] = {
            "p50_us": _percentile(latencies, 0.50) / 1000,
            "p99_us": _percentile(latencies, 0.99) / 1000,
            "p50_spread_us": (max(round_p50s) - min(round_p50s)) / 1000,
            "mean_us": statistics.fmean(latencies) / 1000,
            "cpu_us_per_request": cpu_s / requests * 1e6,
            "spans_per_request": spans[mode] / served if served else 0.0,
        }
    base = summary["uninstrumented"]
    for mode in MODES:
        row = summary[mode]
        row["added_p50_us"] = row["p50_us"] - base["p50_us"]
        row["added_p99_us"] = row["p99_us"] - base["p99_us"]
        row["added_p50_pct"] = 100.0 * row["added_p50_us"] / base["p50_us"] if base["p50_us"] else 0.0
        extra_cpu = row["cpu_us_per_request"] - base["cpu_us_per_request"]
        row["cpu_us_per_span"] = extra_cpu / row["spans_per_request"] if row["spans_per_request"] else 0.0
    return summary


def print_table(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    how = "over HTTP/1.1 keep-alive (werkzeug server)" if args.via == "http" else "through Flask's test client"
    query = f"one {args.db} query" + (f" taking {args.query_ms:g} ms" if args.query_ms else "")
    print(f"\nFlask endpoint with {query}, {how}; {args.rounds} rounds x {args.requests} requests per mode\n")
    header = (f"{'mode':<22}{'p50 µs':>9}{'p99 µs':>9}{'added p50':>11}{'added p99':>11}{'added %':>9}"
              f"{'CPU µs/req':>12}{'spans/req':>11}{'CPU µs/span':>13}")
    print(header)
    print("-" * len(header))
    for mode in MODES:
        row = summary[mode]
        print(f"{LABELS[mode]:<22}{row['p50_us']:>9.1f}{row['p99_us']:>9.1f}{row['added_p50_us']:>11.1f}"
              f"{row['added_p99_us']:>11.1f}{row['added_p50_pct']:>8.1f}%{row['cpu_us_per_request']:>12.1f}"
              f"{row['spans_per_request']:>11.2f}{row['cpu_us_per_span']:>13.1f}")
    print("\nadded = minus the uninstrumented p50/p99; CPU per span = extra process CPU (all threads, export"
          " included) / spans exported")


if __name__ == "__main__":
    raise SystemExit(main())
