"""Store down: exports get 503 with Retry-After and readiness says why; once the store is back the
client's retry succeeds and nothing is lost.

With the embedded engine the outage is another process holding the data directory (as an operator's
maintenance session would); with a ClickHouse server (TRACEHOUSE_TEST_CLICKHOUSE_URL) it is a TCP
proxy in front of the server that refuses connections, then forwards them."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import SERVER_URL
from tests.support import free_port, start_tracehouse, wait_for

HOLDER = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
client.command("SELECT 1")
print("holding", flush=True)
sys.stdin.read()
"""


class _Outage:
    """A store that is down until `end()`."""

    dsn: str

    def end(self) -> None:
        raise NotImplementedError


class _EmbeddedOutage(_Outage):
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.holder = subprocess.Popen([sys.executable, "-c", HOLDER, dsn], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None and self.holder.stdout.readline().strip() == "holding"

    def end(self) -> None:
        assert self.holder.stdin is not None
        self.holder.stdin.close()
        self.holder.wait(timeout=30)


class _ProxyOutage(_Outage):
    """Listens only once the outage ends, then forwards every connection to the real server."""

    def __init__(self, server_dsn: str) -> None:
        parsed = urlparse(server_dsn)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 8123)
        self.port = free_port()
        self.dsn = urlunparse(parsed._replace(netloc=parsed.netloc.replace(
            f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname), f"127.0.0.1:{self.port}")))

    def end(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with source, sink:
                while data := source.recv(65536):
                    sink.sendall(data)

        def accept() -> None:
            while True:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target)
                threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()


@contextmanager
def _outage(tmp_path: Path, server_store_dsn: str) -> Iterator[_Outage]:
    outage: _Outage = _ProxyOutage(server_store_dsn) if SERVER_URL else _EmbeddedOutage(server_store_dsn)
    try:
        yield outage
    finally:
        if isinstance(outage, _EmbeddedOutage) and outage.holder.poll() is None:
            outage.end()


def _spans(count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "patient"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for index in range(count):
        provider.get_tracer("t").start_span(f"order {index}").end()
    return list(memory.get_finished_spans())


def test_store_down_then_back(tmp_path: Path, server_store_dsn: str) -> None:
    with _outage(tmp_path, server_store_dsn) as outage:
        process = start_tracehouse(outage.dsn, log_path=str(tmp_path / "collector.log"), wait_path="/healthz")
        try:
            ready = httpx.get(f"{process.api_url}/readyz")
            assert ready.status_code == 503 and ready.json()["store"] is False

            raw = httpx.post(f"{process.otlp_http_url}/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [{
                "traceId": uuid.uuid4().hex, "spanId": "0102030405060708", "name": "x"}]}]}]})
            assert raw.status_code == 503
            assert raw.headers["Retry-After"] == "2"
            assert "could not store" in raw.json()["message"]

            spans = _spans(25)
            exporter = OTLPSpanExporter(endpoint=f"{process.otlp_http_url}/v1/traces", timeout=120)
            results: list[SpanExportResult] = []
            sender = threading.Thread(target=lambda: results.append(exporter.export(spans)))
            sender.start()  # the SDK exporter retries 503 with backoff on its own
            wait_for(lambda: 'tracehouse_receiver_requests_total{receiver="otlp_http",status="503"} 2.0'
                     in httpx.get(f"{process.otlp_http_url}/metrics").text, timeout_s=60,
                     message="the SDK's first export to be refused")
            outage.end()
            sender.join(timeout=120)
            assert results == [SpanExportResult.SUCCESS]
            wait_for(lambda: httpx.get(f"{process.api_url}/readyz").status_code == 200, timeout_s=60,
                     message="readiness once the store is back")
            assert process.count("otel_traces", "ServiceName = 'patient'") == 25
        finally:
            assert process.stop() == 0
