"""The `tracehouse` command line as a user types it."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracehouse", *args], capture_output=True, text=True, timeout=120)


def test_demo_and_bench_take_their_own_options() -> None:
    demo = _run("demo", "--help")
    assert demo.returncode == 0, demo.stderr
    assert "--cycle" in demo.stdout and "--http-port" in demo.stdout
    bench = _run("--log-level", "WARNING", "bench", "--help")
    assert bench.returncode == 0, bench.stderr
    assert "--quick" in bench.stdout


def test_unknown_command_is_refused() -> None:
    result = _run("launch")
    assert result.returncode == 2
    assert "invalid choice: 'launch'" in result.stderr


def test_collector_needs_a_store() -> None:
    result = _run("collector")
    assert result.returncode == 2
    assert result.stderr.strip() == ("tracehouse: configuration error: tracehouse collector needs --store DSN "
                                     "(a ClickHouse server); use `tracehouse up` for the embedded store")
