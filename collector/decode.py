"""Bytes of an OTLP export body -> Decoded column batches, for either content type and signal.

The one entry point the HTTP receiver uses and the fuzz tests drive: anything it cannot make sense
of raises DecodeError with a message for the client, and nothing else escapes.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracehouse.collector.batch import Decoded
from tracehouse.collector.metrics import decode_metrics
from tracehouse.collector.otlp_json import DecodeError, parse_metrics_json, parse_trace_json
from tracehouse.collector.traces import DEFAULT_LIMITS, DecodeLimits, decode_traces

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def parse_protobuf(body: bytes, message: Message) -> None:
    try:
        message.ParseFromString(body)
    except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a valid protobuf {type(message).__name__}: {exc}") from None


def decode_body(body: bytes, media_type: str, signal: str, limits: DecodeLimits = DEFAULT_LIMITS) -> Decoded:
    """`signal` is "traces" or "metrics"; `media_type` is PROTOBUF or JSON."""
    if signal == "traces":
        if media_type == JSON:
            traces = parse_trace_json(body, ExportTraceServiceRequest)
        else:
            traces = ExportTraceServiceRequest()
            parse_protobuf(body, traces)
        return decode_traces(traces, limits)
    if media_type == JSON:
        metrics = parse_metrics_json(body, ExportMetricsServiceRequest)
    else:
        metrics = ExportMetricsServiceRequest()
        parse_protobuf(body, metrics)
    return decode_metrics(metrics, limits.max_attributes)
