"""Bad input gets the right status and a clear message; nothing else is lost, nothing crashes."""

from __future__ import annotations

import gzip
import os
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support import TraceHouseProcess, wait_for

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _request(service: str, spans: list[Span]) -> ExportTraceServiceRequest:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource,
                                                                   scope_spans=[ScopeSpans(spans=spans)])])


def _span(name: str, trace_id: bytes | None = None, span_id: bytes | None = None, **fields: object) -> Span:
    now = time.time_ns()
    return Span(trace_id=trace_id if trace_id is not None else os.urandom(16),
                span_id=span_id if span_id is not None else os.urandom(8),
                name=name, start_time_unix_nano=now, end_time_unix_nano=now + 1000, **fields)  # type: ignore[arg-type]


@pytest.fixture
def good_client(shared_tracehouse: TraceHouseProcess) -> Iterator[tuple[str, list[int]]]:
    """Another client exporting good spans with the real SDK the whole time; yields its service name
    and the list of span counts it was told were stored."""
    service = f"bystander-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=SdkResource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{shared_tracehouse.otlp_http_url}/v1/traces")))
    tracer = provider.get_tracer("bystander")
    stop = threading.Event()
    sent: list[int] = []

    def loop() -> None:
        while not stop.is_set():
            tracer.start_span("good work").end()
            sent.append(1)

    thread = threading.Thread(target=loop)
    thread.start()
    yield service, sent
    wait_for(lambda: len(sent) >= 5, timeout_s=30, message="the bystander to send a few spans")
    stop.set()
    thread.join()
    provider.shutdown()
    # Every span the bystander sent during the abuse is stored, exactly once.
    assert shared_tracehouse.count("otel_traces", f"ServiceName = '{service}'") == len(sent) > 0
    assert httpx.get(f"{shared_tracehouse.otlp_http_url}/readyz").status_code == 200


def _status(response: httpx.Response) -> Status:
    assert response.headers["content-type"] == "application/x-protobuf"
    return Status.FromString(response.content)


def test_bad_http_input(shared_tracehouse: TraceHouseProcess, good_client: tuple[str, list[int]]) -> None:
    url = f"{shared_tracehouse.otlp_http_url}/v1/traces"
    valid = _request("victim", [_span("ok")]).SerializeToString()

    truncated = httpx.post(url, content=valid[: len(valid) // 2], headers=PROTOBUF)
    assert truncated.status_code == 400
    assert "not a valid protobuf ExportTraceServiceRequest" in _status(truncated).message

    wrong_type = httpx.post(url, content=valid, headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    assert "Content-Type must be application/x-protobuf or application/json" in wrong_type.json()["message"]

    bad_json = httpx.post(url, content=b'{"resourceSpans": [', headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert "not valid JSON" in bad_json.json()["message"]

    not_hex = httpx.post(url, json={"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "01"}]}]}]})
    assert not_hex.status_code == 400
    assert "resourceSpans[0].scopeSpans[0].spans[0].traceId" in not_hex.json()["message"]

    bad_gzip = httpx.post(url, content=b"not gzip at all", headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400


def test_ids_of_the_wrong_length_are_rejected_one_by_one(shared_tracehouse: TraceHouseProcess,
                                                         good_client: tuple[str, list[int]]) -> None:
    service = f"ids-{uuid.uuid4().hex[:6]}"
    spans = [_span("good one"), _span("short trace", trace_id=b"\x01" * 15), _span("long span", span_id=b"\x01" * 9),
             _span("zero trace", trace_id=bytes(16)), _span("good two")]
    response = httpx.post(f"{shared_tracehouse.otlp_http_url}/v1/traces",
                          content=_request(service, spans).SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 3
    assert "span 1 ('short trace') rejected: trace_id must be 16 bytes" in partial.error_message
    stored = {r["SpanName"] for r in shared_tracehouse.sql(
        "SELECT SpanName FROM otel_traces WHERE ServiceName = {s:String}", {"s": service})}
    assert stored == {"good one", "good two"}

    # The same over gRPC.
    with grpc.insecure_channel(shared_tracehouse.otlp_grpc_endpoint) as channel:
        reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(_request(service + "-grpc", spans), timeout=30)
    assert reply.partial_success.rejected_spans == 3


def test_huge_attribute_count_is_trimmed_with_a_warning(shared_tracehouse: TraceHouseProcess,
                                                        good_client: tuple[str, list[int]]) -> None:
    service = f"attrs-{uuid.uuid4().hex[:6]}"
    attributes = [KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(100_000)]
    body = _request(service, [_span("wide", attributes=attributes)]).SerializeToString()
    response = httpx.post(f"{shared_tracehouse.otlp_http_url}/v1/traces", content=body, headers=PROTOBUF, timeout=60)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 0
    assert "98976 attributes dropped over the limit of 1024" in partial.error_message
    [row] = shared_tracehouse.sql("SELECT length(SpanAttributes) AS n, SpanAttributes['k1023'] AS last"
                                  " FROM otel_traces WHERE ServiceName = {s:String}", {"s": service})
    assert row == {"n": 1024, "last": "1023"}


def test_oversized_bodies_get_413(shared_tracehouse: TraceHouseProcess, good_client: tuple[str, list[int]]) -> None:
    url = f"{shared_tracehouse.otlp_http_url}/v1/traces"
    big = os.urandom(20 * 1024 * 1024)
    too_big = httpx.post(url, content=big, headers=PROTOBUF, timeout=60)
    assert too_big.status_code == 413
    assert "over the limit of 16777216 bytes" in _status(too_big).message

    bomb = gzip.compress(bytes(200 * 1024 * 1024), compresslevel=9)  # 200 MiB of zeros in ~200 KiB
    assert len(bomb) < 1024 * 1024
    exploded = httpx.post(url, content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=60)
    assert exploded.status_code == 413
    assert "after gzip decompression" in _status(exploded).message

    zipkin_big = httpx.post(shared_tracehouse.zipkin_url, content=big, headers={"Content-Type": "application/json"},
                            timeout=60)
    assert zipkin_big.status_code == 413


def test_bad_zipkin_input(shared_tracehouse: TraceHouseProcess, good_client: tuple[str, list[int]]) -> None:
    url = shared_tracehouse.zipkin_url
    cases = {
        b"[{": "not valid JSON",
        b'{"traceId": "1"}': "JSON array",
        b'[{"traceId": "xyz", "id": "0123456789abcdef"}]': "span 0.traceId must be 16 or 32 hex characters",
        b'[{"traceId": "0123456789abcdef", "id": "12"}]': "span 0.id must be 16 hex characters",
        b'[{"traceId": "0123456789abcdef", "id": "0123456789abcdef", "timestamp": -5}]': "span 0.timestamp",
    }
    for body, message in cases.items():
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        assert message in response.text, (body, response.text)


def test_bad_grpc_input(shared_tracehouse: TraceHouseProcess, good_client: tuple[str, list[int]]) -> None:
    with grpc.insecure_channel(shared_tracehouse.otlp_grpc_endpoint,
                               options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                     request_serializer=None, response_deserializer=None)
        valid = _request("victim", [_span("ok")]).SerializeToString()
        with pytest.raises(grpc.RpcError) as truncated:
            export(valid[: len(valid) // 2], timeout=30)
        assert truncated.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf ExportTraceServiceRequest" in (truncated.value.details() or "")
        with pytest.raises(grpc.RpcError) as too_big:
            export(os.urandom(20 * 1024 * 1024), timeout=60)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
