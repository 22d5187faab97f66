"""`tracehouse demo`: TraceHouse and a small shop of instrumented services, with load, in one command.

    tracehouse demo [--cycle] [--rate 5] [--duration-s 0] [the options of `tracehouse up`]

It starts `tracehouse up` as a child process (same options: --data, --store, --config, ports), then
each shop service as its own process under `tracehouse-agent run` (gateway -> orders -> inventory,
payments -> notifications; with --cycle notifications -> orders as well), on PostgreSQL and Redis
when they are reachable and on sqlite otherwise, and drives them with a load generator. Ctrl-C or
SIGTERM stops every process it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from tracehouse.config import ConfigError, load_settings, read_toml
from tracehouse.demo.processes import Child, Supervisor
from tracehouse.launcher import free_port

# (service, module, the services it calls); started leaves first
SERVICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("notifications", "notifications", ("orders",)),
    ("payments", "payments", ("notifications",)),
    ("inventory", "inventory", ()),
    ("orders", "orders", ("inventory", "payments")),
    ("gateway", "gateway", ("orders",)),
)
SERVICE_NAMES = tuple(name for name, _, _ in SERVICES)
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
RUN_MARKER = "TRACEHOUSE_DEMO_RUN"  # every child carries it, so a check can find strays
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, the terminal closing


# modules the shop cannot run without (PostgreSQL's psycopg and redis are optional: sqlite and no cache)
REQUIRED_MODULES = ("flask", "requests", "fastapi", "uvicorn", "httpx", "opentelemetry.sdk",
                    "opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.fastapi")


def missing_modules() -> list[str]:
    import importlib.util

    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the demo was starting."""


@dataclass(frozen=True)
class Backends:
    database_url: str  # sqlite:///... (per service) or postgresql://...
    pg_schema: str
    redis_url: str

    def describe(self, log_dir: Path) -> str:
        database = (f"PostgreSQL {self.database_url.split('@')[-1]} (schema {self.pg_schema})"
                    if self.pg_schema else f"sqlite files in {log_dir}")
        return database + (", Redis " + self.redis_url.split("://")[-1] if self.redis_url else ", no Redis")


def build_parser() -> argparse.ArgumentParser:
    from tracehouse.cli import add_server_arguments

    parser = argparse.ArgumentParser(prog="tracehouse demo", description=__doc__.split("\n\n")[0])
    add_server_arguments(parser)
    parser.add_argument("--cycle", action="store_true", help="notifications also call orders: a dependency cycle")
    parser.add_argument("--rate", type=float, default=5.0, help="shop requests per second (default 5)")
    parser.add_argument("--duration-s", type=float, default=0.0, help="stop after this long (default: until Ctrl-C)")
    parser.add_argument("--failure-rate", type=float, default=0.2, help="share of payments that fail (default 0.2)")
    parser.add_argument("--slow-query-ms", type=int, default=300, help="duration of the slow query (default 300)")
    parser.add_argument("--db", choices=("auto", "sqlite", "postgresql"), default="auto",
                        help="database of the shop: PostgreSQL when reachable (auto), or one of them")
    parser.add_argument("--postgres-dsn", default=DEFAULT_POSTGRES, help=f"PostgreSQL to use (default {DEFAULT_POSTGRES})")
    parser.add_argument("--redis", choices=("auto", "off"), default="auto", help="use Redis when reachable (auto)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help=f"Redis to use (default {DEFAULT_REDIS})")
    parser.add_argument("--logs", metavar="DIR", help="where the processes' logs go (default: a new temporary directory)")
    parser.add_argument("--no-progress", action="store_true", help="print a status line every 10 s instead of a live table")
    return parser


def _server_argv(args: argparse.Namespace) -> list[str]:
    """The `tracehouse up` options given to the demo, passed on unchanged."""
    argv: list[str] = []
    for option in ("config", "data", "store", "retention_days", "host", "otlp_grpc_port", "otlp_http_port",
                   "zipkin_port", "http_port"):
        value = getattr(args, option)
        if value is not None:
            argv += ["--" + option.replace("_", "-"), str(value)]
    return argv


@dataclass(frozen=True)
class Addresses:
    otlp_http_url: str
    api_url: str


def _addresses(args: argparse.Namespace) -> Addresses:
    """Where the `tracehouse up` child will listen, resolved as it resolves them (TOML, env, options)."""
    from tracehouse.collector.settings import CollectorSettings
    from tracehouse.server import ApiSettings

    toml = read_toml(args.config)
    overrides = {k: getattr(args, k) for k in ("host", "otlp_grpc_port", "otlp_http_port", "zipkin_port", "http_port")
                 if getattr(args, k) is not None}
    collector = load_settings(CollectorSettings, toml=toml, section="collector", overrides=overrides)
    api = load_settings(ApiSettings, toml=toml, section="api", overrides=overrides)

    def reachable(host: str) -> str:
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)

    return Addresses(f"http://{reachable(collector.host)}:{collector.otlp_http_port}",
                     f"http://{reachable(api.host)}:{api.http_port}")


