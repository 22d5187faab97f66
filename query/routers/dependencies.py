"""`/dependencies` (service graph, JSON or Graphviz DOT) and `/dependencies/cycles`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from tracehouse.query.analysis.graph import to_dot
from tracehouse.query.deps import Parallel, Settings, Window
from tracehouse.query.graphs import (
    build_graph,
    edges_on_cycles,
    find_cycles,
    find_trace_cycles,
    load_edges,
    load_services,
)
from tracehouse.query.models import CycleReport, Dependencies, GraphEdge, GraphNode, ServiceCycle, TraceCycle
from tracehouse.query.routers.common import rfc3339_ns, window_fields
from tracehouse.query.store import Store

router = APIRouter(tags=["dependencies"])


class GraphFormat(StrEnum):
    json = "json"
    dot = "dot"


@router.get(
    "/dependencies", response_model=Dependencies, summary="Service dependency graph",
    responses={200: {"content": {"text/vnd.graphviz": {"schema": {"type": "string"}}},
                     "description": "the graph as JSON, or as Graphviz DOT with format=dot"}},
)
def dependencies(client: Store, settings: Settings, window: Window, parallel: Parallel,
                 format: Annotated[GraphFormat, Query(description="json or dot")] = GraphFormat.json) -> Any:
    services = parallel.submit(lambda other: load_services(other, window))
    edge_set = load_edges(client, settings, window)
    graph = build_graph(services.result(), edge_set)
    edges = [GraphEdge(source=e.source, target=e.target, calls=e.calls, errors=e.errors, error_rate=e.error_rate,
                       p50_ms=e.p50_ms, p95_ms=e.p95_ms, p99_ms=e.p99_ms) for e in graph.edges]
    nodes = [GraphNode(**node) for node in graph.nodes]
    if format is GraphFormat.dot:
        return PlainTextResponse(to_dot([n.model_dump() for n in nodes], [e.model_dump() for e in edges]),
                                 media_type="text/vnd.graphviz")
    cycles = find_cycles(graph.edges, settings.max_cycles)
    return Dependencies(**window_fields(window), nodes=nodes, edges=edges,
                        cycles=[ServiceCycle(**c) for c in cycles.cycles], source=graph.source,
                        complete_until=None if graph.complete_until_ms is None
                        else rfc3339_ns(graph.complete_until_ms * 1_000_000))


@router.get("/dependencies/cycles", response_model=CycleReport,
            summary="Elementary cycles of the service graph, and traces that re-enter a service")
def cycles(client: Store, settings: Settings, window: Window) -> CycleReport:
    edge_set = load_edges(client, settings, window)
    found = find_cycles(edge_set.edges, settings.max_cycles)
    per_trace = find_trace_cycles(client, settings, window, edges_on_cycles(edge_set.edges))
    return CycleReport(
        **window_fields(window),
        cycles=[ServiceCycle(**c) for c in found.cycles],
        cycles_truncated=found.search.truncated,
        strongly_connected_components=found.components,
        trace_cycles=[TraceCycle(**p) for p in per_trace.paths],
        traces_checked=per_trace.traces_checked,
        trace_check_truncated=per_trace.truncated,
    )
