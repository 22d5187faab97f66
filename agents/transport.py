"""Sending one already-encoded OTLP request to one collector endpoint, and classifying the answer.

HTTP (`application/x-protobuf`, optionally gzip) through a `requests.Session`, or gRPC through a
channel sending the serialized bytes as they are. The payload is encoded once by the SDK's OTLP
encoders (see exporters.py) and may be sent to several endpoints in turn.

Classification follows the OTLP specification's retry rules: 429, 502, 503, 504 (gRPC
RESOURCE_EXHAUSTED, UNAVAILABLE, ABORTED, ...) are retryable with the server's Retry-After
(gRPC RetryInfo) honoured; a refused connection or a timeout makes the endpoint unreachable for a
while; any other 4xx is a permanent rejection of that payload.
"""

from __future__ import annotations

import enum
import gzip
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

SIGNAL_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics"}
GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})


class Outcome(enum.Enum):
    OK = "ok"
    RETRY = "retry"  # the collector asked to try again later (overload, store unavailable)
    UNREACHABLE = "unreachable"  # refused, reset, timed out: fail over to another endpoint
    REJECTED = "rejected"  # permanent: the payload will never be accepted


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    retry_after_s: float | None = None


class Transport(Protocol):
    url: str

    def send(self, signal: str, body: bytes, timeout_s: float) -> SendResult: ...

    def after_fork(self) -> None: ...

    def close(self) -> None: ...


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpTransport:
    """OTLP/HTTP with protobuf bodies. One `requests.Session` per thread (keep-alive connections)."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, compression: str = "none") -> None:
        self.url = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._gzip = compression == "gzip"
        self._local = threading.local()

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            self._local.session = session
        return session

    def send(self, signal: str, body: bytes, timeout_s: float) -> SendResult:
        import requests

        data = gzip.compress(body, compresslevel=5) if self._gzip else body
        try:
            response = self._session().post(self.url + SIGNAL_PATHS[signal], data=data, headers=self._headers,
                                            timeout=timeout_s)
        except requests.Timeout as exc:
            return SendResult(Outcome.UNREACHABLE, f"timed out: {exc}")
        except requests.RequestException as exc:
            return SendResult(Outcome.UNREACHABLE, f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(Outcome.OK)
        detail = f"HTTP {status}: {response.text[:200]}"
        if status in RETRYABLE_HTTP:
            return SendResult(Outcome.RETRY, detail, parse_retry_after(response.headers.get("Retry-After")))
        return SendResult(Outcome.REJECTED, detail)

    def after_fork(self) -> None:
        # Pooled connections belong to the parent; the child opens its own.
        self._local = threading.local()

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()


class GrpcTransport:
    """OTLP/gRPC: the serialized request is sent as raw bytes on the service's Export method."""

    def __init__(self, endpoint: str, *, headers: dict[str, str] | None = None, compression: str = "none") -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.url = endpoint
        self._target = f"{parts.hostname}:{parts.port or 4317}"
        self._secure = parts.scheme == "https"
        self._metadata = tuple((key.lower(), value) for key, value in (headers or {}).items())
        self._compression = compression
        self._lock = threading.Lock()
        self._channel: Any = None
        self._calls: dict[str, Any] = {}

    def _call(self, signal: str) -> Any:
        with self._lock:
            if self._channel is None:
                import grpc

                compression = grpc.Compression.Gzip if self._compression == "gzip" else grpc.Compression.NoCompression
                if self._secure:
                    self._channel = grpc.secure_channel(self._target, grpc.ssl_channel_credentials(),
                                                        compression=compression)
                else:
                    self._channel = grpc.insecure_channel(self._target, compression=compression)
            if signal not in self._calls:
                self._calls[signal] = self._channel.unary_unary(GRPC_METHODS[signal])
            return self._calls[signal]

    def send(self, signal: str, body: bytes, timeout_s: float) -> SendResult:
        import grpc

        try:
            self._call(signal)(body, timeout=timeout_s, metadata=self._metadata)
            return SendResult(Outcome.OK)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            detail = f"gRPC {code}: {exc.details() if hasattr(exc, 'details') else exc}"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return SendResult(Outcome.UNREACHABLE, detail, _grpc_retry_delay_s(exc))
            if code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED,
                        grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DATA_LOSS):
                return SendResult(Outcome.RETRY, detail, _grpc_retry_delay_s(exc))
            return SendResult(Outcome.REJECTED, detail)
        except Exception as exc:  # noqa: BLE001 - a broken channel must not reach the caller
            return SendResult(Outcome.UNREACHABLE, f"{type(exc).__name__}: {exc}")

    def after_fork(self) -> None:
        # gRPC channels do not survive fork; the child builds its own on first use.
        self._lock = threading.Lock()
        self._channel = None
        self._calls = {}

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None
                self._calls = {}


def _grpc_retry_delay_s(exc: Any) -> float | None:
    """The server's RetryInfo from the status details (google.rpc.Status), if it sent one."""
    try:
        from google.rpc import error_details_pb2, status_pb2

        for key, value in exc.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    except Exception:  # noqa: BLE001 - no usable retry info
        return None
    return None


def make_transport(endpoint: str, protocol: str, headers: dict[str, str], compression: str) -> Transport:
    if protocol == "grpc":
        return GrpcTransport(endpoint, headers=headers, compression=compression)
    return HttpTransport(endpoint, headers=headers, compression=compression)
