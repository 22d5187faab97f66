"""`tracehouse-agent middleware --config middleware.toml`: read the configured middleware and send
its metrics to a collector until SIGTERM or SIGINT. `--once` scrapes each instance once and
prints what it read (to check a config file); it exits 1 when an instance could not be read."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from types import FrameType

from tracehouse.agents.middleware.base import ScrapeState
from tracehouse.agents.middleware.config import MiddlewareSettings, load
from tracehouse.agents.middleware.runner import MiddlewareAgent, build_receiver
from tracehouse.config import ConfigError

log = logging.getLogger("tracehouse.agents.middleware")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracehouse-agent middleware",
        description="Read Redis, MySQL/MariaDB, PostgreSQL, Nginx and RabbitMQ and export their metrics "
                    "over OTLP. Credentials come from the config file or the environment variables it names.")
    parser.add_argument("--config", required=True, help="path of middleware.toml")
    parser.add_argument("--once", action="store_true", help="scrape each instance once, print JSON lines, exit")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def scrape_once(settings: MiddlewareSettings) -> int:
    failed = 0
    for target in settings.targets:
        state = ScrapeState(build_receiver(target))
        snapshot = state.refresh()
        state.close()
        failed += 0 if snapshot.up else 1
        print(json.dumps({
            "name": target.name, "system": target.system, "address": f"{target.host}:{target.port}",
            "up": int(snapshot.up), "error": snapshot.error,
            "metrics": [{"name": s.name, "value": s.value, "attributes": dict(s.attributes)}
                        for s in snapshot.samples],
        }))
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load(args.config)
    except ConfigError as exc:
        print(f"tracehouse-agent middleware: {exc}", file=sys.stderr)
        return 2
    if args.once:
        return scrape_once(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, flushing and stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    agent = MiddlewareAgent(settings)
    agent.start()
    log.info("exporting to %s every %gs", settings.exporter.metrics_url, settings.exporter.interval_s)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        agent.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
