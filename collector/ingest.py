"""The receiver-independent part of an export: decode, store, count, and classify failures.

Receivers (OTLP/HTTP, OTLP/gRPC, Zipkin) turn bytes into a request message or raise DecodeError;
everything after that is here, so all of them answer the same way to the same problem.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tracehouse.collector.batch import Decoded
from tracehouse.collector.decoders import Decoders, DecoderUnavailable
from tracehouse.collector.otlp_json import DecodeError
from tracehouse.collector.pipeline import Overloaded, Pipeline, ShuttingDown, StoreUnavailable
from tracehouse.collector.selfmon import CollectorStats
from tracehouse.collector.settings import CollectorSettings
from tracehouse.collector.traces import DecodeLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """How an export failed, in both protocols' terms."""

    http_status: int
    grpc_code: int  # grpc.StatusCode value[0]
    message: str
    retryable: bool


INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL = 3, 8, 14, 13


class Ingest:
    def __init__(self, pipeline: Pipeline, stats: CollectorStats, settings: CollectorSettings) -> None:
        self.pipeline = pipeline
        self.stats = stats
        self.settings = settings
        self.limits = DecodeLimits(max_attributes=settings.max_attributes_per_span)
        self.decoders = Decoders(settings.decode_workers, self.limits)

    async def store_body(self, receiver: str, signal: str, kind: str, body: bytes,
                         media_type: str = "") -> Decoded | Failure:
        """Decodes `body` (in a worker process when there are any) and stores it."""
        return await self._store(receiver, signal, lambda: self.decoders.decode(kind, body, media_type))

    async def _store(self, receiver: str, signal: str,
                     decode: Callable[[], Awaitable[Decoded]]) -> Decoded | Failure:
        try:
            decoded = await decode()
        except DecoderUnavailable as exc:
            return self._refused(receiver, signal, "decoder_restarted", Failure(503, UNAVAILABLE, str(exc), True))
        except DecodeError as exc:
            return self._refused(receiver, signal, "malformed", Failure(400, INVALID_ARGUMENT, str(exc), False))
        except RecursionError:
            return self._refused(receiver, signal, "malformed",
                                 Failure(400, INVALID_ARGUMENT, "request nests values too deeply", False))
        if decoded.rejected:
            self.stats.rejected.labels(receiver, signal, "invalid").inc(decoded.rejected)
        self.stats.received.labels(receiver, signal).inc(decoded.accepted)
        try:
            await self.pipeline.consume(decoded)
        except Overloaded as exc:
            return self._refused(receiver, signal, "overloaded", Failure(429, RESOURCE_EXHAUSTED, str(exc), True),
                                 decoded.accepted)
        except ShuttingDown as exc:
            return self._refused(receiver, signal, "shutting_down", Failure(503, UNAVAILABLE, str(exc), True),
                                 decoded.accepted)
        except StoreUnavailable as exc:
            return self._refused(receiver, signal, "store_unavailable", Failure(503, UNAVAILABLE, str(exc), True),
                                 decoded.accepted)
        self.stats.stored.labels(receiver, signal).inc(decoded.accepted)
        self.stats.requests.labels(receiver, "200").inc()
        return decoded

    def _refused(self, receiver: str, signal: str, reason: str, failure: Failure, items: int = 0) -> Failure:
        if items:
            self.stats.rejected.labels(receiver, signal, reason).inc(items)
        self.stats.requests.labels(receiver, str(failure.http_status)).inc()
        if failure.http_status >= 500 or failure.http_status == 429:
            log.info("%s %s export refused (%s): %s", receiver, signal, reason, failure.message)
        return failure
