"""The dependency graph of a time window: edges from the rollup (plus the raw tail the rollup job
has not reached) or, for small windows, exactly from raw spans; nodes; cycles."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client
from tracehouse.query.analysis.graph import (
    CycleSearch,
    SpanRef,
    adjacency_from_edges,
    elementary_cycles,
    strongly_connected_components,
    trace_reentries,
)
from tracehouse.query.analysis.percentiles import error_rate, ms
from tracehouse.query.rollup import MAX_NS, NS_PER_MS, PairQuery, watermark_ms
from tracehouse.query.rows import fetch, seconds_params
from tracehouse.query.settings import QuerySettings
from tracehouse.query.sqlfiles import sql
from tracehouse.query.timerange import TimeWindow

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class EdgeStats:
    source: str
    source_kind: str
    target: str
    target_kind: str
    calls: int
    errors: int
    total_ns: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    example_trace_ids: tuple[str, ...]

    @property
    def error_rate(self) -> float:
        return error_rate(self.errors, self.calls)


@dataclass
class EdgeSet:
    edges: list[EdgeStats]
    incoming: dict[str, EdgeStats]  # per target: everything that calls it
    source: str  # "raw" or "rollup"
    watermark_ms: int | None = None


def _stats(row: dict[str, Any]) -> EdgeStats:
    quantiles = list(row["quantiles"]) + [None, None, None]
    return EdgeStats(
        source=row["source"], source_kind=row["source_kind"], target=row["target"],
        target_kind=row["target_kind"], calls=int(row["calls"]), errors=int(row["errors"]),
        total_ns=int(row["total_ns"]), p50_ms=ms(quantiles[0]), p95_ms=ms(quantiles[1]),
        p99_ms=ms(quantiles[2]), example_trace_ids=tuple(sorted(row["example_trace_ids"])),
    )


def pair_query(client: Client, settings: QuerySettings, window: TimeWindow) -> tuple[PairQuery, str, int | None]:
    """Which span pairs to read raw: all of the window when it is small, else the tail past the
    rollup job's watermark."""
    gap_ns = settings.max_pair_gap_s * NS_PER_S
    if window.seconds <= settings.exact_window_s:
        return PairQuery(window.start_ns, window.end_ns, window.start_ns - gap_ns, window.end_ns + gap_ns,
                         0, MAX_NS), "raw", None
    mark_ms = watermark_ms(client)
    if mark_ms is None:
        return PairQuery(window.start_ns, window.end_ns, window.start_ns - gap_ns, window.end_ns + gap_ns,
                         0, MAX_NS), "rollup", None
    mark_ns = mark_ms * NS_PER_MS
    return PairQuery(max(window.start_ns, mark_ns - gap_ns), window.end_ns, mark_ns - gap_ns,
                     window.end_ns + gap_ns, mark_ns, MAX_NS), "rollup", mark_ms


def load_edges(client: Client, settings: QuerySettings, window: TimeWindow) -> EdgeSet:
    pairs, mode, mark_ms = pair_query(client, settings, window)
    parameters: dict[str, Any] = dict(pairs.parameters())
    if mode == "raw":
        parameters.update(start_ns=window.start_ns, end_ns=window.end_ns)
        rows = fetch(client, sql("edges_raw"), parameters)
    else:
        parameters.update(seconds_params(window.start_ns, window.end_ns))
        rows = fetch(client, sql("edges_rollup"), parameters)
    edges: list[EdgeStats] = []
    incoming: dict[str, EdgeStats] = {}
    for row in rows:
        stats = _stats(row)
        if stats.source_kind == "":
            incoming[stats.target] = stats
        else:
            edges.append(stats)
    edges.sort(key=lambda e: (e.source, e.target))
    return EdgeSet(edges, incoming, mode, mark_ms)


@dataclass(frozen=True)
class ServiceStats:
    name: str
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    operations: int
    instances: tuple[str, ...]
    versions: tuple[str, ...]


def load_services(client: Client, window: TimeWindow) -> list[ServiceStats]:
    rows = fetch(client, sql("services"), seconds_params(window.start_ns, window.end_ns))
    out = []
    for row in rows:
        entry = int(row["entry_calls"]) > 0
        calls = int(row["entry_calls"] if entry else row["span_calls"])
        errors = int(row["entry_errors"] if entry else row["span_errors"])
        quantiles = list(row["entry_quantiles"] if entry else row["span_quantiles"]) + [None, None, None]
        out.append(ServiceStats(row["service"], calls, errors, ms(quantiles[0]), ms(quantiles[1]),
                                ms(quantiles[2]), int(row["operations"]), tuple(sorted(row["instances"])),
                                tuple(sorted(row["versions"]))))
    return out


