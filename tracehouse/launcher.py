"""Runs TraceHouse as a child process on free ports and waits until it is ready.

Used by the demo, the benchmarks and the tests, so that all of them start the real `tracehouse up`
the same way and talk to it only over its public ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T], *, timeout_s: float = 30.0, interval_s: float = 0.1,
             message: str = "condition") -> T:
    """Polls until `condition()` returns something truthy; fails the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last one
            last_error = exc
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {message}" + (f": {last_error!r}" if last_error else ""))


@dataclass
class TraceHouseProcess:
    process: subprocess.Popen[bytes]
    grpc_port: int
    otlp_http_port: int
    zipkin_port: int
    http_port: int
    log_path: str
    stopped: bool = field(default=False)

    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def zipkin_url(self) -> str:
        return f"http://127.0.0.1:{self.zipkin_port}/api/v2/spans"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def sql(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a read-only query, through the running process's `/api/v1/sql`."""
        response = httpx.post(f"{self.api_url}/api/v1/sql", json={"query": query, "parameters": parameters or {}},
                              timeout=30)
        response.raise_for_status()
        return list(response.json()["rows"])

    def count(self, table: str, where: str = "1") -> int:
        return int(self.sql(f"SELECT count() AS n FROM {table} WHERE {where}")[0]["n"])

    def log(self) -> str:
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Stops the process (SIGTERM by default) and returns its exit code."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_tracehouse(store_dsn: str, *, log_path: str, extra_args: Sequence[str] = (),
                     env: dict[str, str] | None = None, command: str = "up",
                     ready_timeout_s: float = 60.0, wait_path: str = "/readyz") -> TraceHouseProcess:
    """Starts `tracehouse <command>` on free ports and waits until `wait_path` answers 200
    (`/healthz` to wait only for the process to listen, e.g. while its store is unreachable)."""
    ports = {name: free_port() for name in ("grpc", "http", "zipkin", "api")}
    args = [
        sys.executable, "-m", "tracehouse", command, "--store", store_dsn,
        "--host", "127.0.0.1",
        "--otlp-grpc-port", str(ports["grpc"]), "--otlp-http-port", str(ports["http"]),
        "--zipkin-port", str(ports["zipkin"]),
    ]
    if command == "up":
        args += ["--http-port", str(ports["api"])]
    args += list(extra_args)
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    handle = TraceHouseProcess(process, ports["grpc"], ports["http"], ports["zipkin"], ports["api"], log_path)
    ready_url = f"{handle.api_url if command == 'up' else handle.otlp_http_url}{wait_path}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"tracehouse exited with {process.returncode}:\n{handle.log()[-3000:]}")
        return httpx.get(ready_url, timeout=2).status_code == 200

    try:
        wait_for(ready, timeout_s=ready_timeout_s, interval_s=0.2, message=f"{ready_url} to answer 200")
    except BaseException:
        handle.stop(signal.SIGKILL)
        raise
    return handle
