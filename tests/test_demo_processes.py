"""The demo's process handling: a stop takes a child's whole process group, SIGKILL follows a SIGTERM
that is ignored, and children die with the demo even when it is killed without a chance to clean up."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from tests.support import wait_for
from tracehouse.demo.processes import Supervisor, group_members

SPAWNS_A_GRANDCHILD = textwrap.dedent("""
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print("ready", flush=True)
    time.sleep(300)
""")
IGNORES_SIGTERM = textwrap.dedent("""
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(300)
""")


def _ready(log: Path) -> bool:
    return log.exists() and "ready" in log.read_text()


def test_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, {"DEMO_TEST": "1"})
    child = supervisor.start("parent", [sys.executable, "-c", SPAWNS_A_GRANDCHILD], {})
    wait_for(lambda: _ready(child.log_path), timeout_s=30, message="the child")
    def both() -> list[psutil.Process]:
        members = group_members({child.pgid})
        return members if len(members) == 2 else []

    members = wait_for(both, timeout_s=30, message="child and grandchild in one group")
    assert {p.pid for p in members} > {child.process.pid}
    supervisor.stop([child], timeout_s=10)
    assert supervisor.leftovers() == []
    assert not any(psutil.pid_exists(p.pid) and psutil.Process(p.pid).status() != psutil.STATUS_ZOMBIE
                   for p in members)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, {})
    child = supervisor.start("stubborn", [sys.executable, "-c", IGNORES_SIGTERM], {})
    wait_for(lambda: _ready(child.log_path), timeout_s=30, message="the child")
    began = time.monotonic()
    supervisor.stop([child], timeout_s=1.0)
    assert child.process.returncode == -signal.SIGKILL
    assert time.monotonic() - began < 15
    assert supervisor.leftovers() == []


def test_children_die_with_a_killed_demo(tmp_path: Path) -> None:
    # A parent that starts a child through the Supervisor, then is SIGKILLed: no cleanup code runs.
    parent_code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from tracehouse.demo.processes import Supervisor
        child = Supervisor(Path({str(tmp_path)!r}), {{}}).start("orphan", [sys.executable, "-c", "import time; time.sleep(300)"], {{}})
        print(child.process.pid, flush=True)
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert psutil.Process(child_pid).is_running()
    parent.kill()
    parent.wait()

    def gone() -> bool:
        try:
            return psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout_s=10, message="the orphaned child to end")
