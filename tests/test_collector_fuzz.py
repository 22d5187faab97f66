"""Property tests: whatever bytes or OTLP messages a client sends, the decoders either produce rows
or raise DecodeError with a message; no other exception escapes (no database needed)."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tracehouse.collector.decode import JSON, PROTOBUF, decode_body
from tracehouse.collector.otlp_json import DecodeError
from tracehouse.collector.traces import TRACE_COLUMNS
from tracehouse.collector.zipkin import decode_zipkin

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
uint64 = st.integers(min_value=0, max_value=2**64 - 1)


def _decodes_or_refuses(body: bytes, media_type: str, signal: str) -> None:
    try:
        decoded = decode_body(body, media_type, signal)
    except DecodeError as exc:
        assert str(exc)
        return
    for batch in decoded.batches.values():
        assert all(len(column) == batch.rows for column in batch.data)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([PROTOBUF, JSON]), st.sampled_from(["traces", "metrics"]))
def test_random_bytes(body: bytes, media_type: str, signal: str) -> None:
    _decodes_or_refuses(body, media_type, signal)


def _any_value(depth: int = 0) -> st.SearchStrategy[AnyValue]:
    scalars = st.one_of(
        st.text(max_size=20).map(lambda v: AnyValue(string_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=10).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),
    )
    if depth >= 2:
        return scalars
    return st.one_of(
        scalars,
        st.lists(_any_value(depth + 1), max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(st.text(max_size=5), _any_value(depth + 1)), max_size=3).map(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))),
    )


attributes = st.lists(st.builds(KeyValue, key=st.text(max_size=10), value=_any_value()), max_size=5)
spans = st.builds(
    Span,
    trace_id=st.binary(max_size=17), span_id=st.binary(max_size=9), parent_span_id=st.binary(max_size=9),
    name=st.text(max_size=20), kind=st.integers(min_value=0, max_value=9), start_time_unix_nano=uint64,
    end_time_unix_nano=uint64, attributes=attributes,
    status=st.builds(Status, code=st.integers(min_value=0, max_value=5), message=st.text(max_size=10)),
)
trace_requests = st.lists(spans, max_size=6).map(
    lambda ss: ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=ss)])]))

number_points = st.builds(NumberDataPoint, time_unix_nano=uint64, start_time_unix_nano=uint64,
                          as_double=st.floats(), attributes=attributes)
metrics = st.one_of(
    st.builds(Metric, name=st.text(max_size=10), gauge=st.builds(Gauge, data_points=st.lists(number_points, max_size=3))),
    st.builds(Metric, name=st.text(max_size=10), sum=st.builds(Sum, data_points=st.lists(number_points, max_size=3),
                                                              is_monotonic=st.booleans())),
    st.builds(Metric, name=st.text(max_size=10), histogram=st.builds(Histogram, data_points=st.lists(st.builds(
        HistogramDataPoint, time_unix_nano=uint64, count=uint64, bucket_counts=st.lists(uint64, max_size=4),
        explicit_bounds=st.lists(st.floats(), max_size=3)), max_size=2))),
    st.builds(Metric, name=st.text(max_size=10)),
)
metric_requests = st.lists(metrics, max_size=5).map(
    lambda ms: ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=ms)])]))


@FUZZ
@given(trace_requests)
def test_random_trace_requests(request: ExportTraceServiceRequest) -> None:
    decoded = decode_body(request.SerializeToString(), PROTOBUF, "traces")
    spans_sent = len(request.resource_spans[0].scope_spans[0].spans)
    assert decoded.accepted + decoded.rejected == spans_sent
    batch = decoded.batches["otel_traces"]
    assert batch.columns == TRACE_COLUMNS
    assert all(len(tid) == 32 for tid in batch.data[1])
    assert all(0 <= ts < 2**63 for ts in batch.data[0])


@FUZZ
@given(metric_requests)
def test_random_metric_requests(request: ExportMetricsServiceRequest) -> None:
    _decodes_or_refuses(request.SerializeToString(), PROTOBUF, "metrics")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
otlp_keys = st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "attributes", "key",
                             "value", "stringValue", "intValue", "startTimeUnixNano", "kind", "links", "events",
                             "resourceMetrics", "scopeMetrics", "metrics", "gauge", "dataPoints", "exemplars"])
otlp_shaped = st.recursive(
    st.none() | st.integers() | st.text(max_size=34) | st.booleans(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(otlp_keys, children, max_size=4),
    max_leaves=25,
)


@FUZZ
@given(st.one_of(json_values, otlp_shaped), st.sampled_from(["traces", "metrics"]))
def test_random_json(document: object, signal: str) -> None:
    _decodes_or_refuses(json.dumps(document).encode(), JSON, signal)


zipkin_spans = st.lists(st.fixed_dictionaries({}, optional={
    "traceId": st.one_of(st.text(max_size=33), st.integers()), "id": st.text(max_size=17),
    "parentId": st.one_of(st.none(), st.text(max_size=17)), "name": json_values, "kind": json_values,
    "timestamp": json_values, "duration": json_values, "localEndpoint": json_values, "remoteEndpoint": json_values,
    "tags": json_values, "annotations": json_values,
}), max_size=4)


@FUZZ
@given(st.one_of(zipkin_spans, json_values))
def test_random_zipkin(document: object) -> None:
    try:
        decode_zipkin(json.dumps(document).encode())
    except DecodeError as exc:
        assert str(exc)


def test_valid_hex_ids_in_json_round_trip() -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x",
        "startTimeUnixNano": "1", "endTimeUnixNano": "3"}]}]}]}
    decoded = decode_body(json.dumps(body).encode(), JSON, "traces")
    batch = decoded.batches["otel_traces"]
    assert batch.data[1] == ["5b8efff798038103d269b633813fc60c"]
    assert base64.b64encode(bytes.fromhex(batch.data[2][0])).decode() == "7uGbfsPBsXQ="
