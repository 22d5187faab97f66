"""OTLP/gRPC receiver: the trace and metrics Export services (gzip is handled by grpc itself)."""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracehouse.collector.health import Health
from tracehouse.collector.ingest import Failure, Ingest

_CODES = {code.value[0]: code for code in grpc.StatusCode}


async def _abort(context: grpc.aio.ServicerContext, failure: Failure, retry_after_s: int) -> None:
    if failure.retryable:
        # OTLP/gRPC clients read the retry delay from RetryInfo; a plain trailer is a hint for others.
        context.set_trailing_metadata((("retry-after", str(retry_after_s)),))
    await context.abort(_CODES[failure.grpc_code], failure.message)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, ingest: Ingest, health: Health) -> None:
        self.ingest = ingest
        self.health = health

    async def Export(self, request: ExportTraceServiceRequest,  # noqa: N802 - gRPC method name
                     context: grpc.aio.ServicerContext) -> ExportTraceServiceResponse:
        if self.health.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector is shutting down")
        outcome = await self.ingest.store("otlp_grpc", "traces", lambda: self.ingest.decode_traces(request))
        if isinstance(outcome, Failure):
            await _abort(context, outcome, self.ingest.settings.retry_after_s)
            raise AssertionError("unreachable")  # abort raises
        response = ExportTraceServiceResponse()
        if outcome.rejected or outcome.messages:
            response.partial_success.rejected_spans = outcome.rejected
            response.partial_success.error_message = outcome.error_message
        return response


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, ingest: Ingest, health: Health) -> None:
        self.ingest = ingest
        self.health = health

    async def Export(self, request: ExportMetricsServiceRequest,  # noqa: N802 - gRPC method name
                     context: grpc.aio.ServicerContext) -> ExportMetricsServiceResponse:
        if self.health.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector is shutting down")
        outcome = await self.ingest.store("otlp_grpc", "metrics", lambda: self.ingest.decode_metrics(request))
        if isinstance(outcome, Failure):
            await _abort(context, outcome, self.ingest.settings.retry_after_s)
            raise AssertionError("unreachable")
        response = ExportMetricsServiceResponse()
        if outcome.rejected or outcome.messages:
            response.partial_success.rejected_data_points = outcome.rejected
            response.partial_success.error_message = outcome.error_message
        return response


def build_grpc_server(ingest: Ingest, health: Health, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """The server and the port it bound (useful when `port` is 0)."""
    limit = ingest.settings.max_body_bytes
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(ingest, health), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsService(ingest, health), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind OTLP/gRPC to {host}:{port}")
    return server, bound
