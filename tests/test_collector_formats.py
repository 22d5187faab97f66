"""OTLP/JSON (the protocol repository's own examples), gzip bodies and Zipkin v2 JSON (from py_zipkin)
are stored as the same rows as OTLP protobuf."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from py_zipkin import Encoding, Kind
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import zipkin_span

from tests.support import TraceHouseProcess

DATA = Path(__file__).parent / "data" / "otlp"
EXAMPLE_EPOCH_NS = 1544712660000000000  # the examples' own start time (2018), moved to now below


def _example(name: str, service: str) -> tuple[dict[str, Any], int]:
    """An example body with times moved to the present (older data would be past retention)
    and a service name of this test's own; returns the body and the time shift."""
    shift_ns = time.time_ns() - 60_000_000_000 - EXAMPLE_EPOCH_NS
    text = (DATA / name).read_text().replace('"my.service"', json.dumps(service))
    body = json.loads(text)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("UnixNano"):
                    node[key] = str(int(value) + shift_ns)  # int64 as a string, as OTLP/JSON allows
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return body, shift_ns


def test_otlp_json_trace_example(shared_tracehouse: TraceHouseProcess) -> None:
    service = f"json-{uuid.uuid4().hex[:6]}"
    body, shift_ns = _example("trace.json", service)
    response = httpx.post(f"{shared_tracehouse.otlp_http_url}/v1/traces", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}  # no partial_success: everything was accepted
    [row] = shared_tracehouse.sql(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, Duration, SpanAttributes, ScopeName, ScopeVersion,"
        " toUnixTimestamp64Nano(Timestamp) AS start_ns FROM otel_traces WHERE ServiceName = {s:String}", {"s": service})
    assert row["TraceId"] == "5b8efff798038103d269b633813fc60c"
    assert row["SpanId"] == "eee19b7ec3c1b174"
    assert row["ParentSpanId"] == "eee19b7ec3c1b173"
    assert (row["SpanName"], row["SpanKind"]) == ("I'm a server span", "Server")
    assert row["Duration"] == 1_000_000_000
    assert row["start_ns"] == EXAMPLE_EPOCH_NS + shift_ns
    assert row["SpanAttributes"] == {"my.span.attr": "some value"}
    assert (row["ScopeName"], row["ScopeVersion"]) == ("my.library", "1.0.0")


def test_otlp_json_metrics_example_gzipped(shared_tracehouse: TraceHouseProcess) -> None:
    service = f"jsonm-{uuid.uuid4().hex[:6]}"
    body, _ = _example("metrics.json", service)
    response = httpx.post(f"{shared_tracehouse.otlp_http_url}/v1/metrics", content=gzip.compress(json.dumps(body).encode()),
                          headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    where = {"s": service}
    [counter] = shared_tracehouse.sql("SELECT MetricName, Value, IsMonotonic, AggregationTemporality, Attributes,"
                                      " ScopeAttributes FROM otel_metrics_sum WHERE ServiceName = {s:String}", where)
    assert (counter["MetricName"], counter["Value"], counter["IsMonotonic"], counter["AggregationTemporality"]) == (
        "my.counter", 5.0, True, 1)
    assert counter["Attributes"] == {"my.counter.attr": "some value"}
    assert counter["ScopeAttributes"] == {"my.scope.attribute": "some scope attribute"}
    [gauge] = shared_tracehouse.sql("SELECT MetricName, Value FROM otel_metrics_gauge WHERE ServiceName = {s:String}", where)
    assert (gauge["MetricName"], gauge["Value"]) == ("my.gauge", 10.0)
    [histogram] = shared_tracehouse.sql("SELECT Count, Sum, BucketCounts, ExplicitBounds, Min, Max FROM"
                                        " otel_metrics_histogram WHERE ServiceName = {s:String}", where)
    assert histogram == {"Count": 3, "Sum": 3.0, "BucketCounts": [1, 1, 1], "ExplicitBounds": [1.0], "Min": 1.0,
                         "Max": 1.0}


def test_gzip_protobuf_body(shared_tracehouse: TraceHouseProcess) -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    service = f"gz-{uuid.uuid4().hex[:6]}"
    body, _ = _example("trace.json", service)
    # Same content as protobuf: convert the hex ids the way OTLP/JSON differs from proto3 JSON.
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for key in ("traceId", "spanId", "parentSpanId"):
        import base64

        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    message = json_format.ParseDict(body, ExportTraceServiceRequest())
    response = httpx.post(f"{shared_tracehouse.otlp_http_url}/v1/traces",
                          content=gzip.compress(message.SerializeToString()),
                          headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert shared_tracehouse.count("otel_traces", f"ServiceName = '{service}'") == 1


class _ZipkinTransport(BaseTransportHandler):  # type: ignore[misc]
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.statuses: list[int] = []

    def get_max_payload_bytes(self) -> None:
        return None

    def send(self, payload: bytes) -> None:
        response = httpx.post(self.url, content=payload, headers={"Content-Type": "application/json"})
        self.statuses.append(response.status_code)


def test_zipkin_v2_from_py_zipkin(shared_tracehouse: TraceHouseProcess) -> None:
    service = f"zipkin-{uuid.uuid4().hex[:6]}"
    transport = _ZipkinTransport(shared_tracehouse.zipkin_url)
    with zipkin_span(service_name=service, span_name="GET /cart", transport_handler=transport, sample_rate=100.0,
                     encoding=Encoding.V2_JSON, kind=Kind.SERVER) as root:
        root.update_binary_annotations({"http.method": "GET", "cart.items": 3})
        root.add_annotation("cache.miss")
        with zipkin_span(service_name=service, span_name="redis get", kind=Kind.CLIENT) as child:
            child.add_sa_binary_annotation(port=6379, service_name="redis", host="127.0.0.1")
            child.update_binary_annotations({"error": "timeout"})
    assert transport.statuses == [202]
    rows = {r["SpanName"]: r for r in shared_tracehouse.sql(
        "SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, SpanAttributes, StatusCode, StatusMessage,"
        " Events.Name AS events, Duration FROM otel_traces WHERE ServiceName = {s:String}", {"s": service})}
    assert set(rows) == {"GET /cart", "redis get"}
    server = rows["GET /cart"]
    client = rows["redis get"]
    assert server["SpanKind"] == "Server" and client["SpanKind"] == "Client"
    assert len(server["TraceId"]) == 32 and client["TraceId"] == server["TraceId"]
    assert client["ParentSpanId"] == server["SpanId"] and server["ParentSpanId"] == ""
    assert server["SpanAttributes"]["http.method"] == "GET"
    assert server["SpanAttributes"]["cart.items"] == "3"
    assert server["events"] == ["cache.miss"]
    assert client["SpanAttributes"]["peer.service"] == "redis"
    assert client["SpanAttributes"]["network.peer.address"] == "127.0.0.1"
    assert client["SpanAttributes"]["network.peer.port"] == "6379"
    assert (client["StatusCode"], client["StatusMessage"]) == ("Error", "timeout")
