"""Plotly figures, each a pure function of API JSON (or of the models built from it).

Clickable points carry the URL to open in `customdata` (a string, or a list whose first item is
the URL); the page's small script follows it on `plotly_click`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tracehouse.ui.data import error_rate, first, fmt_ms, fmt_pct, num, rows, text, to_datetime
from tracehouse.ui.graph import ServiceGraph, edge_width_px, node_size_px
from tracehouse.ui.tracemodel import Trace

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#8cd17d", "#499894", "#86bcb6", "#d37295", "#a0cbe8", "#ffbe7d", "#79706e")
ERROR_RED = "#d62728"
NBSP = "\u00a0"
CYCLE_RED = "#d62728"
EDGE_GREY = "#9aa5b1"
NODE_SYMBOLS = {"service": "circle", "database": "square", "messaging": "diamond", "external": "triangle-up"}
ERROR_SCALE = [[0.0, "#2ca02c"], [0.5, "#ffbf00"], [1.0, "#d62728"]]
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
SERIES_KEYS = ("series", "timeseries", "time_series", "intervals", "points", "buckets_over_time")
TIME_KEYS = ("t", "unix_ms", "time", "ts", "timestamp", "start", "bucket", "minute", "interval_start")


def service_color(service: str) -> str:
    """A colour per service name that stays the same on every page."""
    return PALETTE[zlib.crc32(service.encode()) % len(PALETTE)]


def _base_layout(fig: go.Figure, *, height: int, title: str | None = None, **extra: Any) -> go.Figure:
    margin = extra.pop("margin", {"l": 60, "r": 20, "t": 40 if title else 16, "b": 40})
    fig.update_layout(height=height, margin=margin,
                      template="plotly_white", title={"text": title, "x": 0.01} if title else None,
                      hoverlabel={"namelength": -1}, **extra)
    return fig


XRange = tuple[datetime, datetime] | None


def _time_axis(fig: go.Figure, x_range: XRange) -> go.Figure:
    """Charts of one page share the page's time range, however little data falls in it."""
    if x_range is not None:
        fig.update_xaxes(range=[x_range[0], x_range[1]], type="date")
    return fig


def empty_figure(message: str, height: int = 220) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#666"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, height=height)


# --- time series -------------------------------------------------------------------------------------

def series_points(items: Any) -> list[dict[str, Any]]:
    """Points of a time series, each with `t` (a datetime) and its numeric fields, sorted by time."""
    points: list[dict[str, Any]] = []
    for row in rows(items):
        moment = to_datetime(first(row, *TIME_KEYS))
        if moment is None:
            continue
        points.append({**row, "t": moment})
    points.sort(key=lambda p: p["t"])
    return points


def latency_series(latency: Any) -> list[dict[str, Any]]:
    if isinstance(latency, Mapping):
        return series_points(first(latency, *SERIES_KEYS, default=[]))
    return series_points(latency)


