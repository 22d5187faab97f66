"""The real OpenTelemetry SDK exporters (OTLP/HTTP and OTLP/gRPC) send spans and metrics to a running
`tracehouse up`; what is read back from ClickHouse is exactly what was sent."""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.support import TraceHouseProcess

ATTRIBUTES: dict[str, Any] = {
    "text": "héllo wörld",
    "flag": True,
    "count": 42,
    "negative": -7,
    "ratio": 3.5,
    "strings": ["a", "b"],
    "ints": [1, 2, 3],
    "floats": [0.5, 1.25],
    "bools": [True, False],
}
EXPECTED_TEXT = {
    "text": "héllo wörld",
    "flag": "true",
    "count": "42",
    "negative": "-7",
    "ratio": "3.5",
    "strings": '["a","b"]',
    "ints": "[1,2,3]",
    "floats": "[0.5,1.25]",
    "bools": "[true,false]",
}


def _span_exporter(kind: str, tracehouse: TraceHouseProcess) -> Any:
    if kind == "http":
        return HttpSpanExporter(endpoint=f"{tracehouse.otlp_http_url}/v1/traces")
    if kind == "http-gzip":
        return HttpSpanExporter(endpoint=f"{tracehouse.otlp_http_url}/v1/traces", compression=HttpCompression.Gzip)
    return GrpcSpanExporter(endpoint=tracehouse.otlp_grpc_endpoint, insecure=True,
                            compression=grpc.Compression.Gzip if kind == "grpc-gzip" else None)


def _spans(tracehouse: TraceHouseProcess, service: str) -> dict[str, dict[str, Any]]:
    rows = tracehouse.sql(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, toUnixTimestamp64Nano(Timestamp) AS start_ns,"
        " Duration, StatusCode, StatusMessage, SpanAttributes, ResourceAttributes, ScopeName, ScopeVersion,"
        " arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS event_ns, Events.Name AS event_names,"
        " Events.Attributes AS event_attrs, Links.TraceId AS link_traces, Links.SpanId AS link_spans,"
        " Links.Attributes AS link_attrs FROM otel_traces WHERE ServiceName = {service:String}",
        {"service": service},
    )
    return {row["SpanName"]: row for row in rows}


@pytest.mark.parametrize("exporter_kind", ["http", "http-gzip", "grpc", "grpc-gzip"])
def test_sdk_spans_round_trip(shared_tracehouse: TraceHouseProcess, exporter_kind: str) -> None:
    service = f"checkout-{exporter_kind}-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "2.1.0"}))
    provider.add_span_processor(SimpleSpanProcessor(_span_exporter(exporter_kind, shared_tracehouse)))
    tracer = provider.get_tracer("tests.checkout", "9.9.9")

    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
        root.set_attributes(ATTRIBUTES)
        root.add_event("cart.loaded", {"items": 3, "note": "ok"})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.set_status(Status(StatusCode.ERROR, "deadlock detected"))
        linked = tracer.start_span("publish receipt", kind=SpanKind.PRODUCER,
                                   links=[Link(child.get_span_context(), {"link.reason": "follows"})])
        linked.end()
    provider.shutdown()

    rows = _spans(shared_tracehouse, service)
    assert set(rows) == {"POST /checkout", "SELECT orders", "publish receipt"}
    sent = {
        "POST /checkout": root, "SELECT orders": child, "publish receipt": linked,
    }
    for name, span in sent.items():
        row = rows[name]
        context = span.get_span_context()
        assert row["TraceId"] == format(context.trace_id, "032x")
        assert row["SpanId"] == format(context.span_id, "016x")
        parent = span.parent
        assert row["ParentSpanId"] == (format(parent.span_id, "016x") if parent else "")
        assert row["start_ns"] == span.start_time
        assert row["Duration"] == span.end_time - span.start_time
        assert row["ServiceName"] == service
        assert row["ResourceAttributes"]["service.version"] == "2.1.0"
        assert (row["ScopeName"], row["ScopeVersion"]) == ("tests.checkout", "9.9.9")
    assert rows["POST /checkout"]["SpanKind"] == "Server"
    assert rows["SELECT orders"]["SpanKind"] == "Client"
    assert rows["publish receipt"]["SpanKind"] == "Producer"
    assert rows["POST /checkout"]["SpanAttributes"] == EXPECTED_TEXT
    assert rows["POST /checkout"]["StatusCode"] == "Unset"
    assert (rows["SELECT orders"]["StatusCode"], rows["SELECT orders"]["StatusMessage"]) == ("Error", "deadlock detected")
    event = root.events[0]
    assert rows["POST /checkout"]["event_names"] == ["cart.loaded"]
    assert rows["POST /checkout"]["event_ns"] == [event.timestamp]
    assert rows["POST /checkout"]["event_attrs"] == [{"items": "3", "note": "ok"}]
    assert rows["publish receipt"]["link_traces"] == [format(child.get_span_context().trace_id, "032x")]
    assert rows["publish receipt"]["link_spans"] == [format(child.get_span_context().span_id, "016x")]
    assert rows["publish receipt"]["link_attrs"] == [{"link.reason": "follows"}]
    # The trace-id lookup table is filled by its materialized view.
    trace_id = rows["POST /checkout"]["TraceId"]
    assert shared_tracehouse.count("otel_traces_trace_id_ts", f"TraceId = '{trace_id}'") >= 1


