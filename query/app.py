"""The query service: `create_app` builds the FastAPI app that serves `/api/v1/...` from ClickHouse
and runs the edge rollup job in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tracehouse import storage
from tracehouse.query.models import ErrorDetail
from tracehouse.query.rollup import EdgeRollup
from tracehouse.query.routers import db, dependencies, latency, services, top, traces
from tracehouse.query.settings import QuerySettings, load_query_settings
from tracehouse.query.store import StorePool, StoreUnavailable
from tracehouse.query.timerange import BadParameter
from tracehouse.settings import StoreSettings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "a parameter cannot be used; `detail` names it"},
    503: {"model": ErrorDetail, "description": "the store is unavailable; retry later"},
}
ROUTERS = (services.router, traces.router, dependencies.router, latency.router, top.router, db.router)


def create_app(store: StoreSettings, toml: dict[str, Any], *, settings: QuerySettings | None = None,
               client_factory: Callable[[], Client] | None = None) -> FastAPI:
    """The query API on `store` (its DSN may name a database), configured by `[query]` in `toml`.

    `settings` overrides what `toml` and the environment say; `client_factory` gives the rollup
    job its client (default: a new client on the store's DSN).
    """
    query_settings = settings or load_query_settings(toml)
    dsn = store.dsn
    factory = client_factory or (lambda: storage.connect(dsn))
    rollup = EdgeRollup(factory, query_settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if query_settings.rollup_enabled:
            rollup.start()
        try:
            yield
        finally:
            rollup.shutdown()
            app.state.query_executor.shutdown(wait=True, cancel_futures=True)
            app.state.store.close()

    app = FastAPI(
        title="TraceHouse query API",
        version="1",
        description="Service graphs, latency, TOP-N, cycles, database calls and trace search over spans in ClickHouse.",
        lifespan=lifespan,
    )
    app.state.store = StorePool(dsn)
    app.state.query_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tracehouse-query")
    app.state.query_settings = query_settings
    app.state.edge_rollup = rollup
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    """Bad parameters answer 400 naming the parameter; store failures 503."""

    @app.exception_handler(BadParameter)
    async def bad_parameter(_: Request, exc: BadParameter) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": str(exc), "parameter": exc.parameter})

    @app.exception_handler(OperationalError)
    async def store_unreachable(_: Request, exc: OperationalError) -> JSONResponse:
        return _unavailable(exc)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return _unavailable(exc)

    @app.exception_handler(DatabaseError)
    async def store_failed(_: Request, exc: DatabaseError) -> JSONResponse:
        log.warning("query failed in the store: %s", exc)
        return _unavailable(exc)


def _unavailable(exc: Exception) -> JSONResponse:
    message = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
    return JSONResponse(status_code=503, content={"detail": f"store unavailable: {message}"},
                        headers={"Retry-After": "5"})