def sparkline(points: Sequence[tuple[datetime, float]], *, color: str = "#4e79a7",
              height: int = 36, width: int = 140) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines",
                               line={"color": color, "width": 1.5}, fill="tozeroy",
                               hovertemplate="%{x|%H:%M}: %{y:.1f} ms<extra></extra>"))
    fig.update_layout(height=height, width=width, margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      showlegend=False, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
    fig.update_xaxes(visible=False, fixedrange=True)
    fig.update_yaxes(visible=False, fixedrange=True, rangemode="tozero")
    return fig


def percentile_lines(latency: Any, *, title: str = "Latency percentiles", height: int = 280,
                     x_range: XRange = None) -> go.Figure:
    points = latency_series(latency)
    if not points:
        return empty_figure("No latency data in this time range", height)
    fig = go.Figure()
    for key, label, color in (("p50_ms", "p50", "#59a14f"), ("p95_ms", "p95", "#f28e2b"),
                              ("p99_ms", "p99", "#d62728")):
        values = [num(p, key, key.removesuffix("_ms")) for p in points]
        if all(v is None for v in values):
            continue
        fig.add_trace(go.Scatter(x=[p["t"] for p in points], y=values, mode="lines+markers", name=label,
                                 line={"color": color}, marker={"size": 4},
                                 hovertemplate=f"{label} %{{y:.2f}} ms<extra></extra>"))
    fig.update_yaxes(title_text="ms", rangemode="tozero")
    return _time_axis(_base_layout(fig, height=height, title=title, hovermode="x unified"), x_range)


def red_charts(points_in: Any, *, interval_s: float | None = None, height: int = 520,
               x_range: XRange = None) -> go.Figure:
    """Rate, errors and duration over time, on one shared time axis."""
    points = series_points(points_in)
    if not points:
        return empty_figure("No requests in this time range", 260)
    step_s = interval_s or _step_seconds(points)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Calls per minute", "Error rate", "Duration"))
    times = [p["t"] for p in points]
    calls = [num(p, "calls", "count", "requests") for p in points]
    per_minute = [None if c is None else c * 60.0 / step_s for c in calls]
    rates = [error_rate(p) for p in points]
    fig.add_trace(go.Bar(x=times, y=per_minute, name="calls/min", marker_color="#4e79a7",
                         hovertemplate="%{y:.1f} calls/min<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=times, y=[None if r is None else r * 100 for r in rates], name="error %",
                             mode="lines+markers", line={"color": ERROR_RED}, marker={"size": 4},
                             hovertemplate="%{y:.2f}% errors<extra></extra>"), row=2, col=1)
    for key, label, color in (("p50_ms", "p50", "#59a14f"), ("p95_ms", "p95", "#f28e2b"),
                              ("p99_ms", "p99", "#d62728")):
        values = [num(p, key) for p in points]
        if any(v is not None for v in values):
            fig.add_trace(go.Scatter(x=times, y=values, name=label, mode="lines", line={"color": color},
                                     hovertemplate=f"{label} %{{y:.2f}} ms<extra></extra>"), row=3, col=1)
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="%", row=2, col=1)
    fig.update_yaxes(title_text="ms", row=3, col=1)
    return _time_axis(_base_layout(fig, height=height, hovermode="x unified"), x_range)


def _step_seconds(points: Sequence[Mapping[str, Any]]) -> float:
    if len(points) < 2:
        return 60.0
    gaps = sorted((b["t"] - a["t"]).total_seconds() for a, b in zip(points, points[1:], strict=False))
    positive = [g for g in gaps if g > 0]
    return positive[len(positive) // 2] if positive else 60.0


# --- latency distribution ------------------------------------------------------------------------------

def histogram_buckets(latency: Any) -> list[tuple[float, float, float]]:
    """(lower_ms, upper_ms, count) of the latency histogram, sorted."""
    items: Any = latency
    if isinstance(latency, Mapping):
        items = first(latency, "histogram", "buckets", default=[])
    if isinstance(items, Mapping):
        items = first(items, "buckets", default=[])
    buckets: list[tuple[float, float, float]] = []
    for row in rows(items):
        lower = num(row, "lower_ms", "from_ms", "min_ms", "start_ms", "low_ms", "lower", "le_from")
        upper = num(row, "upper_ms", "to_ms", "max_ms", "end_ms", "high_ms", "le_ms", "upper", "le")
        count = num(row, "count", "n", "calls", default=0.0) or 0.0
        if upper is None:
            continue
        if lower is None:
            lower = buckets[-1][1] if buckets else upper / 2
        buckets.append((lower, upper, count))
    buckets.sort()
    return buckets


def latency_histogram(latency: Any, *, height: int = 300) -> go.Figure:
    """Counts per log-spaced bucket, drawn as steps on a log duration axis."""
    buckets = [b for b in histogram_buckets(latency) if b[1] > 0]
    if not buckets or sum(b[2] for b in buckets) == 0:
        return empty_figure("No spans in this time range", height)
    xs: list[float] = []
    ys: list[float] = []
    labels: list[str] = []
    for lower, upper, count in buckets:
        xs.append(max(lower, upper / 10 if lower <= 0 else lower))
        ys.append(count)
        labels.append(f"{fmt_ms(lower)} – {fmt_ms(upper)}")
    xs.append(buckets[-1][1])
    ys.append(buckets[-1][2])
    labels.append(labels[-1])
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", fill="tozeroy",
                               line={"color": "#4e79a7"}, customdata=labels, name="spans",
                               hovertemplate="%{customdata}: %{y} spans<extra></extra>"))
    marks = latency if isinstance(latency, Mapping) else {}
    for key, label, color in (("p50_ms", "p50", "#59a14f"), ("p95_ms", "p95", "#f28e2b"),
                              ("p99_ms", "p99", "#d62728")):
        value = num(marks, key)
        if value and value > 0:
            # On a log axis a shape takes the value itself, an annotation its log10.
            fig.add_shape(type="line", x0=value, x1=value, y0=0, y1=1, xref="x",
                          yref="paper", line={"color": color, "dash": "dash", "width": 1})
            fig.add_annotation(x=math.log10(value), y=1.0, xref="x", yref="paper", yanchor="bottom",
                               text=f"{label} {fmt_ms(value)}", showarrow=False,
                               font={"color": color, "size": 11})
    fig.update_xaxes(type="log", title_text="duration (ms, log scale)",
                     range=[math.log10(xs[0]) - 0.1, math.log10(xs[-1]) + 0.1])
    fig.update_yaxes(title_text="spans", rangemode="tozero")
    return _base_layout(fig, height=height, showlegend=False, margin={"l": 60, "r": 20, "t": 48, "b": 40})