@dataclass
class Graph:
    nodes: list[dict[str, Any]]
    edges: list[EdgeStats]
    source: str


def build_graph(services: list[ServiceStats], edge_set: EdgeSet) -> Graph:
    """Nodes: every service with spans in the window, and every edge end; services carry their
    entry-span numbers, backends what their callers saw."""
    kinds: dict[str, str] = {s.name: "service" for s in services}
    for edge in edge_set.edges:
        kinds.setdefault(edge.source, edge.source_kind)
        kinds.setdefault(edge.target, edge.target_kind)
    by_name = {s.name: s for s in services}
    nodes = []
    for name in sorted(kinds):
        kind = kinds[name] if kinds[name] in ("service", "database", "messaging", "external") else "external"
        service = by_name.get(name)
        if service is not None:
            nodes.append({"id": name, "kind": kind, "calls": service.calls, "errors": service.errors,
                          "p50_ms": service.p50_ms, "p99_ms": service.p99_ms})
            continue
        incoming = edge_set.incoming.get(name)
        nodes.append({"id": name, "kind": kind, "calls": incoming.calls if incoming else 0,
                      "errors": incoming.errors if incoming else 0,
                      "p50_ms": incoming.p50_ms if incoming else None,
                      "p99_ms": incoming.p99_ms if incoming else None})
    return Graph(nodes, edge_set.edges, edge_set.source)


def service_edges(edges: list[EdgeStats]) -> list[EdgeStats]:
    """Edges between two services: the graph that can have cycles."""
    return [e for e in edges if e.source_kind == "service" and e.target_kind == "service" and e.source != e.target]


@dataclass
class Cycles:
    search: CycleSearch
    components: list[list[str]]
    cycles: list[dict[str, Any]] = field(default_factory=list)


def find_cycles(edges: list[EdgeStats], max_cycles: int) -> Cycles:
    between = service_edges(edges)
    adjacency = adjacency_from_edges((e.source, e.target) for e in between)
    search = elementary_cycles(adjacency, max_cycles=max_cycles, include_self_loops=False)
    components = [c for c in strongly_connected_components(adjacency) if len(c) > 1]
    components.sort()
    by_pair = {(e.source, e.target): e for e in between}
    cycles = []
    for cycle in search.cycles:
        hops = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
        cycles.append({
            "services": list(cycle),
            "edges": [{"source": s, "target": t, "calls": by_pair[(s, t)].calls,
                       "example_trace_ids": list(by_pair[(s, t)].example_trace_ids)} for s, t in hops],
        })
    return Cycles(search, components, cycles)


@dataclass
class TraceCycles:
    paths: list[dict[str, Any]]
    traces_checked: int
    truncated: bool


def find_trace_cycles(client: Client, settings: QuerySettings, window: TimeWindow, *,
                      max_examples: int = 5) -> TraceCycles:
    """Traces in the window whose call path re-enters a service, grouped by service path."""
    pairs, mode, _ = pair_query(client, settings, window)
    parameters: dict[str, Any] = dict(pairs.parameters())
    if mode == "raw":
        parameters.update(links_start_s=0, links_end_s=0)
    else:
        bounds = seconds_params(window.start_ns, window.end_ns)
        parameters.update(links_start_s=bounds["start_s"], links_end_s=bounds["end_s"])
    limit = settings.cycle_trace_limit
    parameters["limit"] = limit + 1
    candidates = [row["trace_id"] for row in fetch(client, sql("cycle_candidates"), parameters)]
    truncated = len(candidates) > limit
    candidates = candidates[:limit]
    if not candidates:
        return TraceCycles([], 0, False)
    gap_ns = settings.max_pair_gap_s * NS_PER_S
    spans: dict[str, list[SpanRef]] = defaultdict(list)
    for row in fetch(client, sql("trace_spans_brief"), {
        "trace_ids": candidates, "scan_from_ns": max(window.start_ns - gap_ns, 0),
        "scan_to_ns": min(window.end_ns + gap_ns, MAX_NS),
    }):
        spans[row["trace_id"]].append(SpanRef(row["span_id"], row["parent_span_id"], row["service"]))
    traces_by_path: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for trace_id in sorted(spans):
        for path in trace_reentries(spans[trace_id]):
            traces_by_path[path].append(trace_id)
    paths = [{"path": list(path), "traces": len(ids), "example_trace_ids": ids[:max_examples]}
             for path, ids in sorted(traces_by_path.items(), key=lambda item: (-len(item[1]), item[0]))]
    return TraceCycles(paths, len(candidates), truncated)
