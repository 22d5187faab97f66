"""Unit tests of the figure builders, fed hand-made JSON of the shapes the API documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

from tests.test_ui_models import DEPENDENCIES, T0_NS, TRACE
from tracehouse.ui import figures
from tracehouse.ui.graph import parse_graph
from tracehouse.ui.render import figure_html
from tracehouse.ui.tracemodel import build_trace

T0_MS = T0_NS // 1_000_000


def traces_of(fig: go.Figure, kind: str) -> list:
    return [t for t in fig.data if t.type == kind]


def annotations_text(fig: go.Figure) -> str:
    return " ".join(a.text or "" for a in fig.layout.annotations)


def test_service_map_has_one_marker_per_node_with_its_shape_and_link() -> None:
    fig = figures.service_map(parse_graph(DEPENDENCIES), lambda s: f"/ui/services/{s}")
    node_traces = [t for t in traces_of(fig, "scatter") if t.mode == "markers+text"]
    names = {name: trace.marker.symbol for trace in node_traces for name in trace.text}
    assert names == {"front": "circle", "a": "circle", "b": "circle", "c": "circle", "postgresql test": "square"}
    services = next(t for t in node_traces if t.name == "service")
    assert list(services.customdata) == [f"/ui/services/{s}" for s in services.text]
    database = next(t for t in node_traces if t.name == "database")
    assert list(database.customdata) == [""]  # a database has no service page
    sizes = dict(zip(services.text, services.marker.size, strict=True))
    assert sizes["front"] > sizes["a"] > sizes["c"]  # by calls
    colours = dict(zip(services.text, services.marker.color, strict=True))
    assert colours["a"] == 0.1 and colours["b"] == 0.0  # error rate


def test_service_map_draws_cycle_edges_red_and_others_grey() -> None:
    fig = figures.service_map(parse_graph(DEPENDENCIES), lambda s: s)
    edge_lines = [t for t in traces_of(fig, "scatter") if t.mode == "lines"]
    assert len(edge_lines) == 5
    red = [t for t in edge_lines if t.line.color == figures.CYCLE_RED]
    assert len(red) == 3
    arrows = [a for a in fig.layout.annotations if a.showarrow]
    assert len(arrows) == 5 and sum(a.arrowcolor == figures.CYCLE_RED for a in arrows) == 3
    hover = next(t for t in traces_of(fig, "scatter") if t.name == "calls").hovertext
    assert any("front → a" in h and "errors 5 (10.0%)" in h for h in hover)
    assert sum("dependency cycle" in h for h in hover) == 3


def test_service_map_escapes_names_in_hover_text() -> None:
    fig = figures.service_map(parse_graph({"nodes": [{"id": "<script>", "kind": "service", "calls": 1}],
                                           "edges": []}), lambda s: s)
    hover = next(t for t in fig.data if t.mode == "markers+text").hovertext[0]
    assert "<script>" not in hover and "&lt;script&gt;" in hover


def test_empty_graph_says_so() -> None:
    fig = figures.service_map(parse_graph({"nodes": [], "edges": [], "cycles": []}), lambda s: s)
    assert "No services" in annotations_text(fig)


def test_trace_scatter_links_each_point_to_its_trace() -> None:
    rows = [{"trace_id": f"{i:032x}", "root_service": "front", "root_operation": "GET /", "start": "2026-11-26T08:00:00Z",
             "start_unix_ms": T0_MS + i * 1000, "duration_ms": 10.0 + i, "span_count": 3, "error_count": i % 2,
             "services": ["front"]} for i in range(4)]
    fig = figures.trace_scatter(rows, lambda t: f"/ui/traces/{t}")
    ok = next(t for t in fig.data if t.name == "ok")
    failed = next(t for t in fig.data if t.name == "with errors")
    assert list(ok.customdata) == [f"/ui/traces/{0:032x}", f"/ui/traces/{2:032x}"]
    assert list(failed.y) == [11.0, 13.0] and failed.marker.color == figures.ERROR_RED
    assert figures.trace_scatter([], lambda t: t).data == ()


def test_waterfall_has_a_bar_per_span_errors_and_the_critical_path() -> None:
    trace = build_trace(TRACE)
    fig = figures.waterfall(trace)
    bars = traces_of(fig, "bar")
    assert sorted(b.name for b in bars) == ["checkout", "front", "payments"]
    assert sum(len(b.y) for b in bars) == 5
    payments = next(b for b in bars if b.name == "payments")
    assert list(payments.base) == [10.0, 45.0] and list(payments.x) == [30.0, 35.0]
    assert list(payments.text) == ["30.0 ms", "35.0 ms ✕ error"]
    assert list(payments.textfont.color) == ["#444", figures.ERROR_RED]
    assert list(payments.marker.line.width) == [0, 3]  # the failed span is outlined
    assert list(payments.customdata) == ["#span-c", "#span-d"]
    critical = next(t for t in fig.data if t.name == "critical path")
    assert len([x for x in critical.x if x is None]) == len(trace.critical_path)
    labels = list(fig.layout.yaxis.ticktext)
    assert len({len(label) for label in labels}) == 1  # padded to one width: an aligned tree
    assert labels[2].startswith("\u00a0" * 4 + "payments: op-c")


def test_latency_histogram_is_a_step_line_on_a_log_axis_with_percentile_marks() -> None:
    latency = {"count": 7, "p50_ms": 3.0, "p95_ms": 12.0, "p99_ms": 14.0,
               "histogram": [{"lower_ms": 1, "upper_ms": 2, "count": 1}, {"lower_ms": 2, "upper_ms": 4, "count": 4},
                             {"lower_ms": 8, "upper_ms": 16, "count": 2}]}
    fig = figures.latency_histogram(latency)
    assert fig.layout.xaxis.type == "log"
    step = fig.data[0]
    assert step.line.shape == "hv" and list(step.x) == [1, 2, 8, 16] and list(step.y) == [1, 4, 2, 2]
    assert [s.x0 for s in fig.layout.shapes] == [3.0, 12.0, 14.0]
    assert "p99 14.0 ms" in annotations_text(fig)
    assert "No spans" in annotations_text(figures.latency_histogram({"histogram": []}))


SERIES: list[dict[str, Any]] = [{"time": f"2026-11-26T08:0{i}:00Z", "unix_ms": T0_MS + i * 60_000, "calls": 120 * (i + 1), "errors": i,
           "p50_ms": 1.0 + i, "p95_ms": 2.0 + i, "p99_ms": 3.0 + i} for i in range(3)]


def test_latency_heatmap_rows_are_percentiles_over_time() -> None:
    fig = figures.latency_heatmap({"series": SERIES})
    heat = fig.data[0]
    assert heat.type == "heatmap" and list(heat.y) == ["p50", "p95", "p99"]
    assert [list(r) for r in heat.z] == [[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]]
    assert heat.x[0] == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_red_charts_scale_calls_to_per_minute_and_errors_to_percent() -> None:
    points = [dict(p) for p in SERIES]
    for p in points:  # 30-second steps
        p["unix_ms"] = T0_MS + (p["unix_ms"] - T0_MS) // 2
    fig = figures.red_charts(points)
    calls = next(t for t in fig.data if t.name == "calls/min")
    assert list(calls.y) == [240.0, 480.0, 720.0]
    errors = next(t for t in fig.data if t.name == "error %")
    assert [round(v, 4) for v in errors.y] == [0.0, round(100 / 240, 4), round(200 / 360, 4)]
    assert {t.name for t in fig.data} >= {"p50", "p95", "p99"}


def test_metric_chart_reads_labelled_series_with_parallel_arrays() -> None:
    data = {"name": "system.cpu.utilization", "unit": "1", "agg": "avg", "series": [
        {"labels": {"host.name": "h1"}, "timestamps": ["2026-11-26T08:00:00Z", "2026-11-26T08:01:00Z"], "values": [0.5, None]},
        {"labels": {"host.name": "h2"}, "timestamps": ["2026-11-26T08:00:00Z"], "values": [0.25]}]}
    window = (datetime(2026, 11, 26, 7, 0, tzinfo=UTC), datetime(2026, 11, 26, 8, 0, tzinfo=UTC))
    fig = figures.metric_chart(data, title="cpu", unit="1", x_range=window)
    assert [t.name for t in fig.data] == ["host.name=h1", "host.name=h2"]
    assert tuple(fig.layout.xaxis.range) == window  # the page's range, not just where the points are
    assert list(fig.data[0].y) == [0.5]  # a step without data is left out
    assert "No data" in annotations_text(figures.metric_chart({"series": []}, title="cpu"))


def test_correlated_panels_put_p99_first_then_series_by_score() -> None:
    data = {"service": "shop", "timestamps": ["2026-11-26T08:00:00Z", "2026-11-26T08:01:00Z"],
            "latency": {"p99_ms": [10.0, 50.0], "p50_ms": [1, 2], "error_rate": [0, 0], "calls": [5, 5]},
            "series": [{"id": "a", "source": "middleware", "entity": "redis", "metric": "redis.clients", "labels": {},
                        "unit": "1", "agg": "avg", "values": [1, 1], "spearman": 0.1, "score": 0.1},
                       {"id": "b", "source": "host", "entity": "h1", "metric": "system.cpu.utilization",
                        "labels": {"cpu": "all"}, "unit": "1", "agg": "avg", "values": [0.1, 0.9], "spearman": 0.95,
                        "score": 0.95}]}
    fig = figures.correlated_panels(data, service="shop")
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "shop p99 (ms)"
    assert titles[1].startswith("host h1: system.cpu.utilization {cpu=all}") and "ρ = +0.95" in titles[1]
    assert titles[2].startswith("middleware redis: redis.clients")
    assert list(fig.data[1].y) == [0.1, 0.9]
    assert "No host" in annotations_text(figures.correlated_panels({"timestamps": [], "series": []}, service="x"))


def test_figure_html_is_a_div_that_follows_clicks_without_loading_plotly() -> None:
    html = str(figure_html(figures.trace_scatter([], lambda t: t), name="x", clickable=True))
    assert 'id="fig-x"' in html and "thFollowClicks('fig-x')" in html
    assert "cdn.plot.ly" not in html and "<html" not in html


def test_a_very_large_trace_keeps_its_bars_but_drops_row_labels() -> None:
    spans = [{"span_id": f"{i + 1:016x}", "parent_span_id": f"{i // 3 + 1:016x}" if i else "", "service": f"s{i % 3}",
              "name": f"op{i}", "start_unix_ns": T0_NS + i * 10_000, "duration_ms": 1.0} for i in range(400)]
    fig = figures.waterfall(build_trace({"spans": spans}))
    assert sum(len(b.y) for b in fig.data if b.type == "bar") == 400
    assert fig.layout.yaxis.showticklabels is False and fig.layout.yaxis.ticktext is None
    assert all(b.text is None for b in fig.data if b.type == "bar")