def latency_heatmap(latency: Any, *, height: int = 300, x_range: XRange = None) -> go.Figure:
    """Over time: bucket counts per interval when the API gives them, else p50/p95/p99 per interval."""
    points = latency_series(latency)
    if not points:
        return empty_figure("No latency data over time in this time range", height)
    if any(isinstance(first(p, "histogram", "buckets"), list) for p in points):
        bounds = sorted({b[1] for p in points for b in histogram_buckets(p)})
        if bounds:
            z = []
            for upper in bounds:
                row_counts = []
                for p in points:
                    counts = {b[1]: b[2] for b in histogram_buckets(p)}
                    row_counts.append(counts.get(upper, 0.0))
                z.append(row_counts)
            fig = go.Figure(go.Heatmap(x=[p["t"] for p in points], y=[f"≤ {fmt_ms(b)}" for b in bounds], z=z,
                                       colorscale="Viridis", colorbar={"title": {"text": "spans"}},
                                       hovertemplate="%{x|%H:%M}, %{y}: %{z} spans<extra></extra>"))
            return _time_axis(_base_layout(fig, height=height), x_range)
    labels = []
    z = []
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        values = [num(p, key) for p in points]
        if any(v is not None for v in values):
            labels.append(label)
            z.append(values)
    if not z:
        return empty_figure("No latency data over time in this time range", height)
    fig = go.Figure(go.Heatmap(x=[p["t"] for p in points], y=labels, z=z, colorscale="YlOrRd",
                               colorbar={"title": {"text": "ms"}},
                               hovertemplate="%{x|%H:%M} %{y}: %{z:.2f} ms<extra></extra>"))
    return _time_axis(_base_layout(fig, height=max(180, min(height, 80 + 50 * len(labels)))), x_range)


# --- service map -------------------------------------------------------------------------------------

