"""Who is sending: the OpenTelemetry resource, with `service.instance.id = host:port:start_time_ns:pid`.

The id names one run of one process: a restart gets a new start time, two processes started in the
same second differ by pid and nanoseconds, and a worker forked by gunicorn gets its own id (the
resource is renewed in the child after `fork`). The port is the one the process listens on: taken
from configuration (TRACEHOUSE_SERVICE_PORT or PORT) or the server's command line (gunicorn
--bind, uvicorn --port, ...) if given, otherwise looked up among the
process's listening sockets the first time the resource is read, which happens at the first export,
by when a server has bound its socket; a worker spawned by a server that knew its port falls back
to that port. A process that listens nowhere reports port 0.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

from tracehouse import __version__

PARENT_PORT_VARIABLE = "TRACEHOUSE_PARENT_PORT"


def listening_port() -> int:
    """The lowest TCP port this process listens on (sockets inherited from a parent count), or 0."""
    try:
        import psutil

        ports = sorted(
            conn.laddr.port for conn in psutil.Process().net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN and conn.laddr
        )
    except Exception:  # noqa: BLE001 - no permission / unsupported platform: unknown port
        return 0
    return ports[0] if ports else 0


def port_from_argv(argv: list[str]) -> int:
    """The port a server command line asks for: gunicorn `-b/--bind host:port`, uvicorn/flask/hypercorn
    `--port N` or `-p N`, Django `runserver [host:]port`; 0 if none."""
    def parse(text: str) -> int:
        tail = text.rsplit(":", 1)[-1] if ":" in text else text
        return int(tail) if tail.isdigit() and 0 < int(tail) <= 65535 else 0

    for index, arg in enumerate(argv):
        for flag in ("--bind", "--port"):
            if arg.startswith(flag + "="):
                return parse(arg.split("=", 1)[1])
        if arg in ("-b", "--bind", "--port", "-p") and index + 1 < len(argv):
            return parse(argv[index + 1])
        if arg == "runserver" and index + 1 < len(argv):
            return parse(argv[index + 1])
    return 0


class InstanceIdentity:
    """host, port, start time and pid of this process run; renewed in a forked child."""

    def __init__(self, configured_port: int = 0) -> None:
        self.host = socket.gethostname()
        self.configured_port = configured_port
        self._lock = threading.Lock()
        self._port: int | None = configured_port or port_from_argv(sys.argv) or None
        # A worker spawned by a server (uvicorn --workers/--reload, multiprocessing) gets the listening
        # socket only after start-up and no port on its command line: the parent passes its port on.
        hint = os.environ.get(PARENT_PORT_VARIABLE, "")
        self._parent_port = int(hint) if hint.isdigit() and int(hint) <= 65535 else 0
        if self._port:
            os.environ[PARENT_PORT_VARIABLE] = str(self._port)
        self.start_time_ns = time.time_ns()
        self.pid = os.getpid()

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self.start_time_ns = time.time_ns()
        self.pid = os.getpid()
        # A forked worker shares the parent's listening socket: keep a known port, look again otherwise.
        if not self._port:
            self._port = None

    @property
    def port(self) -> int:
        if self._port is None:
            with self._lock:
                if self._port is None:
                    self._port = listening_port() or self._parent_port
        return self._port

    @property
    def instance_id(self) -> str:
        return f"{self.host}:{self.port}:{self.start_time_ns}:{self.pid}"


class InstanceResource(Resource):
    """A Resource whose per-process attributes (instance id, pid) are filled in when first read and
    renewed after fork. Spans and metrics hold a reference to this one object, so a renewal reaches
    every tracer and meter already handed out."""

    def __init__(self, base: Resource, identity: InstanceIdentity) -> None:
        super().__init__(base.attributes, base.schema_url)
        self._base_attributes: dict[str, Any] = dict(base.attributes)
        self.identity = identity
        self._resolved: BoundedAttributes | None = None

    @property
    def attributes(self) -> Attributes:  # type: ignore[override]
        resolved = self._resolved
        if resolved is None:
            resolved = BoundedAttributes(attributes={
                **self._base_attributes,
                "service.instance.id": self.identity.instance_id,
                "process.pid": self.identity.pid,
            })
            self._resolved = resolved
        return resolved

    def after_fork(self) -> None:
        self.identity.after_fork()
        self._resolved = None

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


def build_resource(*, service_name: str, service_version: str, environment: str,
                   extra: Mapping[str, str], identity: InstanceIdentity) -> InstanceResource:
    import platform

    attributes: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.distro.name": "tracehouse",
        "telemetry.distro.version": __version__,
        "host.name": identity.host,
        "process.runtime.name": platform.python_implementation().lower(),
        "process.runtime.version": platform.python_version(),
        "process.executable.path": os.path.realpath(sys.executable) if sys.executable else "",
    }
    try:
        from opentelemetry.sdk.version import __version__ as sdk_version

        attributes["telemetry.sdk.version"] = sdk_version
    except ImportError:  # pragma: no cover
        pass
    attributes.update(extra)
    attributes["service.name"] = service_name
    if service_version:
        attributes["service.version"] = service_version
    if environment:
        attributes["deployment.environment"] = environment
        attributes["deployment.environment.name"] = environment
    return InstanceResource(Resource(attributes), identity)
