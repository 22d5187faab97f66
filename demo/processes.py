"""Child processes of the demo, each in a process group of its own, stopped in order.

Every child starts a new session (so a Ctrl-C in the terminal reaches only the demo, which then stops
the children in order: load, services, TraceHouse) and, on Linux, asks the kernel to send it SIGTERM
if the demo itself dies without cleaning up (PR_SET_PDEATHSIG). Stopping a child signals its whole
process group, so whatever it started goes too; afterwards nothing may be left in any of the groups.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec: no locks, no imports
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pgid(self) -> int:
        return self.process.pid  # the leader of its own session and group

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def group_members(pgids: set[int]) -> list[psutil.Process]:
    """Live (non-zombie) processes in any of these process groups."""
    found = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(process.pid) in pgids:
                found.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


class Supervisor:
    """Starts children and stops them: SIGTERM to the group, then SIGKILL after a grace period."""

    def __init__(self, log_dir: Path, env_marker: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env_marker = env_marker  # put into every child's environment, so it can be found later
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env={**env, **self.env_marker}, start_new_session=True,
                                       preexec_fn=_die_with_parent)  # noqa: PLW1509 - only prctl
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def stop(self, children: Sequence[Child], timeout_s: float) -> None:
        """SIGTERM to each child's group at once, wait up to `timeout_s`, then SIGKILL the groups."""
        for child in children:
            _signal_group(child.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.pgid, signal.SIGKILL)
                child.process.wait()
        # The leaders are gone; whatever they started in their group gets a last word, then the end.
        stragglers = group_members({child.pgid for child in children})
        for process in stragglers:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(stragglers, timeout=3)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(alive, timeout=3)

    def leftovers(self) -> list[psutil.Process]:
        return group_members({child.pgid for child in self.children})


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