def service_map(graph: ServiceGraph, service_url: Callable[[str], str], *, height: int | None = None) -> go.Figure:
    """Nodes sized by calls and coloured by error rate, arrows as wide as their calls, cycles in red."""
    if not graph.nodes:
        return empty_figure("No services in this time range", 300)
    max_node_calls = max((n.calls for n in graph.nodes), default=0.0)
    max_edge_calls = max((e.calls for e in graph.edges), default=0.0)
    positions = {n.id: (n.x, n.y) for n in graph.nodes}
    sizes = {n.id: node_size_px(n.calls, max_node_calls) for n in graph.nodes}
    pairs = {(e.source, e.target) for e in graph.edges}
    fig = go.Figure()
    mid_x: list[float] = []
    mid_y: list[float] = []
    mid_text: list[str] = []
    mid_color: list[str] = []
    extent_y: list[float] = [n.y for n in graph.nodes]
    for edge in graph.edges:
        (x0, y0), (x1, y1) = positions[edge.source], positions[edge.target]
        color = CYCLE_RED if edge.in_cycle else EDGE_GREY
        hover = (f"<b>{_esc(edge.source)} → {_esc(edge.target)}</b><br>calls {edge.calls:.0f}"
                 f"<br>errors {edge.errors:.0f} ({fmt_pct(edge.error_rate)})"
                 f"<br>p50 {fmt_ms(edge.p50_ms)} · p95 {fmt_ms(edge.p95_ms)} · p99 {fmt_ms(edge.p99_ms)}"
                 + ("<br><b>part of a dependency cycle</b>" if edge.in_cycle else ""))
        if edge.source == edge.target:
            fig.add_shape(type="circle", x0=x0 - 0.12, x1=x0 + 0.12, y0=y0, y1=y0 + 0.3,
                          line={"color": color, "width": edge_width_px(edge.calls, max_edge_calls)})
            mid_x.append(x0)
            mid_y.append(y0 + 0.3)
        else:
            curve = edge_curve(x0, y0, x1, y1, edge_bend(x0, x1, (edge.target, edge.source) in pairs))
            width = edge_width_px(edge.calls, max_edge_calls)
            fig.add_trace(go.Scatter(x=[p[0] for p in curve], y=[p[1] for p in curve], mode="lines",
                                     line={"color": color, "width": width},
                                     hoverinfo="skip", showlegend=False))
            # The arrowhead sits in the middle of the edge, where no node can hide it.
            (ax, ay), (hx, hy) = curve[len(curve) // 2 - 2], curve[len(curve) // 2 + 2]
            fig.add_annotation(x=hx, y=hy, ax=ax, ay=ay, xref="x", yref="y", axref="x", ayref="y", text="",
                               showarrow=True, arrowhead=2, arrowsize=max(0.8, 2.4 / math.sqrt(width)),
                               arrowwidth=width, arrowcolor=color)
            mid_x.append(curve[len(curve) // 2][0])
            mid_y.append(curve[len(curve) // 2][1])
            extent_y.extend(p[1] for p in curve)
        mid_text.append(hover)
        mid_color.append(color)
    if mid_x:
        fig.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", name="calls",
                                 marker={"size": 10, "color": mid_color, "opacity": 0.35, "symbol": "circle"},
                                 hovertext=mid_text, hoverinfo="text", showlegend=False))
    for kind, symbol in NODE_SYMBOLS.items():
        members = [n for n in graph.nodes if n.kind == kind]
        if not members:
            continue
        node_hover = [(f"<b>{_esc(n.id)}</b> ({kind})<br>calls {n.calls:.0f}<br>errors {n.errors:.0f} "
                  f"({fmt_pct(n.error_rate)})<br>p50 {fmt_ms(n.p50_ms)} · p99 {fmt_ms(n.p99_ms)}")
                 for n in members]
        fig.add_trace(go.Scatter(
            x=[n.x for n in members], y=[n.y for n in members], mode="markers+text", name=f"{kind}",
            text=[n.id for n in members], textposition="bottom center",
            marker={"size": [sizes[n.id] for n in members], "symbol": symbol,
                    "color": [n.error_rate or 0.0 for n in members], "colorscale": ERROR_SCALE,
                    "cmin": 0.0, "cmax": max(0.1, max((n.error_rate or 0.0) for n in graph.nodes)),
                    "line": {"color": "#333", "width": 1.5}, "opacity": 1.0,
                    "colorbar": {"title": {"text": "error rate"}, "tickformat": ".0%", "len": 0.6}
                    if kind == "service" else None,
                    "showscale": kind == "service"},
            customdata=[service_url(n.id) if kind == "service" else "" for n in members],
            hovertext=node_hover, hoverinfo="text"))
    columns = max((n.x for n in graph.nodes), default=0.0)
    low, high = min(extent_y) - 0.6, max(extent_y) + 0.5
    fig.update_xaxes(visible=False, range=[-0.5, columns + 0.5])
    fig.update_yaxes(visible=False, range=[low, high])
    return _base_layout(fig, height=height or int(max(380, 120 + 130 * (high - low))),
                        legend={"orientation": "h", "y": -0.02}, dragmode="pan")


def edge_bend(x0: float, x1: float, has_reverse: bool) -> float:
    """How far an edge bows out, as a share of its length: straight between neighbouring columns,
    bowed when it skips columns or points backwards (so it does not run through other nodes), and
    a little when the opposite edge exists (so the two do not overlap)."""
    span = x1 - x0
    if span == 1:
        return 0.12 if has_reverse else 0.0
    if span > 1:
        return 0.18
    return 0.4 if span < 0 else 0.35


def edge_curve(x0: float, y0: float, x1: float, y1: float, bend: float, samples: int = 21) -> list[tuple[float, float]]:
    """Points of a quadratic Bézier curve from (x0, y0) to (x1, y1) whose control point sits `bend` edge
    lengths to the left of the straight line."""
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    cx = (x0 + x1) / 2 - dy / length * bend * length
    cy = (y0 + y1) / 2 + dx / length * bend * length
    points = []
    for i in range(samples):
        t = i / (samples - 1)
        points.append(((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1,
                       (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1))
    return points


def _esc(value: str) -> str:
    """Plotly hover text is HTML-ish; service names must show as text."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- traces --------------------------------------------------------------------------------------------

def trace_scatter(traces: Sequence[Mapping[str, Any]], trace_url: Callable[[str], str], *,
                  height: int = 320, x_range: XRange = None) -> go.Figure:
    """Each trace a point: start time against duration; errors in red; a click opens the trace."""
    groups: dict[bool, list[tuple[Any, float, str, str]]] = {False: [], True: []}
    for row in traces:
        trace_id = text(row, "trace_id", "traceId")
        moment = to_datetime(first(row, "start", "start_time", "timestamp", "start_ns"))
        duration = num(row, "duration_ms")
        if not trace_id or moment is None or duration is None:
            continue
        failed = (num(row, "error_count", "errors", default=0.0) or 0.0) > 0
        root = f"{text(row, 'root_service', 'service')} {text(row, 'root_operation', 'operation', 'root_name')}"
        label = (f"<b>{_esc(root.strip())}</b><br>{duration:.2f} ms · "
                 f"{text(row, 'span_count', default='?')} spans"
                 + (f" · {num(row, 'error_count', 'errors'):.0f} errors" if failed else "")
                 + f"<br>{trace_id}")
        groups[failed].append((moment, duration, trace_url(trace_id), label))
    if not groups[False] and not groups[True]:
        return empty_figure("No traces match", height)
    fig = go.Figure()
    for failed, points in groups.items():
        if not points:
            continue
        fig.add_trace(go.Scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], mode="markers",
            name="with errors" if failed else "ok",
            marker={"color": ERROR_RED if failed else "#4e79a7", "size": 9, "opacity": 0.8,
                    "line": {"width": 1, "color": "#fff"}},
            customdata=[p[2] for p in points], hovertext=[p[3] for p in points], hoverinfo="text"))
    fig.update_yaxes(title_text="duration (ms)", rangemode="tozero")
    return _time_axis(_base_layout(fig, height=height, legend={"orientation": "h", "y": 1.1}), x_range)


WATERFALL_LABELLED_ROWS_MAX = 150  # per-row labels cost the browser seconds beyond this; hover still tells


def waterfall(trace: Trace, *, span_anchor: Callable[[str], str] = lambda s: f"#span-{s}") -> go.Figure:
    """Spans as horizontal bars nested by parent, coloured by service, labelled with their duration;
    failed spans outlined and labelled in red; the critical path a dark line through the bars it runs through.
    A very large trace keeps the bars and the hover text but drops the per-row labels."""
    if not trace.spans:
        return empty_figure("This trace has no spans", 200)
    t0 = trace.start_ns
    row_of = {s.span_id: i for i, s in enumerate(trace.spans)}
    labelled = len(trace.spans) <= WATERFALL_LABELLED_ROWS_MAX
    # Monospace labels padded to one width read as a left-aligned, indented tree.
    raw_labels = [f"{NBSP * 2 * min(s.depth, 20)}{s.service}: {s.name[:60]}" for s in trace.spans]
    width = max(len(label) for label in raw_labels)
    ticktext = [_esc(label.ljust(width, NBSP)) for label in raw_labels]
    fig = go.Figure()
    services = sorted({s.service for s in trace.spans})
    for service in services:
        members = [s for s in trace.spans if s.service == service]
        fig.add_trace(go.Bar(
            orientation="h", y=[row_of[s.span_id] for s in members],
            x=[max(s.duration_ns / 1e6, (trace.duration_ns / 1e6) * 0.002) for s in members],
            base=[(s.start_ns - t0) / 1e6 for s in members], name=service,
            text=[fmt_ms(s.duration_ns / 1e6) + (" ✕ error" if s.is_error else "") for s in members]
            if labelled else None,
            textposition="outside", cliponaxis=False,
            textfont={"size": 10, "color": [ERROR_RED if s.is_error else "#444" for s in members]},
            marker={"color": service_color(service),
                    "line": {"color": [ERROR_RED if s.is_error else "rgba(0,0,0,0)" for s in members],
                             "width": [3 if s.is_error else 0 for s in members]}},
            customdata=[span_anchor(s.span_id) for s in members],
            hovertext=[(f"<b>{_esc(s.service)}</b> {_esc(s.name)}<br>{fmt_ms(s.duration_ns / 1e6)} at "
                        f"+{fmt_ms((s.start_ns - t0) / 1e6)}" + (f"<br>kind {s.kind}" if s.kind else "")
                        + ("<br><b>error</b> " + _esc(s.status_message) if s.is_error else ""))
                       for s in members],
            hoverinfo="text"))
    if trace.critical_path:
        xs: list[float | None] = []
        ys: list[float | None] = []
        for seg in trace.critical_path:
            row = row_of.get(seg.span_id)
            if row is None:
                continue
            xs += [(seg.start_ns - t0) / 1e6, (seg.end_ns - t0) / 1e6, None]
            ys += [row, row, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="critical path",
                                 line={"color": "#111", "width": 3}, hoverinfo="skip"))
    if labelled:
        fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=list(range(len(trace.spans))),
                         ticktext=ticktext, tickfont={"family": "monospace", "size": 11})
    else:
        fig.update_yaxes(autorange="reversed", showticklabels=False, title_text="spans, in tree order")
    fig.update_xaxes(title_text="ms since trace start", rangemode="tozero", showgrid=True)
    return _base_layout(fig, height=min(2400, 110 + (24 if labelled else 4) * len(trace.spans)), barmode="overlay",
                        bargap=0.3,
                        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                        margin={"l": 10, "r": 20, "t": 40, "b": 40})


# --- metrics -------------------------------------------------------------------------------------------

def metric_series_list(data: Any) -> list[tuple[str, list[tuple[datetime, float]]]]:
    """(label, points) for each series of a metrics query answer."""
    out: list[tuple[str, list[tuple[datetime, float]]]] = []
    items = rows(data, "series", "results", "data")
    if not items and isinstance(data, Mapping) and first(data, "points", "values", "timestamps") is not None:
        items = [dict(data)]
    for index, item in enumerate(items):
        label = _series_label(item, index)
        points: list[tuple[datetime, float]] = []
        raw_points = first(item, "points", "values", "data")
        timestamps = item.get("timestamps")
        if isinstance(timestamps, list) and isinstance(raw_points, list):
            for moment_raw, value in zip(timestamps, raw_points, strict=False):
                moment = to_datetime(moment_raw)
                if moment is not None and _is_number(value):
                    points.append((moment, float(value)))
        elif isinstance(raw_points, list):
            for point in raw_points:
                if isinstance(point, Mapping):
                    moment = to_datetime(first(point, *TIME_KEYS))
                    value = num(point, "value", "v", "y", "avg", "rate")
                elif isinstance(point, list | tuple) and len(point) >= 2:
                    moment, value = to_datetime(point[0]), (float(point[1]) if _is_number(point[1]) else None)
                else:
                    continue
                if moment is not None and value is not None:
                    points.append((moment, value))
        points.sort(key=lambda p: p[0])
        out.append((label, points))
    return out


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _series_label(item: Mapping[str, Any], index: int) -> str:
    name = text(item, "label", "name", "metric", "metric_name")
    parts = [name] if name else []
    for key in ("service", "service_name", "host", "host_name"):
        if item.get(key):
            parts.append(str(item[key]))
    attrs = first(item, "attributes", "labels", "attrs")
    if isinstance(attrs, Mapping) and attrs:
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(attrs.items())))
    return " · ".join(parts) or f"series {index + 1}"


def metric_chart(data: Any, *, title: str, unit: str = "", height: int = 260, x_range: XRange = None) -> go.Figure:
    series = metric_series_list(data)
    if not any(points for _, points in series):
        return empty_figure(f"No data for {title} in this time range", height)
    fig = go.Figure()
    for label, points in series:
        if points:
            fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                     marker={"size": 4}, name=label,
                                     hovertemplate=f"%{{y:.3g}} {unit}<extra>{_esc(label)}</extra>"))
    if unit:
        fig.update_yaxes(title_text=unit)
    fig.update_yaxes(rangemode="tozero")
    return _time_axis(_base_layout(fig, height=height, title=title, hovermode="x unified",
                                   showlegend=len(series) > 1, legend={"orientation": "h", "y": -0.25}), x_range)


def correlated_panels(data: Any, *, service: str, max_panels: int = 8, x_range: XRange = None) -> go.Figure:
    """The service's p99 on top, then the host and middleware series that move most with it, all on
    the answer's common time steps (`GET /api/v1/services/{service}/correlated`)."""
    if not isinstance(data, Mapping):
        return empty_figure("No correlation data", 220)
    times = [to_datetime(t) for t in (data.get("timestamps") or [])]
    latency = data.get("latency") if isinstance(data.get("latency"), Mapping) else {}
    assert isinstance(latency, Mapping)
    panels: list[tuple[str, list[Any], str]] = []
    p99 = latency.get("p99_ms")
    if isinstance(p99, list) and any(_is_number(v) for v in p99):
        panels.append((f"{service} p99 (ms)", p99, ERROR_RED))
    errors = latency.get("error_rate")
    if isinstance(errors, list) and any(_is_number(v) and float(v) > 0 for v in errors):
        panels.append((f"{service} error rate", errors, "#b07aa1"))
    ranked = sorted(rows(data, "series"), key=lambda s: -(num(s, "score", default=0.0) or 0.0))
    for index, item in enumerate(ranked[:max_panels]):
        values = item.get("values")
        if not isinstance(values, list):
            continue
        labels = item.get("labels") if isinstance(item.get("labels"), Mapping) else {}
        assert isinstance(labels, Mapping)
        label_text = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        spearman = num(item, "spearman")
        unit = text(item, "unit")
        title = (f"{text(item, 'source')} {text(item, 'entity')}: {text(item, 'metric')}"
                 + (f" {{{label_text}}}" if label_text else "") + (f" ({text(item, 'agg')}, {unit})" if unit else "")
                 + (f" — ρ = {spearman:+.2f}" if spearman is not None else ""))
        panels.append((title, values, PALETTE[index % len(PALETTE)]))
    if not times or not panels:
        return empty_figure("No host, database or broker metrics to correlate with this service in this range", 220)
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=min(0.05, 0.3 / len(panels)),
                        subplot_titles=[_esc(title) for title, _, _ in panels])
    for index, (title, values, color) in enumerate(panels, start=1):
        ys = [float(v) if _is_number(v) else None for v in values[:len(times)]]
        fig.add_trace(go.Scatter(x=times[:len(ys)], y=ys, mode="lines+markers", name=title, line={"color": color},
                                 marker={"size": 4},
                                 connectgaps=False, hovertemplate="%{y:.3g}<extra></extra>"), row=index, col=1)
    fig.update_annotations(font={"size": 12}, x=0.0, xanchor="left")
    return _time_axis(_base_layout(fig, height=80 + 120 * len(panels), showlegend=False, hovermode="x unified"),
                      x_range)


def sparkline_points(latency: Any, key: str = "p99_ms") -> list[tuple[datetime, float]]:
    out = []
    for point in latency_series(latency):
        value = num(point, key, "p95_ms", "p50_ms")
        if value is not None:
            out.append((point["t"], value))
    return out
