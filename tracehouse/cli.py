"""`tracehouse` command line: up, collector, query, schema, sql, demo, bench.

Every option can also come from a TRACEHOUSE_<NAME> environment variable or a TOML file given with
--config; the command line wins. Invalid configuration stops start-up with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from tracehouse.config import ConfigError, load_settings, read_toml

EXIT_CONFIG = 2


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--data", metavar="PATH", help="embedded store directory (default ./tracehouse-data)")
    parser.add_argument("--store", metavar="DSN", help="chdb:///path or http(s)://user:pass@host:8123/db")
    parser.add_argument("--retention-days", type=int, help="days to keep raw spans and metrics (default 7)")


def add_collector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--otlp-grpc-port", type=int, help="OTLP/gRPC port (default 4317)")
    parser.add_argument("--otlp-http-port", type=int, help="OTLP/HTTP port (default 4318)")
    parser.add_argument("--zipkin-port", type=int, help="Zipkin v2 port (default 9411)")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tracehouse up` (the demo takes the same)."""
    add_store_arguments(parser)
    add_collector_arguments(parser)
    parser.add_argument("--http-port", type=int, help="API and UI port (default 8080)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {key: value for key, value in vars(args).items() if value is not None}


def _load(args: argparse.Namespace, collector: bool, api: bool) -> tuple[Any, Any, Any, dict[str, Any]]:
    from tracehouse.collector.settings import CollectorSettings
    from tracehouse.server import ApiSettings
    from tracehouse.settings import StoreSettings

    toml = read_toml(getattr(args, "config", None))
    overrides = _overrides(args)
    store = load_settings(StoreSettings, toml=toml, section="store", overrides=overrides)
    collector_settings = (load_settings(CollectorSettings, toml=toml, section="collector", overrides=overrides)
                          if collector else None)
    api_settings = load_settings(ApiSettings, toml=toml, section="api", overrides=overrides) if api else None
    return store, collector_settings, api_settings, toml


def _print_addresses(title: str) -> Any:
    def show(addresses: dict[str, str]) -> None:
        width = max(len(k) for k in addresses)
        lines = [f"TraceHouse {title} is running:"] + [f"  {k.ljust(width)}  {v}" for k, v in addresses.items()]
        lines.append("Press Ctrl-C to stop.")
        print("\n".join(lines), flush=True)

    return show


def _serve(args: argparse.Namespace, collector: bool, api: bool, title: str) -> int:
    from tracehouse.server import run

    store, collector_settings, api_settings, toml = _load(args, collector, api)
    try:
        return asyncio.run(run(store, collector_settings, api_settings, toml, on_ready=_print_addresses(title)))
    except OSError as exc:
        print(f"tracehouse: {exc}", file=sys.stderr)
        return 1


def cmd_up(args: argparse.Namespace) -> int:
    return _serve(args, collector=True, api=True, title="(collector, API and UI)")


def cmd_collector(args: argparse.Namespace) -> int:
    if not (args.store or args.config):
        import os

        if not os.environ.get("TRACEHOUSE_STORE"):
            raise ConfigError("tracehouse collector needs --store DSN (a ClickHouse server); use `tracehouse up` "
                              "for the embedded store")
    return _serve(args, collector=True, api=False, title="collector")


def cmd_query(args: argparse.Namespace) -> int:
    return _serve(args, collector=False, api=True, title="query service")


def cmd_schema(args: argparse.Namespace) -> int:
    from tracehouse.storage import SchemaOptions, render_all

    retention = args.retention_days if args.retention_days is not None else 7
    sys.stdout.write(render_all(SchemaOptions(retention_days=retention, cluster=args.cluster,
                                              database=args.database)))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """Runs SQL on a store directly (the embedded store only while TraceHouse is not running)."""
    from tracehouse import storage
    from tracehouse.settings import StoreSettings

    store = load_settings(StoreSettings, toml=read_toml(args.config), section="store", overrides=_overrides(args))
    client = storage.connect(store.dsn)
    result = client.query(args.query)
    print("\t".join(result.column_names))
    for row in result.result_rows:
        print("\t".join(str(value) for value in row))
    return 0


def _delegate(module: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(importlib.import_module(module).main(args.rest))

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracehouse", description="Distributed tracing and monitoring on ClickHouse")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="collector, API and UI in one process on the embedded store")
    add_server_arguments(up)
    up.set_defaults(func=cmd_up)

    collector = commands.add_parser("collector", help="the collector alone, writing to a ClickHouse server")
    add_store_arguments(collector)
    add_collector_arguments(collector)
    collector.set_defaults(func=cmd_collector)

    query = commands.add_parser("query", help="the API and UI alone, reading a ClickHouse server")
    add_store_arguments(query)
    query.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    query.add_argument("--http-port", type=int, help="API and UI port (default 8080)")
    query.set_defaults(func=cmd_query)

    schema = commands.add_parser("schema", help="print the ClickHouse DDL")
    schema.add_argument("--cluster", help="ON CLUSTER / Replicated / Distributed variant for this cluster")
    schema.add_argument("--database", default="default", help="database the Distributed tables point at")
    schema.add_argument("--retention-days", type=int, help="TTL in days (default 7, 0 = keep forever)")
    schema.set_defaults(func=cmd_schema)

    sql = commands.add_parser("sql", help="run SQL on a store that no TraceHouse process is using")
    add_store_arguments(sql)
    sql.add_argument("query")
    sql.set_defaults(func=cmd_sql)

    for name, text in (("demo", "run a demo shop of instrumented services (tracehouse demo --help)"),
                       ("bench", "run benchmarks: ingest, query, agent, all (tracehouse bench --help)")):
        sub = commands.add_parser(name, help=text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
        sub.set_defaults(func=_delegate(DELEGATED[name]))
    return parser


DELEGATED = {"demo": "tracehouse.demo.cli", "bench": "tracehouse.bench.cli"}


def _delegated_command(argv: list[str]) -> tuple[str, list[str], str] | None:
    """(module, its arguments, log level) when the command is `demo` or `bench`."""
    level = "INFO"
    if len(argv) >= 2 and argv[0] == "--log-level":
        level, argv = argv[1].upper(), argv[2:]
    elif argv and argv[0].startswith("--log-level="):
        level, argv = argv[0].split("=", 1)[1].upper(), argv[1:]
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]], argv[1:], level
    return None


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "uvicorn.error", "clickhouse_connect"):  # a line per request or per query
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    delegated = _delegated_command(argv)
    if delegated is not None:
        # `demo` and `bench` parse their own options (--help included): hand them everything after the word.
        import importlib

        module, rest, level = delegated
        _configure_logging(level)
        return int(importlib.import_module(module).main(rest))
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level.upper())
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"tracehouse: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
