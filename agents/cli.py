"""`tracehouse-agent`: run a command with the agent, or list/install the instrumentations that fit.

    tracehouse-agent run [--service-name orders] [--endpoint URL ...] -- gunicorn app:app
    tracehouse-agent bootstrap [--install]
    tracehouse-agent config          # the effective settings, or the one line saying what is wrong
    tracehouse-agent middleware --config middleware.toml   # Redis, MySQL, PostgreSQL, Nginx, RabbitMQ metrics

`run` replaces itself with the command (same pid, signals reach the application directly), with
the agent's sitecustomize directory first on PYTHONPATH, so that every Python process of the command
(including reloaders, spawned workers and `python` subprocesses) starts the agent before the
application imports anything; forked workers renew the agent's state after fork.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracehouse-agent", description="TraceHouse Python agent")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a command with tracing and metrics, no code change")
    run.add_argument("--service-name", help="service.name (default: OTEL_SERVICE_NAME or the program name)")
    run.add_argument("--endpoint", action="append", default=[],
                     help="collector endpoint, repeatable (default: OTEL_EXPORTER_OTLP_ENDPOINT or localhost)")
    run.add_argument("--protocol", choices=("http/protobuf", "grpc"), help="OTLP protocol")
    run.add_argument("--environment", help="deployment.environment")
    run.add_argument("--sampling-ratio", help="share of new traces kept, 0..1")
    run.add_argument("command_line", nargs=argparse.REMAINDER, help="-- the command to run")
    bootstrap = commands.add_parser("bootstrap", help="list (or --install) instrumentations for installed libraries")
    bootstrap.add_argument("--install", action="store_true", help="pip install the missing ones")
    commands.add_parser("config", help="print the effective settings or what is wrong with them")
    middleware = commands.add_parser("middleware", add_help=False,
                                     help="poll Redis, MySQL, PostgreSQL, Nginx and RabbitMQ and send their metrics")
    middleware.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["middleware"]:  # the middleware receivers parse their own options (--help too)
        from tracehouse.agents.middleware.cli import main as middleware_main

        return int(middleware_main(words[1:]))
    args = _parser().parse_args(words)
    if args.command == "run":
        return _run(args)
    if args.command == "bootstrap":
        return _bootstrap(args.install)
    return _config()


def child_environment(args: argparse.Namespace, base: dict[str, str]) -> dict[str, str]:
    from tracehouse.agents.autoinit import DIRECTORY

    env = dict(base)
    if args.service_name:
        env["TRACEHOUSE_SERVICE_NAME"] = args.service_name
    if args.endpoint:
        env["TRACEHOUSE_ENDPOINTS"] = ",".join(args.endpoint)
    if args.protocol:
        env["TRACEHOUSE_PROTOCOL"] = args.protocol
    if args.environment:
        env["TRACEHOUSE_ENVIRONMENT"] = args.environment
    if args.sampling_ratio:
        env["TRACEHOUSE_SAMPLING_RATIO"] = args.sampling_ratio
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != DIRECTORY]
    env["PYTHONPATH"] = os.pathsep.join([DIRECTORY, *paths])
    env["TRACEHOUSE_AGENT_AUTO"] = "1"
    return env


def _run(args: argparse.Namespace) -> int:
    from tracehouse.agents.settings import AgentConfigError, load_agent_settings

    command = list(args.command_line)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("tracehouse-agent run: give the command to run after --, e.g. "
              "tracehouse-agent run -- python app.py", file=sys.stderr)
        return 2
    env = child_environment(args, dict(os.environ))
    try:
        settings = load_agent_settings(env)
    except AgentConfigError as exc:
        # The application still runs, just without the agent.
        print(f"tracehouse-agent: invalid configuration, agent disabled: {exc}", file=sys.stderr, flush=True)
        env = dict(os.environ)
    else:
        if settings.disabled:
            env = dict(os.environ)
    executable = shutil.which(command[0], path=env.get("PATH"))
    if executable is None:
        print(f"tracehouse-agent run: command not found: {command[0]}", file=sys.stderr)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, command, env)
    return 0  # pragma: no cover - execve does not return


def _bootstrap(install: bool) -> int:
    from tracehouse.agents.instrument import install as pip_install
    from tracehouse.agents.instrument import suggestions

    found = suggestions()
    for item in found:
        state = "installed" if item.installed else "missing"
        print(f"{item.instrumentation:<60} {state:<9} for {item.library}")
    missing = [item.instrumentation for item in found if not item.installed]
    if install:
        return pip_install(missing)
    if missing:
        print(f"\n{len(missing)} missing; install them with: tracehouse-agent bootstrap --install")
    return 0


def _config() -> int:
    from tracehouse.agents.settings import AgentConfigError, load_agent_settings

    try:
        settings = load_agent_settings()
    except AgentConfigError as exc:
        print(f"tracehouse-agent: invalid configuration: {exc}", file=sys.stderr)
        return 2
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name == "headers" and value:
            value = {key: "***" for key in value}
        print(f"{field.name:<28} {value}")
    print(f"{'(endpoints in use)':<28} {', '.join(settings.effective_endpoints)}")
    print(f"{'(service name in use)':<28} {settings.effective_service_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
