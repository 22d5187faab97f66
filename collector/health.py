"""Liveness, readiness and self-metrics endpoints, shared by the collector's ports and the API port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class Health:
    """`/healthz`: the process is alive. `/readyz`: the store answers and the schema is applied, and
    the process is not draining. `/metrics`: Prometheus text."""

    def __init__(self, store_ok: Callable[[], bool], schema_ok: Callable[[], bool],
                 metrics: Callable[[], bytes], cache_s: float = 1.0) -> None:
        self._store_ok = store_ok
        self._schema_ok = schema_ok
        self._metrics = metrics
        self._cache_s = cache_s
        self._checked_at = 0.0
        self._last_store_ok = False
        self.draining = False

    async def store_reachable(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at > self._cache_s:
            self._last_store_ok = await asyncio.get_running_loop().run_in_executor(None, self._store_ok)
            self._checked_at = now
        return self._last_store_ok

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        store = await self.store_reachable()
        schema = self._schema_ok()
        ready = store and schema
        return JSONResponse({"status": "ready" if ready else "not ready", "store": store, "schema": schema},
                            status_code=200 if ready else 503)

    def add_metrics(self, more: Callable[[], bytes]) -> None:
        """Appends another registry's Prometheus text (e.g. the alert evaluator's) to /metrics."""
        first = self._metrics
        self._metrics = lambda: first() + more()

    async def metrics(self, request: Request) -> Response:
        return Response(self._metrics(), media_type=CONTENT_TYPE_LATEST)

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]