@pytest.mark.parametrize("exporter_kind", ["http", "grpc"])
def test_sdk_metrics_round_trip(shared_tracehouse: TraceHouseProcess, exporter_kind: str) -> None:
    service = f"metrics-{exporter_kind}-{uuid.uuid4().hex[:6]}"
    exporter: Any
    if exporter_kind == "http":
        exporter = HttpMetricExporter(endpoint=f"{shared_tracehouse.otlp_http_url}/v1/metrics")
    else:
        exporter = GrpcMetricExporter(endpoint=shared_tracehouse.otlp_grpc_endpoint, insecure=True)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": service}), metric_readers=[reader])
    meter = provider.get_meter("tests.metrics")

    requests = meter.create_counter("shop.requests", unit="{request}", description="requests served")
    requests.add(5, {"route": "/a"})
    requests.add(7, {"route": "/a"})
    queue = meter.create_up_down_counter("shop.queue.depth")
    queue.add(10)
    queue.add(-4)
    latency = meter.create_histogram("shop.latency", unit="ms")
    for value in (3.0, 12.0, 480.0):
        latency.record(value, {"route": "/a"})

    def temperature(options: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "server"})]

    meter.create_observable_gauge("shop.temperature", callbacks=[temperature], unit="Cel")
    provider.shutdown()

    where = {"service": service}
    sums = {r["MetricName"]: r for r in shared_tracehouse.sql(
        "SELECT MetricName, Value, IsMonotonic, AggregationTemporality, Attributes, MetricUnit, MetricDescription"
        " FROM otel_metrics_sum WHERE ServiceName = {service:String}", where)}
    assert sums["shop.requests"]["Value"] == 12
    assert sums["shop.requests"]["IsMonotonic"] is True
    assert sums["shop.requests"]["AggregationTemporality"] == 2  # cumulative
    assert sums["shop.requests"]["Attributes"] == {"route": "/a"}
    assert (sums["shop.requests"]["MetricUnit"], sums["shop.requests"]["MetricDescription"]) == ("{request}", "requests served")
    assert sums["shop.queue.depth"]["Value"] == 6
    assert sums["shop.queue.depth"]["IsMonotonic"] is False

    [histogram] = shared_tracehouse.sql(
        "SELECT Count, Sum, Min, Max, BucketCounts, ExplicitBounds FROM otel_metrics_histogram"
        " WHERE ServiceName = {service:String} AND MetricName = 'shop.latency'", where)
    assert (histogram["Count"], histogram["Sum"], histogram["Min"], histogram["Max"]) == (3, 495.0, 3.0, 480.0)
    assert sum(histogram["BucketCounts"]) == 3
    assert len(histogram["BucketCounts"]) == len(histogram["ExplicitBounds"]) + 1

    [gauge] = shared_tracehouse.sql(
        "SELECT Value, Attributes, MetricUnit FROM otel_metrics_gauge WHERE ServiceName = {service:String}", where)
    assert (gauge["Value"], gauge["Attributes"], gauge["MetricUnit"]) == (21.5, {"room": "server"}, "Cel")


def test_self_metrics_count_what_was_stored(shared_tracehouse: TraceHouseProcess) -> None:
    import httpx

    service = f"selfmon-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(_span_exporter("http", shared_tracehouse)))
    for index in range(3):
        provider.get_tracer("t").start_span(f"op{index}").end()
    provider.shutdown()
    for url in (shared_tracehouse.otlp_http_url, shared_tracehouse.api_url):
        text = httpx.get(f"{url}/metrics").text
        assert 'tracehouse_receiver_stored_items_total{receiver="otlp_http",signal="traces"}' in text
        assert "tracehouse_exporter_insert_duration_seconds_bucket" in text
        assert "tracehouse_queue_rows" in text
        assert json.loads(httpx.get(f"{url}/healthz").text) == {"status": "ok"}
    assert "tracehouse_alert_evaluation_passes" in httpx.get(f"{shared_tracehouse.api_url}/metrics").text
