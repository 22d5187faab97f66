"""The TraceHouse Python agent: OpenTelemetry tracing, metrics and auto-instrumentation in one line.

    import tracehouse.agents
    tracehouse.agents.init(service_name="orders")   # before importing the web framework
    ...
    tracehouse.agents.shutdown()                   # flushes; also runs at interpreter exit

or with no code change: `tracehouse-agent run -- python app.py` (also gunicorn, uvicorn, celery).
Configuration comes from `OTEL_*` and `TRACEHOUSE_*` environment variables and `init()` keywords
(see tracehouse.agents.settings). A bad value prints one line on stderr and leaves the agent off;
the application itself is never stopped and never sees an exception from the agent.

Import-light on purpose: nothing from the SDK is loaded until `init()`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracehouse.agents.agent import Agent

__all__ = ["init", "shutdown", "force_flush", "current"]

_lock = threading.Lock()
_agent: Agent | None = None


def init(service_name: str | None = None, **settings: Any) -> Agent | None:
    """Configures the SDK, exporters, metrics and instrumentation for this process.

    Keyword arguments override the environment: any field of `AgentSettings` (endpoints=[...],
    sampling_ratio=0.1, protocol="grpc", sanitize_db_statement=False, ...). Returns the running agent,
    or None if the agent is disabled or its configuration is invalid (one line on stderr says why).
    Calling it again returns the agent already running."""
    global _agent
    with _lock:
        if _agent is not None:
            return _agent
        try:
            from tracehouse.agents.settings import AgentConfigError, load_agent_settings

            try:
                config = load_agent_settings(service_name=service_name, **settings)
            except AgentConfigError as exc:
                _report(f"invalid configuration, agent disabled: {exc}")
                return None
            if config.disabled:
                return None
            from tracehouse.agents.agent import Agent

            _agent = Agent(config).start()
        except Exception as exc:  # noqa: BLE001 - the agent must never stop the application
            _report(f"could not start, agent disabled: {type(exc).__name__}: {exc}")
            return None
        return _agent


def shutdown(timeout_s: float = 10.0) -> None:
    """Flushes buffered spans and metrics (waiting at most `timeout_s`) and stops the agent."""
    global _agent
    with _lock:
        agent, _agent = _agent, None
    if agent is not None:
        agent.shutdown(timeout_s)


def force_flush(timeout_s: float = 10.0) -> bool:
    agent = _agent
    return agent.force_flush(timeout_s) if agent is not None else True


def current() -> Agent | None:
    return _agent


def _report(message: str) -> None:
    with contextlib.suppress(Exception):  # stderr closed: nothing else to do
        print(f"tracehouse-agent: {message}", file=sys.stderr, flush=True)
