"""Benchmark results as files: `results.json` (plain figure names such as `stored_spans_per_s`),
`results.md` (Markdown tables) and `results.html` (a plotly chart of throughput and latency), plus
`results.png` when kaleido can render images.

The results are one plain dict: {"meta": {...}, "ingest": {...}, "query": {...}, "agent": {...},
"compare": {...}}; every section is optional. The functions that turn it into text and figures are
pure; `write_results` is the only one that touches the disk.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INGEST_TARGETS = {"stored_spans_per_s": 50_000, "bytes_per_span_on_disk": 60}
AGENT_LABELS = {"uninstrumented": "uninstrumented", "bare-sdk": "bare OTel SDK + BSP", "agent": "tracehouse agent"}


@dataclass(frozen=True)
class WrittenFiles:
    json: Path
    markdown: Path
    html: Path | None
    png: Path | None
    png_error: str | None = None


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    right = right if right is not None else set(range(1, len(header)))
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if i in right else "---" for i in range(len(header))) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def ingest_markdown(ingest: dict[str, Any]) -> list[str]:
    lines = [f"### Ingest: {ingest.get('clients', '?')} OTLP/HTTP protobuf clients, "
             f"{ingest.get('spans_per_request', '?')} spans per request", ""]
    rows = []
    for key, value in ingest.items():
        target = INGEST_TARGETS.get(key)
        verdict = ""
        if target is not None and isinstance(value, (int, float)):
            ok = value >= target if key == "stored_spans_per_s" else value <= target
            verdict = f"{'≥' if key == 'stored_spans_per_s' else '≤'} {target:,}: {'ok' if ok else 'missed'}"
        rows.append([key, _fmt(value), verdict])
    return lines + _table(["figure", "value", "target"], rows, right={1})


def query_markdown(query: dict[str, Any]) -> list[str]:
    lines = [f"### Query API: {query.get('spans', 0):,} spans over one hour, median of {query.get('runs', '?')} runs",
             ""]
    rows = []
    for endpoint in query.get("endpoints", []):
        target = endpoint.get("target_ms")
        verdict = "" if target is None else ("ok" if endpoint["median_ms"] <= target else "over")
        if endpoint.get("status", 200) != 200:
            verdict = f"HTTP {endpoint['status']}"
        rows.append([endpoint["name"], _fmt(endpoint["median_ms"]), _fmt(endpoint["p90_ms"]),
                     _fmt(target, 0), verdict])
    if "load_spans_per_s" in query:
        lines += [f"Loaded at {query['load_spans_per_s']:,.0f} spans/s (materialized views included).", ""]
    return lines + _table(["endpoint", "median ms", "p90 ms", "target ms", ""], rows, right={1, 2, 3})


def agent_markdown(agent: dict[str, Any]) -> list[str]:
    modes: dict[str, dict[str, float]] = agent.get("modes", {})
    lines = [f"### Agent overhead: Flask endpoint with one {agent.get('db', 'sqlite')} query, "
             f"{agent.get('rounds', '?')} rounds x {agent.get('requests', '?')} requests", ""]
    rows = []
    for mode, row in modes.items():
        rows.append([AGENT_LABELS.get(mode, mode), _fmt(row.get("p50_us")), _fmt(row.get("p99_us")),
                     _fmt(row.get("added_p50_us")), _fmt(row.get("added_p50_pct")),
                     _fmt(row.get("cpu_us_per_request")), _fmt(row.get("cpu_us_per_span"))])
    return lines + _table(["mode", "p50 µs", "p99 µs", "added p50 µs", "added p50 %", "CPU µs/request",
                           "CPU µs/span"], rows)


def compare_markdown(compare: dict[str, Any]) -> list[str]:
    lines = [f"### Side by side: the same OTLP/HTTP load ({compare.get('sent_spans', 0):,} spans, "
             f"{compare.get('clients', '?')} clients) against each system, spans counted where they are stored", ""]
    rows = []
    for system in compare.get("systems", []):
        rows.append([system["name"], _fmt(system.get("stored_spans_per_s")), _fmt(system.get("acknowledged_spans_per_s")),
                     _fmt(system.get("stored_spans")), _fmt(system.get("stored_after_s")),
                     _fmt(system.get("export_latency_p50_ms")), system.get("counted_by", "")])
    lines += _table(["system", "stored spans/s", "acknowledged spans/s", "stored spans", "all stored after s",
                     "export p50 ms", "counted by"], rows, right={1, 2, 3, 4, 5})
    if compare.get("note"):
        lines += ["", compare["note"]]
    return lines


def to_markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = ["# TraceHouse benchmarks", ""]
    if meta:
        lines += [", ".join(f"{k}: {_fmt(v)}" for k, v in meta.items()), ""]
    for key, render in (("ingest", ingest_markdown), ("query", query_markdown), ("agent", agent_markdown),
                        ("compare", compare_markdown)):
        section = results.get(key)
        if section:
            lines += render(section) + [""]
        if isinstance(section, dict) and section.get("error"):
            lines += [f"{key} failed: {section['error']}", ""]
    return "\n".join(lines)


def figure(results: dict[str, Any]) -> Any:
    """A plotly figure: one panel each for ingest throughput, query latency, agent latency, side by side."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels: list[tuple[str, list[Any], str]] = []
    ingest = results.get("ingest") or {}
    if ingest.get("stored_spans_per_s") is not None:
        panels.append(("Ingest: spans stored per second (target 50,000 on 2 cores)", [
            go.Bar(x=["tracehouse up"], y=[ingest["stored_spans_per_s"]], name="stored spans/s",
                   text=[f"{ingest['stored_spans_per_s']:,.0f}"], textposition="auto"),
            go.Scatter(x=["tracehouse up"], y=[INGEST_TARGETS["stored_spans_per_s"]], mode="markers",
                       marker={"symbol": "line-ew-open", "size": 40}, name="target spans/s")], "spans/s"))
        if ingest.get("export_latency_p50_ms") is not None:
            panels.append(("Ingest: export latency seen by clients", [
                go.Bar(x=["p50", "p99"], y=[ingest["export_latency_p50_ms"], ingest.get("export_latency_p99_ms")],
                       name="export latency ms")], "ms"))
    query = results.get("query") or {}
    if query.get("endpoints"):
        names = [e["name"] for e in query["endpoints"]]
        traces = [go.Bar(x=names, y=[e["median_ms"] for e in query["endpoints"]], name="median ms"),
                  go.Bar(x=names, y=[e["p90_ms"] for e in query["endpoints"]], name="p90 ms")]
        targets = [(e["name"], e["target_ms"]) for e in query["endpoints"] if e.get("target_ms") is not None]
        if targets:
            traces.append(go.Scatter(x=[n for n, _ in targets], y=[t for _, t in targets], mode="markers",
                                     marker={"symbol": "line-ew-open", "size": 18}, name="target ms"))
        panels.append(("Query API latency", traces, "ms"))
    agent = results.get("agent") or {}
    if agent.get("modes"):
        modes = list(agent["modes"])
        labels = [AGENT_LABELS.get(m, m) for m in modes]
        panels.append(("Agent: request latency", [
            go.Bar(x=labels, y=[agent["modes"][m]["p50_us"] for m in modes], name="p50 µs"),
            go.Bar(x=labels, y=[agent["modes"][m]["p99_us"] for m in modes], name="p99 µs")], "µs"))
    compare = results.get("compare") or {}
    if compare.get("systems"):
        systems = compare["systems"]
        names = [s["name"] for s in systems]
        panels.append(("Side by side: spans per second, stored vs acknowledged", [
            go.Bar(x=names, y=[s.get("stored_spans_per_s") or 0 for s in systems],
                   name="stored spans/s (side by side)",
                   text=[f"{(s.get('stored_spans_per_s') or 0):,.0f}" for s in systems], textposition="auto"),
            go.Bar(x=names, y=[s.get("acknowledged_spans_per_s") or 0 for s in systems],
                   name="acknowledged spans/s (side by side)")], "spans/s"))
        if any(s.get("stored_timeline") for s in systems):
            panels.append(("Side by side: spans stored since the first request", [
                go.Scatter(x=[t for t, _ in s["stored_timeline"]], y=[n for _, n in s["stored_timeline"]],
                           mode="lines", line={"shape": "hv"}, name=f"{s['name']} stored")
                for s in systems if s.get("stored_timeline")], "spans"))
    if not panels:
        return go.Figure(layout={"title": "TraceHouse benchmarks (no results)"})
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[title for title, _, _ in panels],
                        vertical_spacing=0.12 if len(panels) > 1 else 0.2)
    for row, (_, traces, unit) in enumerate(panels, start=1):
        for trace in traces:
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title_text=unit, row=row, col=1)
    fig.update_layout(title="TraceHouse benchmarks", height=360 * len(panels), barmode="group",
                      template="plotly_white")
    return fig


def png_available() -> bool:
    return importlib.util.find_spec("kaleido") is not None


def write_results(results: dict[str, Any], out_dir: Path, *, png: bool = True) -> WrittenFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown_path = out_dir / "results.md"
    markdown_path.write_text(to_markdown(results) + "\n")
    fig = figure(results)
    html_path = out_dir / "results.html"
    fig.write_html(str(html_path), include_plotlyjs=True, full_html=True)
    png_path: Path | None = None
    png_error: str | None = None
    if png and png_available():
        for noisy in ("choreographer", "kaleido", "logistro"):  # they log every browser step at INFO
            logging.getLogger(noisy).setLevel(logging.WARNING)
        try:
            fig.write_image(str(out_dir / "results.png"), width=1000, height=360 * max(1, len(fig.layout.annotations)))
            png_path = out_dir / "results.png"
        except Exception as exc:  # noqa: BLE001 - kaleido needs a browser; no PNG is not a failed benchmark
            png_error = f"{type(exc).__name__}: {exc}"
    elif png:
        png_error = "kaleido is not installed (pip install kaleido) - no PNG"
    return WrittenFiles(json_path, markdown_path, html_path, png_path, png_error)