def _detect_backends(args: argparse.Namespace, log_dir: Path, run_id: str) -> Backends:
    database_url, schema = f"sqlite:///{log_dir}", ""
    if args.db in ("auto", "postgresql"):
        try:
            import psycopg

            schema = f"tracehouse_demo_{run_id}"
            with psycopg.connect(args.postgres_dsn, connect_timeout=3, autocommit=True) as connection:
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            database_url = args.postgres_dsn
        except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL for this demo
            if args.db == "postgresql":
                raise ConfigError(f"PostgreSQL at {args.postgres_dsn} is not usable: {exc}") from None
            schema = ""
    redis_url = ""
    if args.redis == "auto":
        try:
            import redis

            client = redis.Redis.from_url(args.redis_url, socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            client.close()
            redis_url = args.redis_url
        except Exception:  # noqa: BLE001 - no Redis: the services run without a cache
            redis_url = ""
    return Backends(database_url, schema, redis_url)


def redis_prefix(run_id: str) -> str:
    return f"tracehouse-demo:{run_id}"


def _drop_redis_keys(backends: Backends, run_id: str) -> None:
    if not backends.redis_url:
        return
    try:
        import redis

        client = redis.Redis.from_url(backends.redis_url, socket_timeout=5, socket_connect_timeout=3)
        keys = list(client.scan_iter(match=f"{redis_prefix(run_id)}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
    except Exception as exc:  # noqa: BLE001 - leave them and say so
        _say(f"demo: could not delete the demo's Redis keys ({redis_prefix(run_id)}:*): {exc}", error=True)


def _drop_schema(args: argparse.Namespace, backends: Backends) -> None:
    if not backends.pg_schema:
        return
    try:
        import psycopg

        with psycopg.connect(args.postgres_dsn, connect_timeout=3, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{backends.pg_schema}" CASCADE')
    except Exception as exc:  # noqa: BLE001 - leave it and say so
        _say(f"demo: could not drop PostgreSQL schema {backends.pg_schema}: {exc}", error=True)


def _wait_ready(child: Child, url: str, timeout_s: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stop.is_set():
            raise Interrupted
        if not child.running():
            raise RuntimeError(f"{child.name} exited with {child.process.returncode}; its log ({child.log_path}) ends:\n"
                               f"{child.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        stop.wait(0.2)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout_s:.0f} s; its log ({child.log_path}) ends:\n"
                       f"{child.log_tail()}")


def _service_env(args: argparse.Namespace, backends: Backends, ports: dict[str, int], name: str,
                 log_dir: Path, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    database_url = backends.database_url
    if not backends.pg_schema:
        database_url = f"sqlite:///{log_dir / (name + '.db')}"
    env.update({
        "PORT": str(ports[name]),
        "DEMO_DATABASE_URL": database_url,
        "DEMO_PG_SCHEMA": backends.pg_schema or "public",
        "DEMO_REDIS_URL": backends.redis_url,
        "DEMO_REDIS_PREFIX": redis_prefix(run_id),
        "DEMO_FAILURE_RATE": str(args.failure_rate),
        "DEMO_SLOW_QUERY_MS": str(args.slow_query_ms),
        "DEMO_CYCLE": "1" if args.cycle else "",
        "TRACEHOUSE_ENVIRONMENT": "demo",
        "TRACEHOUSE_SERVICE_VERSION": "1.0.0",
        "TRACEHOUSE_METRICS_INTERVAL_S": "10",
    })
    for other in SERVICE_NAMES:
        env[f"DEMO_{other.upper()}_URL"] = f"http://127.0.0.1:{ports[other]}"
    return env


def banner(addresses: Addresses, gateway_url: str, backends: Backends, log_dir: Path, cycle: bool,
           failure_rate: float) -> str:
    ui = f"{addresses.api_url}/ui"
    lines = [
        "",
        "TraceHouse demo is running",
        f"  UI          {ui}/",
        f"  API         {addresses.api_url}/api/v1/services   (OpenAPI: {addresses.api_url}/docs)",
        f"  OTLP/HTTP   {addresses.otlp_http_url}",
        f"  shop        {gateway_url}/api/orders   (gateway -> orders -> inventory, payments -> notifications"
        + (" -> orders" if cycle else "") + ")",
        f"  databases   {backends.describe(log_dir)}",
        f"  logs        {log_dir}",
        "",
        "Where to look:",
        f"  service map        {ui}/map" + ("   the cycle orders -> payments -> notifications -> orders" if cycle else ""),
        f"  N+1 queries        {ui}/db   orders' GET /orders runs one SELECT per order",
        f"  slow query         {ui}/top   the search statement of orders (GET /orders/search) tops p99",
        f"  failing calls      {ui}/traces?status=error   payments' POST /charge fails about "
        f"{failure_rate:.0%} of calls",
        f"  a service          {ui}/services/orders",
    ]
    if cycle:
        lines.append(f"  cycles (JSON)      {addresses.api_url}/api/v1/dependencies/cycles")
    lines += ["", "Press Ctrl-C to stop every process of the demo.", ""]
    return "\n".join(lines)


class StoredCounter:
    """Polls the running TraceHouse for the spans it stored and the services they came from."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.spans = 0
        self.services = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="demo-stored", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(2.0):
                try:
                    response = http.post(f"{self.api_url}/api/v1/sql", json={
                        "query": "SELECT count() AS spans, uniqExact(ServiceName) AS services FROM otel_traces"})
                    row = response.json()["rows"][0]
                    self.spans, self.services = int(row["spans"]), int(row["services"])
                except (httpx.HTTPError, KeyError, IndexError, ValueError):
                    continue


def _table(load: Any, stored: StoredCounter, elapsed_s: float) -> Any:
    from rich.table import Table

    table = Table(title=f"demo load: {elapsed_s:,.0f} s, {load.total_requests:,} requests, "
                        f"{stored.spans:,} spans stored from {stored.services} services",
                  title_justify="left", caption=f"UI: {stored.api_url}/ui/   Ctrl-C stops the demo",
                  caption_justify="left")
    for column in ("route", "requests", "errors", "error %", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for route, stats in load.stats.items():
        share = 100.0 * stats.errors / stats.requests if stats.requests else 0.0
        table.add_row(route, f"{stats.requests:,}", f"{stats.errors:,}", f"{share:.1f}",
                      f"{stats.quantile_ms(0.5):.0f}", f"{stats.quantile_ms(0.95):.0f}")
    return table


def _exited(children: Sequence[Child]) -> Child | None:
    return next((child for child in children if not child.running()), None)


def _run_load(args: argparse.Namespace, gateway_url: str, api_url: str, stop: threading.Event,
              children: Sequence[Child]) -> None:
    """Drives the shop until a stop signal or --duration-s; raises RuntimeError if a process of the
    demo ends on its own meanwhile."""
    from rich.console import Console
    from rich.live import Live

    from tracehouse.demo.load import LoadGenerator

    load = LoadGenerator(gateway_url, args.rate)
    stored = StoredCounter(api_url)
    load.start()
    stored.start()
    console = Console()
    deadline = time.monotonic() + args.duration_s if args.duration_s > 0 else float("inf")

    def running() -> bool:
        return not stop.wait(0.5) and time.monotonic() < deadline and _exited(children) is None

    try:
        if console.is_terminal and not args.no_progress:
            with Live(_table(load, stored, 0), console=console, refresh_per_second=2) as live:
                while running():
                    live.update(_table(load, stored, time.monotonic() - load.started_at))
        else:
            next_line = time.monotonic() + 10
            while running():
                if time.monotonic() >= next_line:
                    next_line += 10
                    print(f"demo: {load.total_requests:,} requests ({load.total_errors:,} failed), "
                          f"{stored.spans:,} spans stored from {stored.services} services", flush=True)
    finally:
        load.stop()
        stored.stop()
    _say(f"demo: sent {load.total_requests:,} requests ({load.total_errors:,} failed); {stored.spans:,} spans stored")
    dead = _exited(children)
    if dead is not None and not stop.is_set():
        raise RuntimeError(f"{dead.name} exited with {dead.process.returncode}; its log ({dead.log_path}) ends:\n"
                           f"{dead.log_tail()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.rate <= 0 or not 0 <= args.failure_rate <= 1 or args.slow_query_ms < 0 or args.duration_s < 0:
        print("tracehouse demo: --rate must be > 0, --failure-rate within 0..1, --slow-query-ms and --duration-s "
              ">= 0", file=sys.stderr)
        return 2
    missing = missing_modules()
    if missing:
        print(f"tracehouse demo: missing Python packages for the shop: {', '.join(missing)} "
              "(pip install 'tracehouse[demo]')", file=sys.stderr)
        return 2
    try:
        addresses = _addresses(args)
    except ConfigError as exc:
        print(f"tracehouse demo: configuration error: {exc}", file=sys.stderr)
        return 2

    run_id = secrets.token_hex(4)
    log_dir = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="tracehouse-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_dir = log_dir.resolve()
    supervisor = Supervisor(log_dir, {RUN_MARKER: run_id})
    stop = threading.Event()
    starting = [True]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        if starting[0]:
            starting[0] = False  # raise once; cleanup runs in `finally`
            raise Interrupted

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    backends = Backends(f"sqlite:///{log_dir}", "", "")
    services: list[Child] = []
    tracehouse: Child | None = None
    code = 0
    try:
        backends = _detect_backends(args, log_dir, run_id)
        print(f"demo: starting TraceHouse ({' '.join(_server_argv(args)) or 'default options'}); logs in {log_dir}",
              flush=True)
        tracehouse = supervisor.start("tracehouse", [sys.executable, "-m", "tracehouse", "up", *_server_argv(args)],
                                      dict(os.environ))
        _wait_ready(tracehouse, f"{addresses.api_url}/readyz", 90, stop)
        ports = {name: free_port() for name in SERVICE_NAMES}
        agent = str(Path(sys.executable).with_name("tracehouse-agent"))
        for name, module, _ in SERVICES:
            env = _service_env(args, backends, ports, name, log_dir, run_id)
            services.append(supervisor.start(name, [
                agent, "run", "--service-name", name, "--endpoint", addresses.otlp_http_url, "--",
                sys.executable, "-m", f"tracehouse.demo.services.{module}"], env))
        for child in services:
            _wait_ready(child, f"http://127.0.0.1:{ports[child.name]}/healthz", 60, stop)
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        print(banner(addresses, gateway_url, backends, log_dir, args.cycle, args.failure_rate), flush=True)
        starting[0] = False
        if not stop.is_set():
            _run_load(args, gateway_url, addresses.api_url, stop, supervisor.children)
    except Interrupted:
        code = 130
    except (RuntimeError, ConfigError) as exc:
        print(f"tracehouse demo: {exc}", file=sys.stderr)
        code = 1
    finally:
        starting[0] = False
        code = _shutdown(supervisor, services, tracehouse, args, backends, run_id) or code
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _say(text: str, *, error: bool = False) -> None:
    """Prints, unless the terminal is gone (after SIGHUP): cleanup must go on regardless."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr if error else sys.stdout, flush=True)


def _shutdown(supervisor: Supervisor, services: list[Child], tracehouse: Child | None, args: argparse.Namespace,
              backends: Backends, run_id: str) -> int:
    """Services first (their agents flush to a TraceHouse still running), then TraceHouse; then checks
    that no process of any of their groups is left. Signals are ignored meanwhile: cleanup finishes."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _say("demo: stopping the shop services and TraceHouse ...")
    if services:
        supervisor.stop(services, timeout_s=15)
    if tracehouse is not None:
        supervisor.stop([tracehouse], timeout_s=60)
    _drop_schema(args, backends)
    _drop_redis_keys(backends, run_id)
    left = supervisor.leftovers()
    if left:
        _say(f"demo: {len(left)} processes did not stop: {[p.pid for p in left]}", error=True)
        return 1
    _say(f"demo: stopped {len(supervisor.children)} processes; none left running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
