"""`/dependencies` (service graph, JSON or Graphviz DOT) and `/dependencies/cycles`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from tracehouse.query.analysis.graph import to_dot
from tracehouse.query.deps import Parallel, Settings, Window
from tracehouse.query.graphs import (
    backend_nodes,
    backend_totals,
    build_graph,
    edges_on_cycles,
    find_cycles,
    find_trace_cycles,
    load_edges,
    load_services,
)
from tracehouse.query.models import CycleReport, Dependencies, ServiceCycle, TraceCycle
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
    services = parallel.submit(lambda other: load_services(other, window, details=False))
    totals = parallel.submit(lambda other: backend_totals(other, window))
    edge_set = load_edges(client, settings, window, examples=False, backends=False)
    edge_set.incoming = backend_nodes(client, edge_set.edges, window, totals.result())
    graph = build_graph(services.result(), edge_set)
    edges = [{"source": e.source, "target": e.target, "calls": e.calls, "errors": e.errors,
              "error_rate": e.error_rate, "p50_ms": e.p50_ms, "p95_ms": e.p95_ms, "p99_ms": e.p99_ms}
             for e in graph.edges]
    if format is GraphFormat.dot:
        return PlainTextResponse(to_dot(graph.nodes, edges), media_type="text/vnd.graphviz")
    cycles = find_cycles(graph.edges, settings.max_cycles)
    # A dense graph has many cycles: plain dicts through orjson, the shape checked by the
    # response model's schema (and by the schemathesis test), not validated object by object.
    return Response(orjson.dumps({
        **window_fields(window), "nodes": graph.nodes, "edges": edges, "cycles": cycles.cycles,
        "cycles_truncated": cycles.search.truncated, "source": graph.source,
        "complete_until": None if graph.complete_until_ms is None else rfc3339_ns(graph.complete_until_ms * 1_000_000),
    }), media_type="application/json")


@router.get("/dependencies/cycles", response_model=CycleReport,
            summary="Elementary cycles of the service graph, and traces that re-enter a service")
def cycles(client: Store, settings: Settings, window: Window) -> CycleReport:
    edge_set = load_edges(client, settings, window, backends=False)
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
