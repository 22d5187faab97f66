"""The composition root: builds the collector and the API app from settings and runs them in one
asyncio loop (`tracehouse up`), or each alone (`tracehouse collector`, `tracehouse query`).

Shutdown order on SIGTERM/SIGINT: readiness turns 503, receivers stop taking new requests while the
ones in flight finish, every queued batch is flushed to ClickHouse, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
import orjson
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from tracehouse import storage
from tracehouse.collector.grpc import build_grpc_server
from tracehouse.collector.health import Health
from tracehouse.collector.http import OtlpHttpReceiver, ZipkinReceiver
from tracehouse.collector.ingest import Ingest
from tracehouse.collector.pipeline import Pipeline, Writer
from tracehouse.collector.selfmon import CollectorStats
from tracehouse.collector.settings import CollectorSettings
from tracehouse.settings import StoreSettings

log = logging.getLogger("tracehouse")


@dataclass(frozen=True)
class ApiSettings:
    host: str = "0.0.0.0"
    http_port: int = 8080

    def __post_init__(self) -> None:
        from tracehouse.config import check_port

        check_port("http_port", self.http_port)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us: several servers share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """Binds now, so that a port in use stops start-up with a clear error before anything runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class _HttpServer:
    name: str
    server: _Server
    sock: socket.socket
    task: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, name: str, app: Any, host: str, port: int, lifespan: Literal["on", "off"] = "off",
               max_concurrent_requests: int | None = None) -> _HttpServer:
        sock = _bind(host, port)
        # Past `limit_concurrency` uvicorn answers 503 at once, which bounds the bodies held in memory.
        config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False,
                                timeout_graceful_shutdown=30, h11_max_incomplete_event_size=64 * 1024,
                                limit_concurrency=max_concurrent_requests)
        return cls(name, _Server(config), sock)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                await self.task
                raise RuntimeError(f"{self.name} server did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


class CollectorService:
    """Receivers -> ingest -> pipeline -> writer, with its own health and stats."""

    def __init__(self, store: StoreSettings, settings: CollectorSettings) -> None:
        self.settings = settings
        self.stats = CollectorStats()
        self.writer = Writer(store.schema_options, store.dsn, settings.insert_workers, migrate=store.migrate)
        self.pipeline = Pipeline(self.writer, settings, self.stats)
        self.ingest = Ingest(self.pipeline, self.stats, settings)
        self.health = Health(self.writer.ping, lambda: self.writer.schema_ready, self.stats.render)
        self.http = _HttpServer.create("OTLP/HTTP", OtlpHttpReceiver(self.ingest, self.health).app(),
                                       settings.host, settings.otlp_http_port,
                                       max_concurrent_requests=settings.max_concurrent_requests)
        self.zipkin = _HttpServer.create("Zipkin", ZipkinReceiver(self.ingest, self.health).app(),
                                         settings.host, settings.zipkin_port,
                                         max_concurrent_requests=settings.max_concurrent_requests)
        self.grpc: grpc.aio.Server | None = None  # made in start(): it belongs to the running loop
        self.grpc_port = settings.otlp_grpc_port

    def try_migrate(self) -> None:
        """Applies the schema now if the store answers; otherwise the first insert will."""
        try:
            self.writer.ensure_schema()
        except Exception as exc:  # noqa: BLE001 - the store may come up later
            log.warning("store not reachable yet (%s); will apply the schema when it is", storage.one_line(exc))

    async def start(self) -> None:
        self.ingest.decoders.start()
        self.grpc, self.grpc_port = build_grpc_server(self.ingest, self.health, self.settings.host,
                                                      self.settings.otlp_grpc_port)
        await self.grpc.start()
        await self.http.start()
        await self.zipkin.start()

    async def drain(self) -> None:
        self.health.draining = True
        # Stop taking requests; those in flight still get their answer once their rows are stored.
        await asyncio.gather(self.grpc.stop(grace=30) if self.grpc else asyncio.sleep(0), self.http.stop(),
                             self.zipkin.stop())
        await self.pipeline.drain()
        self.writer.close()
        self.ingest.decoders.shutdown()

    def close_unstarted(self) -> None:
        """Releases the bound ports of a service that never started (start-up failed elsewhere)."""
        self.http.sock.close()
        self.zipkin.sock.close()
        self.writer.close()

    def addresses(self) -> dict[str, str]:
        host = _display_host(self.settings.host)
        return {
            "OTLP/gRPC": f"{host}:{self.grpc_port}",
            "OTLP/HTTP": f"http://{host}:{self.http.port}/v1/traces",
            "Zipkin": f"http://{host}:{self.zipkin.port}/api/v2/spans",
        }


class SqlQuery(BaseModel):
    query: str = Field(description="One read-only ClickHouse SQL statement (SELECT, SHOW, DESCRIBE, EXPLAIN)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Values for {name:Type} placeholders")


def _add_sql_route(app: FastAPI, dsn: str) -> None:
    """`POST /api/v1/sql`: read-only SQL against the store, like ClickHouse's own HTTP interface
    with `readonly=1`; with the embedded engine it is the only way in while TraceHouse runs."""

    @app.post("/api/v1/sql", tags=["sql"], summary="Run a read-only SQL query against the store")
    def run_sql(body: SqlQuery, request: Request) -> Response:
        client = request.app.state.store.client()
        try:
            result = client.query(body.query, parameters=body.parameters, settings={"readonly": 1})
        except Exception as exc:  # noqa: BLE001 - the store's message is the useful answer
            raise HTTPException(status_code=400, detail=storage.one_line(exc)) from None
        rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        payload = {"columns": list(result.column_names), "rows": rows}
        return Response(orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS),
                        media_type="application/json")


