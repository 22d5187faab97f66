"""OTLP/HTTP (`POST /v1/traces`, `POST /v1/metrics`) and Zipkin v2 (`POST /api/v2/spans`) receivers,
plus the collector's `/healthz`, `/readyz` and `/metrics`, as Starlette apps served by uvicorn."""

from __future__ import annotations

import zlib
from collections.abc import Callable

from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tracehouse.collector.batch import Decoded
from tracehouse.collector.decode import JSON, PROTOBUF
from tracehouse.collector.health import Health
from tracehouse.collector.ingest import Failure, Ingest
from tracehouse.collector.otlp_json import DecodeError, response_json


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The request body, gunzipped when so encoded; BodyTooLarge past `limit_bytes` either way."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit_bytes:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise BodyTooLarge(f"body is over the limit of {limit_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise DecodeError(f"unsupported Content-Encoding {encoding!r}; use gzip or identity")
    # Bounded decompression: a gzip bomb stops at the limit instead of filling memory.
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)
    try:
        out = inflater.decompress(body, limit_bytes + 1)
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit_bytes or inflater.unconsumed_tail:
        raise BodyTooLarge(f"body is over the limit of {limit_bytes} bytes after {encoding} decompression")
    if not inflater.eof:
        raise DecodeError(f"body is truncated {encoding} data")
    return out


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _status_response(status: int, message: str, media_type: str, retry_after_s: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s else None
    grpc_code = {400: 3, 413: 3, 415: 3, 429: 8, 503: 14}.get(status, 13)
    if media_type == PROTOBUF:
        body = Status(code=grpc_code, message=message).SerializeToString()
        return Response(body, status_code=status, media_type=PROTOBUF, headers=headers)
    return JSONResponse({"code": grpc_code, "message": message}, status_code=status, headers=headers)


class OtlpHttpReceiver:
    def __init__(self, ingest: Ingest, health: Health) -> None:
        self.ingest = ingest
        self.health = health

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/traces", self.traces, methods=["POST"]),
            Route("/v1/metrics", self.metrics, methods=["POST"]),
            *self.health.routes(),
        ])

    async def traces(self, request: Request) -> Response:
        def respond(decoded: Decoded) -> Message:
            response = ExportTraceServiceResponse()
            if decoded.rejected or decoded.messages:
                response.partial_success.rejected_spans = decoded.rejected
                response.partial_success.error_message = decoded.error_message
            return response

        return await self._export(request, "traces", respond)

    async def metrics(self, request: Request) -> Response:
        def respond(decoded: Decoded) -> Message:
            response = ExportMetricsServiceResponse()
            if decoded.rejected or decoded.messages:
                response.partial_success.rejected_data_points = decoded.rejected
                response.partial_success.error_message = decoded.error_message
            return response

        return await self._export(request, "metrics", respond)

    async def _export(self, request: Request, signal: str, respond: Callable[[Decoded], Message]) -> Response:
        media_type = _media_type(request)
        if media_type not in (PROTOBUF, JSON):
            return _status_response(415, f"Content-Type must be {PROTOBUF} or {JSON}, not {media_type or 'missing'!r}",
                                    JSON)
        if self.health.draining:
            return _status_response(503, "the collector is shutting down", media_type, self.ingest.settings.retry_after_s)
        try:
            body = await read_body(request, self.ingest.settings.max_body_bytes)
        except BodyTooLarge as exc:
            return _status_response(413, str(exc), media_type)
        except DecodeError as exc:
            return _status_response(400, str(exc), media_type)

        outcome = await self.ingest.store_body("otlp_http", signal, signal, body, media_type)
        if isinstance(outcome, Failure):
            retry = self.ingest.settings.retry_after_s if outcome.retryable else None
            return _status_response(outcome.http_status, outcome.message, media_type, retry)
        reply = respond(outcome)
        if media_type == PROTOBUF:
            return Response(reply.SerializeToString(), media_type=PROTOBUF)
        return Response(response_json(reply), media_type=JSON)


class ZipkinReceiver:
    def __init__(self, ingest: Ingest, health: Health) -> None:
        self.ingest = ingest
        self.health = health

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/v2/spans", self.spans, methods=["POST"]), *self.health.routes()])

    async def spans(self, request: Request) -> Response:
        media_type = _media_type(request)
        if media_type not in (JSON, ""):
            return PlainTextResponse(f"Content-Type must be {JSON} (Zipkin v2 JSON), not {media_type!r}", 415)
        if self.health.draining:
            return PlainTextResponse("the collector is shutting down", 503,
                                     headers={"Retry-After": str(self.ingest.settings.retry_after_s)})
        try:
            body = await read_body(request, self.ingest.settings.max_body_bytes)
        except BodyTooLarge as exc:
            return PlainTextResponse(str(exc), 413)
        except DecodeError as exc:
            return PlainTextResponse(str(exc), 400)
        outcome = await self.ingest.store_body("zipkin", "traces", "zipkin", body)
        if isinstance(outcome, Failure):
            headers = {"Retry-After": str(self.ingest.settings.retry_after_s)} if outcome.retryable else None
            return PlainTextResponse(outcome.message, outcome.http_status, headers=headers)
        return Response(status_code=202)
