"""The benchmark report: Markdown tables, the plotly figure, the files, and reading a backend's count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracehouse.bench.compare import BackendError, parse_count
from tracehouse.bench.report import figure, to_markdown, write_results

RESULTS: dict[str, Any] = {
    "meta": {"quick": True, "cpus": 2},
    "ingest": {"clients": 2, "spans_per_request": 500, "sent_spans": 10_000, "stored_spans": 10_000,
               "stored_spans_per_s": 61_234, "bytes_per_span_on_disk": 72.5, "export_latency_p50_ms": 12.5,
               "export_latency_p99_ms": 40.0},
    "query": {"spans": 100_000, "runs": 3, "load_spans_per_s": 250_000.0, "endpoints": [
        {"name": "dependencies", "path": "/api/v1/dependencies", "median_ms": 42.0, "p90_ms": 50.0,
         "target_ms": 100.0, "status": 200},
        {"name": "trace by id", "path": "/api/v1/traces/x", "median_ms": 75.0, "p90_ms": 80.0,
         "target_ms": 50.0, "status": 200},
        {"name": "db/n-plus-one", "path": "/api/v1/db/n-plus-one", "median_ms": 9.0, "p90_ms": 9.5,
         "target_ms": None, "status": 503}]},
    "agent": {"requests": 200, "rounds": 1, "db": "sqlite", "modes": {
        "uninstrumented": {"p50_us": 400.0, "p99_us": 600.0, "added_p50_us": 0.0, "added_p50_pct": 0.0},
        "agent": {"p50_us": 440.0, "p99_us": 700.0, "added_p50_us": 40.0, "added_p50_pct": 10.0}}},
    "compare": {"sent_spans": 5000, "clients": 2, "systems": [
        {"name": "tracehouse", "stored_spans_per_s": 9000, "acknowledged_spans_per_s": 9100, "stored_spans": 5000,
         "counted_by": "sql", "stored_timeline": [[0.0, 0], [0.4, 2500], [0.6, 5000]]},
        {"name": "phoenix", "stored_spans_per_s": 150, "acknowledged_spans_per_s": 4000, "stored_spans": 5000,
         "counted_by": "sqlite", "stored_timeline": [[0.0, 0], [10.0, 1500], [33.0, 5000]]}]},
}


def test_markdown_has_a_table_per_benchmark_with_verdicts() -> None:
    text = to_markdown(RESULTS)
    assert "| stored_spans_per_s | 61,234 | ≥ 50,000: ok |" in text
    assert "| bytes_per_span_on_disk | 72.5 | ≤ 60: missed |" in text
    assert "| dependencies | 42.0 | 50.0 | 100 | ok |" in text
    assert "| trace by id | 75.0 | 80.0 | 50 | over |" in text
    assert "| db/n-plus-one | 9.0 | 9.5 |  | HTTP 503 |" in text
    assert "| tracehouse agent | 440.0 | 700.0 | 40.0 | 10.0 |" in text
    assert "| phoenix | 150 |" in text and "| tracehouse | 9,000 |" in text


def test_a_failed_benchmark_is_reported_not_hidden() -> None:
    text = to_markdown({"ingest": {"error": "RuntimeError: tracehouse exited with 1"}})
    assert "ingest failed: RuntimeError: tracehouse exited with 1" in text


def test_figure_has_a_panel_per_measured_figure() -> None:
    fig = figure(RESULTS)
    titles = [annotation.text for annotation in fig.layout.annotations]
    assert any("Ingest" in t for t in titles) and any("Query" in t for t in titles)
    assert any("Agent" in t for t in titles) and any("Side by side" in t for t in titles)
    bars = {trace.name: list(trace.y) for trace in fig.data}
    assert bars["stored spans/s"] == [61_234]
    assert bars["median ms"] == [42.0, 75.0, 9.0]
    assert bars["stored spans/s (side by side)"] == [9000, 150]
    assert bars["acknowledged spans/s (side by side)"] == [9100, 4000]
    assert bars["phoenix stored"] == [0, 1500, 5000]
    assert list(next(t for t in fig.data if t.name == "phoenix stored").x) == [0.0, 10.0, 33.0]


def test_write_results_writes_json_markdown_and_html(tmp_path: Path) -> None:
    written = write_results(RESULTS, tmp_path / "out", png=False)
    assert json.loads(written.json.read_text())["ingest"]["stored_spans_per_s"] == 61_234
    assert written.markdown.read_text().startswith("# TraceHouse benchmarks")
    assert written.html is not None and "plotly" in written.html.read_text()[:200_000].lower()
    assert written.png is None


@pytest.mark.parametrize(("text", "field", "count"), [
    ("12345\n", "count", 12345),
    ("spans stored: 42", "count", 42),
    ('{"count": 7}', "count", 7),
    ('{"data": {"total": 9}}', "data.total", 9),
    ("3.0", "count", 3),
])
def test_parse_count_reads_numbers_and_json(text: str, field: str, count: int) -> None:
    assert parse_count(text, field) == count


@pytest.mark.parametrize("text", ["", "no numbers here", '{"total": 3}', '{"count": "many"}'])
def test_parse_count_says_what_is_missing(text: str) -> None:
    with pytest.raises(BackendError):
        parse_count(text)
