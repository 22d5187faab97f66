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
    complete_until_ms: int | None = None  # None: complete through the window's end


def _stats(row: dict[str, Any]) -> EdgeStats:
    quantiles = list(row["quantiles"]) + [None, None, None]
    return EdgeStats(
        source=row["source"], source_kind=row["source_kind"], target=row["target"],
        target_kind=row["target_kind"], calls=int(row["calls"]), errors=int(row["errors"]),
        total_ns=int(row["total_ns"]), p50_ms=ms(quantiles[0]), p95_ms=ms(quantiles[1]),
        p99_ms=ms(quantiles[2]), example_trace_ids=tuple(sorted(row["example_trace_ids"])),
    )


NO_PAIRS = PairQuery(0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class PairPlan:
    """Which span pairs a request joins from raw spans, and how far the answer is complete."""

    pairs: PairQuery
    mode: str  # "raw": the whole window from raw spans; "rollup": rollup plus (maybe) the raw tail
    complete_until_ms: int | None  # None: complete through the window's end
    recent_run_id: int | None = None  # read the tail from this snapshot instead of raw spans


def plan_pairs(client: Client, settings: QuerySettings, window: TimeWindow) -> PairPlan:
    """Small windows are joined exactly from raw spans. Longer ones read the rollup, plus the pairs
    past the rollup job's watermark: joined from raw spans when there are few enough spans there,
    else from the job's newest snapshot of them (complete up to when it was taken, at most one
    interval ago), else nothing (complete up to the watermark, at most lateness + interval ago)."""
    gap_ns = settings.max_pair_gap_s * NS_PER_S
    everything = PairQuery(window.start_ns, window.end_ns, window.start_ns - gap_ns, window.end_ns + gap_ns,
                           0, MAX_NS)
    if window.seconds <= settings.exact_window_s:
        return PairPlan(everything, "raw", None)
    mark_ms = watermark_ms(client)
    mark_ns = mark_ms * NS_PER_MS if mark_ms is not None else window.start_ns
    if mark_ns >= window.end_ns + gap_ns:
        return PairPlan(NO_PAIRS, "rollup", None)
    tail = (PairQuery(max(window.start_ns, mark_ns - gap_ns), window.end_ns, mark_ns - gap_ns,
                      window.end_ns + gap_ns, mark_ns, MAX_NS) if mark_ms is not None else everything)
    since_s = max(tail.child_from_ns, 0) // NS_PER_S
    rows = fetch(client, sql("spans_since"), {"since_s": since_s - since_s % 60,
                                               "end_s": -(-window.end_ns // NS_PER_S)})
    if int(rows[0]["spans"] or 0) <= settings.raw_tail_max_spans:
        return PairPlan(tail, "rollup", None)
    if mark_ms is not None:
        run = fetch(client, sql("recent_run"))[0]
        if int(run["rows"]) and int(run["watermark_ms"]) == mark_ms:
            return PairPlan(NO_PAIRS, "rollup", int(run["run_id"]) // NS_PER_MS, int(run["run_id"]))
    return PairPlan(NO_PAIRS, "rollup", mark_ms if mark_ms is not None else window.start_ns // NS_PER_MS)


EXAMPLES = "groupUniqArrayMerge(5)(ExampleTraceIds)"
NO_EXAMPLES = "[] :: Array(String)"


def load_edges(client: Client, settings: QuerySettings, window: TimeWindow, *, examples: bool = True,
               backends: bool = True) -> EdgeSet:
    """The window's edges; with `examples`, up to five trace ids each; with `backends`, what every
    database, broker and external node received (else `incoming` is empty: see `backend_totals`)."""
    plan = plan_pairs(client, settings, window)
    parameters: dict[str, Any] = dict(plan.pairs.parameters())
    if plan.mode == "raw":
        parameters.update(start_ns=window.start_ns, end_ns=window.end_ns)
        rows = fetch(client, sql("edges_raw"), parameters)
    else:
        parameters.update(seconds_params(window.start_ns, window.end_ns))
        if plan.recent_run_id is not None:
            statement = sql("edges_rollup_recent")
            parameters["run_id"] = plan.recent_run_id
        else:
            statement = sql("edges_rollup_only" if plan.pairs == NO_PAIRS else "edges_rollup")
        rows = fetch(client, statement.replace("/*EXAMPLES*/", EXAMPLES if examples else NO_EXAMPLES), parameters)
    edges = sorted((_stats(row) for row in rows), key=lambda e: (e.source, e.target))
    incoming = backend_nodes(client, edges, window) if backends else {}
    return EdgeSet(edges, incoming, plan.mode, plan.complete_until_ms)


def backend_totals(client: Client, window: TimeWindow) -> dict[str, EdgeStats]:
    """What every database, broker and external node received over the window, from the rollup
    (one query, independent of the edge query, so the two can run at once)."""
    rows = fetch(client, sql("backend_nodes"), seconds_params(window.start_ns, window.end_ns))
    out = {}
    for row in rows:
        q = list(row["quantiles"]) + [None] * 3
        out[row["target"]] = EdgeStats("", "", row["target"], row["target_kind"], int(row["calls"]),
                                       int(row["errors"]), int(row["total_ns"]), ms(q[0]), ms(q[1]), ms(q[2]), ())
    return out


def backend_nodes(client: Client, edges: list[EdgeStats], window: TimeWindow,
                  totals: dict[str, EdgeStats] | None = None) -> dict[str, EdgeStats]:
    """Per database, broker or external node, what all its callers saw: the edge itself when it
    has one caller, else the totals (from `backend_totals`, read here when not given); a node
    missing from the totals (an external peer only in the raw tail) adds up its edges."""
    callers: dict[str, list[EdgeStats]] = defaultdict(list)
    for edge in edges:
        if edge.target_kind != "service":
            callers[edge.target].append(edge)
    incoming = {target: into[0] for target, into in callers.items() if len(into) == 1}
    shared = sorted(target for target, into in callers.items() if len(into) > 1)
    if shared and totals is None:
        totals = backend_totals(client, window)
    for target in shared:
        into = callers[target]
        known = (totals or {}).get(target)
        incoming[target] = EdgeStats("", "", target, into[0].target_kind, sum(e.calls for e in into),
                                     sum(e.errors for e in into), sum(e.total_ns for e in into),
                                     known.p50_ms if known else None, known.p95_ms if known else None,
                                     known.p99_ms if known else None, ())
    return incoming


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


def load_services(client: Client, window: TimeWindow, *, details: bool = True) -> list[ServiceStats]:
    """Every service with spans in the window; numbers of its entry spans, or of all its spans
    when it has no entry spans (a batch job that only calls out). Without `details`, no
    operation count, instances or versions (what a graph node needs, read faster)."""
    bounds = seconds_params(window.start_ns, window.end_ns)
    rows = fetch(client, sql("services" if details else "service_nodes"), bounds)
    without_entry = [row["service"] for row in rows if int(row["entry_calls"]) == 0]
    span_quantiles = {}
    if without_entry:
        span_quantiles = {r["service"]: r["quantiles"] for r in
                          fetch(client, sql("service_span_quantiles"), {**bounds, "services": without_entry})}
    out = []
    for row in rows:
        entry = int(row["entry_calls"]) > 0
        calls = int(row["entry_calls"] if entry else row["span_calls"])
        errors = int(row["entry_errors"] if entry else row["span_errors"])
        quantiles = list(row["entry_quantiles"] if entry else span_quantiles.get(row["service"], [])) + [None] * 3
        out.append(ServiceStats(row["service"], calls, errors, ms(quantiles[0]), ms(quantiles[1]),
                                ms(quantiles[2]), int(row["operations"]), tuple(sorted(row["instances"])),
                                tuple(sorted(row["versions"]))))
    return out


@dataclass
class Graph:
    nodes: list[dict[str, Any]]
    edges: list[EdgeStats]
    source: str
    complete_until_ms: int | None


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
    return Graph(nodes, edge_set.edges, edge_set.source, edge_set.complete_until_ms)


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


def edges_on_cycles(edges: list[EdgeStats]) -> list[tuple[str, str]]:
    """Service-to-service edges inside a strongly connected component: the only hops a trace's
    re-entry into a service can take."""
    between = service_edges(edges)
    component_of: dict[str, int] = {}
    adjacency = adjacency_from_edges((e.source, e.target) for e in between)
    for number, component in enumerate(strongly_connected_components(adjacency)):
        for node in component:
            component_of[node] = number
    return sorted((e.source, e.target) for e in between if component_of[e.source] == component_of[e.target])


def find_trace_cycles(client: Client, settings: QuerySettings, window: TimeWindow, cycle_edges: list[tuple[str, str]],
                      *, max_examples: int = 5) -> TraceCycles:
    """Traces in the window whose call path re-enters a service, grouped by service path.
    `cycle_edges` (from `edges_on_cycles`) limits the traces examined."""
    if not cycle_edges:
        return TraceCycles([], 0, False)
    plan = plan_pairs(client, settings, window)
    parameters: dict[str, Any] = dict(plan.pairs.parameters())
    if plan.mode == "raw":
        parameters.update(links_start_s=0, links_end_s=0)
    else:
        bounds = seconds_params(window.start_ns, window.end_ns)
        parameters.update(links_start_s=bounds["start_s"], links_end_s=bounds["end_s"])
    limit = settings.cycle_trace_limit
    parameters["limit"] = limit + 1
    parameters["cycle_edges"] = cycle_edges
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
