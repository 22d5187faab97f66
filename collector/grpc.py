"""OTLP/gRPC receiver: the trace and metrics Export services (gzip is handled by grpc itself).

Requests are taken as raw bytes and decoded by the same decoders as OTLP/HTTP protobuf bodies, so
that both receivers share one decoding path (and its worker processes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tracehouse.collector.batch import Decoded
from tracehouse.collector.decode import PROTOBUF
from tracehouse.collector.health import Health
from tracehouse.collector.ingest import Failure, Ingest

_CODES = {code.value[0]: code for code in grpc.StatusCode}
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


def _trace_response(decoded: Decoded) -> Message:
    response = ExportTraceServiceResponse()
    if decoded.rejected or decoded.messages:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = decoded.error_message
    return response


def _metrics_response(decoded: Decoded) -> Message:
    response = ExportMetricsServiceResponse()
    if decoded.rejected or decoded.messages:
        response.partial_success.rejected_data_points = decoded.rejected
        response.partial_success.error_message = decoded.error_message
    return response


def _export_handler(ingest: Ingest, health: Health, signal: str,
                    respond: Callable[[Decoded], Message]) -> Callable[[bytes, grpc.aio.ServicerContext],
                                                                        Awaitable[Message]]:
    async def export(body: bytes, context: grpc.aio.ServicerContext) -> Message:
        if health.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector is shutting down")
        outcome = await ingest.store_body("otlp_grpc", signal, signal, body, PROTOBUF)
        if isinstance(outcome, Failure):
            if outcome.retryable:
                # OTLP/gRPC clients retry UNAVAILABLE and RESOURCE_EXHAUSTED; this trailer is a hint.
                context.set_trailing_metadata((("retry-after", str(ingest.settings.retry_after_s)),))
            await context.abort(_CODES[outcome.grpc_code], outcome.message)
        assert isinstance(outcome, Decoded)
        return respond(outcome)

    return export


def build_grpc_server(ingest: Ingest, health: Health, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """The server and the port it bound (useful when `port` is 0)."""
    server = grpc.aio.server(maximum_concurrent_rpcs=ingest.settings.max_concurrent_requests, options=[
        ("grpc.max_receive_message_length", ingest.settings.max_body_bytes),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ])
    for service, signal, respond in ((TRACE_SERVICE, "traces", _trace_response),
                                     (METRICS_SERVICE, "metrics", _metrics_response)):
        handler = grpc.unary_unary_rpc_method_handler(
            _export_handler(ingest, health, signal, respond),
            request_deserializer=None,  # raw bytes: decoded by the shared decoders
            response_serializer=lambda message: message.SerializeToString(),
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": handler}),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind OTLP/gRPC to {host}:{port}")
    return server, bound
