"""Where request bodies are decoded: inline on the event loop, or in a pool of worker processes.

Decoding OTLP is CPU-bound Python; a pool lets a collector use every core while the event loop
only moves bytes and batches. Only bytes go to a worker and only column batches come back, so a
crash of a worker (a bug, never a client's data: decoders raise DecodeError on bad input) costs
the requests in flight a retryable 503 and the pool is rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from tracehouse.collector.batch import Decoded
from tracehouse.collector.decode import decode_body
from tracehouse.collector.traces import DecodeLimits
from tracehouse.collector.zipkin import decode_zipkin

log = logging.getLogger(__name__)


class DecoderUnavailable(Exception):
    """A decode worker died while holding this request; the client should retry (503)."""


def decode_request(kind: str, body: bytes, media_type: str, limits: DecodeLimits) -> Decoded:
    """`kind` is "traces", "metrics" or "zipkin"; the result is encoded, ready to insert.
    Module-level so that a worker process can run it."""
    if kind == "zipkin":
        decoded = decode_zipkin(body, limits.max_attributes)
    else:
        decoded = decode_body(body, media_type, kind, limits)
    return decoded.encode()


def _warm_up() -> None:
    """Imports everything in the worker before the first request arrives."""


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


class Decoders:
    def __init__(self, workers: int, limits: DecodeLimits, min_pool_bytes: int = 16 * 1024,
                 timeout_s: float = 20.0) -> None:
        self.workers = default_workers() if workers < 0 else workers
        self.limits = limits
        self.min_pool_bytes = min_pool_bytes  # small bodies decode faster than a round trip to a worker
        # A 16 MiB body decodes in a second or two; far longer means the pool is wedged (a worker
        # killed while it held the pool's task queue leaves ProcessPoolExecutor waiting forever).
        self.timeout_s = timeout_s
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self.workers > 0 and self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(self.workers):
                self._pool.submit(_warm_up)

    async def decode(self, kind: str, body: bytes, media_type: str) -> Decoded:
        pool = self._pool
        if pool is None or len(body) < self.min_pool_bytes:
            return decode_request(kind, body, media_type, self.limits)
        try:
            work = asyncio.get_running_loop().run_in_executor(pool, decode_request, kind, body, media_type,
                                                              self.limits)
            return await asyncio.wait_for(work, self.timeout_s)
        except (BrokenProcessPool, TimeoutError):
            if self._pool is pool:
                log.error("a decode worker died; restarting the pool")
                self._restart(pool)
            raise DecoderUnavailable("the decoder restarted; retry the export") from None

    def _restart(self, pool: ProcessPoolExecutor) -> None:
        self._pool = None
        # Kill what is left of the old pool: shutdown() alone would wait on a wedged queue.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        self.start()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
