"""`tracehouse bench`: the quick suite runs end to end and writes its files; the side-by-side mode
measures the spans each system stored; bad invocations get one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TraceHouseProcess
from tracehouse.bench.compare import find_phoenix
from tracehouse.bench.report import png_available

SERVER_URL = os.environ.get("TRACEHOUSE_TEST_CLICKHOUSE_URL")


def _bench(*argv: str, timeout_s: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracehouse", "bench", *argv], capture_output=True, text=True,
                          timeout=timeout_s)


def _store_args(dsn: str) -> list[str]:
    """The embedded store by default (fresh ones made by the benchmarks), the server's database when tests
    run against a ClickHouse server."""
    return ["--store", dsn] if SERVER_URL else []


def test_bench_all_quick_writes_json_markdown_and_chart(tmp_path: Path, server_store_dsn: str) -> None:
    out = tmp_path / "results"
    result = _bench("all", "--quick", "--out", str(out), *_store_args(server_store_dsn))
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads((out / "results.json").read_text())
    ingest = data["ingest"]
    assert ingest["stored_spans"] == ingest["sent_spans"] > 0
    assert ingest["stored_spans_per_s"] > 0 and ingest["bytes_per_span_on_disk"] > 0
    endpoints = {e["name"]: e for e in data["query"]["endpoints"]}
    assert {"dependencies", "services", "latency", "top", "trace by id", "search service+min duration"} <= set(endpoints)
    assert all(endpoints[name]["status"] == 200 and endpoints[name]["median_ms"] > 0
               for name in ("dependencies", "services", "trace by id"))
    modes = data["agent"]["modes"]
    assert set(modes) == {"uninstrumented", "bare-sdk", "agent"}
    assert modes["agent"]["spans_per_request"] > 0 and modes["uninstrumented"]["spans_per_request"] == 0
    assert data["meta"]["quick"] is True
    markdown = (out / "results.md").read_text()
    assert "| stored_spans_per_s |" in markdown and "| dependencies |" in markdown and "tracehouse agent" in markdown
    assert "plotly" in (out / "results.html").read_text()[:200_000].lower()
    assert (out / "results.png").exists() == png_available()
    assert "stored_spans_per_s" in result.stdout  # the table is printed too


def test_compare_against_another_otlp_backend_counts_what_each_stored(
        tmp_path: Path, tracehouse: TraceHouseProcess) -> None:
    # The other backend here is a second TraceHouse, counted by a command, as any backend would be; the
    # benchmark's own TraceHouse gets a fresh store of its own (the default), apart from the fixture's.
    count_command = (f"{sys.executable} -c \"import httpx; print(httpx.post('{tracehouse.api_url}/api/v1/sql', "
                     f"json={{'query': 'SELECT count() AS n FROM otel_traces'}}).json()['rows'][0]['n'])\"")
    out = tmp_path / "compare"
    result = _bench("compare", "--quick", "--compare-spans", "3000", "--out", str(out), "--no-png",
                    "--backend-name", "second", "--backend-otlp-url", tracehouse.otlp_http_url,
                    "--backend-count-command", count_command, "--settle-s", "10")
    assert result.returncode == 0, result.stderr[-4000:]
    compare = json.loads((out / "results.json").read_text())["compare"]
    systems = {s["name"]: s for s in compare["systems"]}
    assert set(systems) == {"tracehouse", "second"}
    for system in systems.values():
        assert system["stored_spans"] == system["sent_spans"] == compare["sent_spans"] > 0
        assert system["complete"] and system["stored_spans_per_s"] > 0 and system["count_error"] is None
        assert system["stored_timeline"][-1][1] == system["sent_spans"]
    assert tracehouse.count("otel_traces") == compare["sent_spans"]
    assert "| second |" in (out / "results.md").read_text()


@pytest.mark.skipif(find_phoenix() is None, reason="Arize Phoenix is not installed (set TRACEHOUSE_BENCH_PHOENIX)")
def test_compare_with_phoenix_counts_spans_in_its_database(tmp_path: Path) -> None:
    out = tmp_path / "phoenix"
    result = _bench("compare", "--quick", "--phoenix", "--compare-spans", "2000", "--out", str(out), "--no-png",
                    timeout_s=600)
    assert result.returncode == 0, result.stderr[-4000:]
    systems = {s["name"]: s for s in json.loads((out / "results.json").read_text())["compare"]["systems"]}
    assert systems["phoenix"]["stored_spans"] == systems["phoenix"]["sent_spans"] > 0


def test_compare_without_a_backend_says_what_is_needed(tmp_path: Path) -> None:
    result = _bench("compare", "--out", str(tmp_path), timeout_s=60)
    assert result.returncode == 2
    assert "--phoenix" in result.stderr and "--backend-otlp-url" in result.stderr
    assert not (tmp_path / "results.json").exists()
