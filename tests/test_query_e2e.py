"""End to end: services instrumented with the real OpenTelemetry SDK (one TracerProvider and
service.name each, W3C context propagated between them) send the known topology over OTLP/HTTP to
a running `tracehouse up`; its query API answers exactly the seeded graph."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support import TraceHouseProcess, start_tracehouse, wait_for
from tests.test_query_support import (
    KNOWN_CYCLES,
    KNOWN_EDGES,
    KNOWN_NODES,
    KNOWN_TRACE_CYCLES,
    SpanSpec,
    TraceSpec,
    graph_summary,
    known_topology,
)

KINDS = {"Server": SpanKind.SERVER, "Client": SpanKind.CLIENT, "Internal": SpanKind.INTERNAL,
         "Producer": SpanKind.PRODUCER, "Consumer": SpanKind.CONSUMER}


class Services:
    """One TracerProvider per service, each exporting OTLP/HTTP to the collector."""

    def __init__(self, otlp_http_url: str) -> None:
        self._url = otlp_http_url
        self._providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> trace.Tracer:
        if service not in self._providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                                "service.instance.id": f"{service}-1"}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self._url}/v1/traces")))
            self._providers[service] = provider
        return self._providers[service].get_tracer("tests.query")

    def flush(self) -> None:
        for provider in self._providers.values():
            assert provider.force_flush(30_000)

    def shutdown(self) -> None:
        for provider in self._providers.values():
            provider.shutdown()


def emit(services: Services, traces: Sequence[TraceSpec], start: datetime) -> int:
    """Sends every trace with explicit timestamps; a call into another service carries its
    context as W3C traceparent headers, as an HTTP client and server would."""
    count = 0
    for spec in traces:
        base_ns = int((start + timedelta(seconds=spec.offset_s)).timestamp() * 1e9)
        contexts: list[Any] = []
        for span_spec in spec.spans:
            context = None
            if span_spec.parent is not None:
                parent_spec: SpanSpec = spec.spans[span_spec.parent]
                context = contexts[span_spec.parent]
                if parent_spec.service != span_spec.service:
                    headers: dict[str, str] = {}
                    propagate.inject(headers, context=context)
                    context = propagate.extract(headers)
            start_ns = base_ns + int(span_spec.offset_ms * 1e6)
            span = services.tracer(span_spec.service).start_span(
                span_spec.name, context=context, kind=KINDS[span_spec.kind], start_time=start_ns,
                attributes=span_spec.attributes)
            if span_spec.error:
                span.set_status(Status(StatusCode.ERROR, "failed"))
            span.end(end_time=start_ns + int(span_spec.duration_ms * 1e6))
            contexts.append(trace.set_span_in_context(span))
            count += 1
    return count


@pytest.fixture
def services(tracehouse: TraceHouseProcess) -> Iterator[Services]:
    emitter = Services(tracehouse.otlp_http_url)
    yield emitter
    emitter.shutdown()


def _get(tracehouse: TraceHouseProcess, path: str, **params: str | int) -> Any:
    response = httpx.get(f"{tracehouse.api_url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_known_topology_through_the_collector(tracehouse: TraceHouseProcess, services: Services) -> None:
    start = datetime.now(tz=UTC) - timedelta(seconds=120)
    sent = emit(services, known_topology(), start)
    services.flush()
    wait_for(lambda: tracehouse.count("otel_traces") == sent, timeout_s=60, message=f"{sent} spans stored")
    window = {"start": int(start.timestamp() * 1000) - 60_000, "end": int(time.time() * 1000) + 60_000}
    exact = _get(tracehouse, "/api/v1/dependencies", **window)
    hour = _get(tracehouse, "/api/v1/dependencies")
    assert exact["source"] == "raw" and hour["source"] == "rollup"
    for body in (exact, hour):
        edges, nodes = graph_summary(body)
        assert edges == KNOWN_EDGES
        assert nodes == KNOWN_NODES
        assert [c["services"] for c in body["cycles"]] == KNOWN_CYCLES
    assert next(e for e in exact["edges"] if e["target"] == "payments")["error_rate"] == 0.4
    cycles = _get(tracehouse, "/api/v1/dependencies/cycles", **window)
    assert [(c["path"], c["traces"]) for c in cycles["trace_cycles"]] == KNOWN_TRACE_CYCLES
    assert [[(e["source"], e["target"], e["calls"]) for e in c["edges"]] for c in cycles["cycles"]] == \
        [[("A", "B", 3), ("B", "C", 3), ("C", "A", 3)]]
    services_body = {s["name"]: s for s in _get(tracehouse, "/api/v1/services")["services"]}
    assert services_body["payments"]["calls"] == 5 and services_body["payments"]["error_rate"] == 0.4
    assert services_body["frontend"]["instances"] == ["frontend-1"]
    [finding] = _get(tracehouse, "/api/v1/db/n-plus-one", **window)["findings"]
    assert (finding["service"], finding["parent_operation"], finding["statement"], finding["traces"]) == \
        ("orders", "GET /orders/list", "SELECT * FROM items WHERE order_id = ?", 2)
    failed = _get(tracehouse, "/api/v1/traces", service="payments", status="error")["traces"]
    assert len(failed) == 2 and all(t["root_service"] == "frontend" and t["span_count"] == 5 for t in failed)
    detail = _get(tracehouse, f"/api/v1/traces/{failed[0]['trace_id']}")
    assert {s["service"] for s in detail["spans"]} == {"frontend", "orders", "payments"}


def test_percentiles_through_the_collector_match_numpy(tracehouse: TraceHouseProcess, services: Services) -> None:
    durations = np.random.default_rng(3).lognormal(mean=2.5, sigma=0.8, size=300)
    start = datetime.now(tz=UTC) - timedelta(seconds=90)
    traces = []
    for i, duration in enumerate(durations):
        t = TraceSpec(i * 0.1)
        t.add(SpanSpec("latency-svc", "GET /measure", "Server", None, 0, float(duration)))
        traces.append(t)
    emit(services, traces, start)
    services.flush()
    wait_for(lambda: tracehouse.count("otel_traces") == len(durations), timeout_s=60, message="spans stored")
    body = _get(tracehouse, "/api/v1/latency", service="latency-svc")
    assert body["count"] == len(durations)
    exact = np.sort(durations)
    for key, q in (("p50_ms", 0.5), ("p75_ms", 0.75), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        low = np.quantile(exact, q, method="lower") * (1 - body["relative_accuracy"]) - 1e-3
        high = np.quantile(exact, q, method="higher") * (1 + body["relative_accuracy"]) + 1e-3
        assert low <= body[key] <= high, (key, body[key], low, high)


@pytest.fixture
def fast_rollup_tracehouse(server_store_dsn: str, tmp_path: os.PathLike[str]) -> Iterator[TraceHouseProcess]:
    """`tracehouse up` whose edge rollup runs every second with 150 s of lateness."""
    process = start_tracehouse(server_store_dsn, log_path=os.path.join(tmp_path, "tracehouse.log"),
                               env={"TRACEHOUSE_LATENESS_S": "150", "TRACEHOUSE_ROLLUP_INTERVAL_S": "1"})
    try:
        yield process
    finally:
        process.stop()


def test_child_arriving_after_its_parent_is_counted_once(fast_rollup_tracehouse: TraceHouseProcess) -> None:
    """The parent's batch is stored and the rollup job runs past it before the child's batch
    arrives (within the lateness); the edge is counted once, in the rollup and in every answer."""
    tracehouse = fast_rollup_tracehouse
    emitter = Services(tracehouse.otlp_http_url)
    try:
        now = datetime.now(tz=UTC)
        warm_up = TraceSpec(0, [SpanSpec("warmup", "GET /old", "Server", None, 0, 1)])
        emit(emitter, [warm_up], now - timedelta(seconds=200))  # so the job has windows to close at once
        start = now - timedelta(seconds=130)  # the pair's window closes 150 s after it ends: ~20 s from now
        t = TraceSpec(0)
        root = t.add(SpanSpec("frontend", "GET /late", "Server", None, 0, 500))
        t.rpc(root, "orders", "GET /orders", offset_ms=10, duration_ms=400)
        emit(emitter, [TraceSpec(0, [t.spans[0], t.spans[1]])], start)
        emitter.flush()
        wait_for(lambda: tracehouse.count("otel_traces") == 3, timeout_s=30, message="parent stored")
        wait_for(lambda: tracehouse.count("tracehouse_rollup_windows", "State = 'done'") >= 2, timeout_s=30,
                 message="the rollup job to close windows after the parent arrived")
        assert tracehouse.count("tracehouse_span_links") == 0
        # the child, in a later batch, from another process that received the context in a header
        child_emitter = Services(tracehouse.otlp_http_url)
        _emit_only(child_emitter, TraceSpec(0, list(t.spans)), start, only=2, trace_id_from=tracehouse)
        child_emitter.flush()
        child_emitter.shutdown()
        wait_for(lambda: tracehouse.count("otel_traces") == 4, timeout_s=30, message="child stored")
        end_ns = int((start + timedelta(milliseconds=510)).timestamp() * 1e9)
        wait_for(lambda: tracehouse.sql("SELECT toUnixTimestamp64Nano(max(WindowEnd)) AS end FROM "
                                        "tracehouse_rollup_windows WHERE State = 'done'")[0]["end"] > end_ns,
                 timeout_s=60, message="the rollup to pass the pair")
        assert tracehouse.count("tracehouse_span_links") == 1
        hour = _get(tracehouse, "/api/v1/dependencies")
        assert graph_summary(hour)[0] == {("frontend", "orders"): (1, 0)}
    finally:
        emitter.shutdown()


def _emit_only(services: Services, spec: TraceSpec, start: datetime, *, only: int,
               trace_id_from: TraceHouseProcess) -> None:
    """Emits span `only` of `spec` as the child of the stored CLIENT span, propagating the stored
    span's context by a traceparent header, as the callee process would receive it."""
    parent = trace_id_from.sql("SELECT TraceId, SpanId FROM otel_traces WHERE SpanKind = 'Client'")[0]
    headers = {"traceparent": f"00-{parent['TraceId']}-{parent['SpanId']}-01"}
    context = propagate.extract(headers)
    span_spec = spec.spans[only]
    start_ns = int((start + timedelta(seconds=spec.offset_s)).timestamp() * 1e9) + int(span_spec.offset_ms * 1e6)
    span = services.tracer(span_spec.service).start_span(span_spec.name, context=context,
                                                         kind=KINDS[span_spec.kind], start_time=start_ns)
    span.end(end_time=start_ns + int(span_spec.duration_ms * 1e6))