def _optional(module: str, attribute: str) -> Any | None:
    """A component another part of the code base provides, when it is installed."""
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        log.debug("optional component %s.%s not available: %s", module, attribute, exc)
        return None


@dataclass
class ApiService:
    app: FastAPI
    server: _HttpServer
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    starters: list[Callable[[], None]] = field(default_factory=list)

    async def start(self) -> None:
        for start in self.starters:
            await asyncio.get_running_loop().run_in_executor(None, start)
        await self.server.start()

    async def drain(self) -> None:
        await self.server.stop()
        for stop in self.stoppers:
            await asyncio.get_running_loop().run_in_executor(None, stop)


def build_api(store: StoreSettings, api: ApiSettings, toml: dict[str, Any], health: Health) -> ApiService:
    create_app = _optional("tracehouse.query.app", "create_app")
    if create_app is not None:
        app: FastAPI = create_app(store, toml)
    else:
        from tracehouse.query.store import StorePool

        app = FastAPI(title="TraceHouse")
        app.state.store = StorePool(store.dsn)
    for route in health.routes():
        app.router.routes.insert(0, route)
    _add_sql_route(app, store.dsn)
    service = ApiService(app, _HttpServer.create("API", app, api.host, api.http_port, lifespan="on"))
    for module in ("tracehouse.query.metrics.router", "tracehouse.query.alerts.router"):
        router = _optional(module, "router")
        if router is not None:
            app.include_router(router)
    ui_router = _optional("tracehouse.ui.router", "router")
    if ui_router is not None:
        app.include_router(ui_router, prefix="/ui")
    alert_service_cls = _optional("tracehouse.query.alerts.service", "AlertService")
    alert_settings_cls = _optional("tracehouse.query.alerts.settings", "AlertSettings")
    if alert_service_cls is not None and alert_settings_cls is not None:
        from tracehouse.config import load_settings

        alerts = alert_service_cls(store.dsn, load_settings(alert_settings_cls, toml=toml, section="alerts"))
        app.state.alerts = alerts
        health.add_metrics(alerts.metrics.render)
        service.starters.append(alerts.start)
        service.stoppers.append(alerts.shutdown)
    return service


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


async def run(store: StoreSettings, collector: CollectorSettings | None, api: ApiSettings | None,
              toml: dict[str, Any], on_ready: Callable[[dict[str, str]], None] | None = None) -> int:
    """Runs the chosen components until SIGTERM/SIGINT; returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    collector_service = CollectorService(store, collector) if collector else None
    if collector_service:
        await loop.run_in_executor(None, collector_service.try_migrate)
        health = collector_service.health
    else:
        migrated = {"done": False}

        def migrate_now() -> bool:
            if not migrated["done"] and store.migrate:
                storage.migrate(storage.connect(store.dsn), store.schema_options)
            migrated["done"] = True
            return True

        try:
            await loop.run_in_executor(None, migrate_now)
        except Exception as exc:  # noqa: BLE001
            log.warning("store not reachable yet: %s", storage.one_line(exc))

        def store_ok() -> bool:
            try:
                return storage.ping(storage.connect(store.dsn, connect_timeout_s=2)) and migrate_now()
            except Exception:  # noqa: BLE001
                return False

        from prometheus_client import REGISTRY, generate_latest

        health = Health(store_ok, lambda: migrated["done"], lambda: generate_latest(REGISTRY))
    try:
        api_service = build_api(store, api, toml, health) if api else None
    except BaseException:
        if collector_service:
            collector_service.close_unstarted()
        raise

    try:
        if collector_service:
            await collector_service.start()
        if api_service:
            await api_service.start()
    except BaseException:
        if collector_service:  # stop what did start, so nothing is left bound to a closing loop
            await collector_service.drain()
        raise
    addresses = collector_service.addresses() if collector_service else {}
    if api_service and api:
        base = f"http://{_display_host(api.host)}:{api_service.server.port}"
        addresses.update({"API": f"{base}/api/v1", "UI": f"{base}/ui/", "OpenAPI": f"{base}/docs"})
    addresses["Store"] = storage.redact_dsn(store.dsn)
    if on_ready:
        on_ready(addresses)

    await stop.wait()
    log.info("shutting down: draining receivers and flushing queued batches")
    health.draining = True
    if collector_service:
        await collector_service.drain()
    if api_service:
        await api_service.drain()
    log.info("stopped cleanly")
    return 0
