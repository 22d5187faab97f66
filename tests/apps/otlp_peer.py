"""An OTLP/HTTP endpoint for tests, built on the standard library's http.server: it records every
request (decoded with the OTLP protobuf classes) and answers what the test scripts — 200, 429 with
Retry-After, 503 — optionally forwarding accepted payloads to a real collector."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class Received:
    path: str
    at: float  # monotonic seconds
    status: int  # what the peer answered
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def spans(self) -> list:
        if self.path != "/v1/traces":
            return []
        request = ExportTraceServiceRequest.FromString(self.body)
        return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def resource_attributes(self) -> list[dict[str, str]]:
        request = (ExportTraceServiceRequest if self.path == "/v1/traces" else ExportMetricsServiceRequest).FromString(
            self.body)
        groups = request.resource_spans if self.path == "/v1/traces" else request.resource_metrics
        return [{kv.key: _text(kv.value) for kv in group.resource.attributes} for group in groups]

    def metric_names(self) -> set[str]:
        if self.path != "/v1/metrics":
            return set()
        request = ExportMetricsServiceRequest.FromString(self.body)
        return {m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def _text(value: object) -> str:
    kind = value.WhichOneof("value")  # type: ignore[attr-defined]
    return str(getattr(value, kind)) if kind else ""


@dataclass
class OtlpPeer:
    """Answers `default_status` unless `script` has queued answers (status, Retry-After) left."""

    default_status: int = 200
    retry_after: str | None = None
    forward_to: str | None = None
    delay_s: float = 0.0
    script: list[tuple[int, str | None]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self) -> tuple[int, str | None]:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            return self.default_status, self.retry_after

    def record(self, entry: Received) -> None:
        with self.lock:
            self.received.append(entry)

    def accepted(self, path: str = "/v1/traces") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path and r.status == 200]

    def span_ids(self) -> set[bytes]:
        return {span.span_id for r in self.accepted() for span in r.spans()}


def _handler(peer: OtlpPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence access logs
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if peer.delay_s:
                time.sleep(peer.delay_s)
            status, retry_after = peer.answer()
            if status == 200 and peer.forward_to:
                upstream = httpx.post(peer.forward_to.rstrip("/") + self.path, content=body,
                                      headers={"Content-Type": "application/x-protobuf"}, timeout=30)
                status = upstream.status_code
            peer.record(Received(self.path, time.monotonic(), status, body,
                                 {key.lower(): value for key, value in self.headers.items()}))
            self.send_response(status)
            if retry_after is not None and status != 200:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@contextmanager
def running_peer(peer: OtlpPeer | None = None, port: int = 0) -> Iterator[OtlpPeer]:
    peer = peer or OtlpPeer()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(peer))
    server.daemon_threads = True
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="otlp-peer", daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
