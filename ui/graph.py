"""The service map's model: nodes, edges, cycles from `GET /api/v1/dependencies`, and a layered layout.

Layout: callers to the left of what they call. Each node's column is its longest call-path
distance from an entry point, ignoring edges that close a cycle, so the map reads left to right
like a request; databases and brokers go in the last column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tracehouse.ui.data import error_rate, first, num, rows, str_list, text

NODE_KINDS = ("service", "database", "messaging", "external")


@dataclass
class Node:
    id: str
    kind: str
    calls: float
    errors: float
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    x: float = 0.0
    y: float = 0.0


@dataclass
class Edge:
    source: str
    target: str
    calls: float
    errors: float
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    in_cycle: bool = False


@dataclass
class Cycle:
    services: list[str]  # in call order; the last calls the first
    edge_calls: list[float | None] = field(default_factory=list)
    example_trace_ids: list[str] = field(default_factory=list)

    @property
    def edges(self) -> list[tuple[str, str]]:
        n = len(self.services)
        return [(self.services[i], self.services[(i + 1) % n]) for i in range(n)] if n else []

    def describe(self) -> str:
        return " → ".join([*self.services, self.services[0]]) if self.services else ""


@dataclass
class ServiceGraph:
    nodes: list[Node]
    edges: list[Edge]
    cycles: list[Cycle]

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)


def _parse_cycle(item: Any) -> Cycle | None:
    if isinstance(item, list):
        services = str_list(item)
        if len(services) > 1 and services[0] == services[-1]:
            services = services[:-1]
        return Cycle(services) if services else None
    if not isinstance(item, Mapping):
        return None
    services = str_list(first(item, "services", "path", "nodes", "cycle"))
    if not services:
        return None
    edge_calls: list[float | None] = []
    examples: list[str] = []
    for edge in rows(first(item, "edges", default=[])):
        edge_calls.append(num(edge, "calls"))
        examples.extend(str_list(first(edge, "example_trace_ids", "trace_ids", "examples")))
    examples.extend(str_list(first(item, "example_trace_ids", "trace_ids")))
    # A path may repeat its first service at the end (A, B, A); keep each service once.
    if len(services) > 1 and services[0] == services[-1]:
        services = services[:-1]
    return Cycle(services, edge_calls, list(dict.fromkeys(examples)))


def parse_cycles(data: Any) -> list[Cycle]:
    items: Any = data
    if isinstance(data, Mapping):
        items = first(data, "cycles", "service_cycles", "graph_cycles", default=[])
    if not isinstance(items, list):
        return []
    return [c for c in (_parse_cycle(i) for i in items) if c is not None]


def parse_graph(data: Any) -> ServiceGraph:
    nodes: dict[str, Node] = {}
    for row in rows(data, "nodes"):
        node_id = text(row, "id", "name", "service")
        if not node_id:
            continue
        kind = text(row, "kind", "type", default="service").lower()
        nodes[node_id] = Node(node_id, kind if kind in NODE_KINDS else "external",
                              num(row, "calls", default=0.0) or 0.0, num(row, "errors", default=0.0) or 0.0,
                              error_rate(row), num(row, "p50_ms"), num(row, "p99_ms"))
    edges: list[Edge] = []
    for row in rows(data.get("edges") if isinstance(data, Mapping) else None):
        source, target = text(row, "source", "from", "parent"), text(row, "target", "to", "child")
        if not source or not target:
            continue
        for endpoint in (source, target):
            if endpoint not in nodes:
                nodes[endpoint] = Node(endpoint, "service", 0.0, 0.0, None, None, None)
        edges.append(Edge(source, target, num(row, "calls", default=0.0) or 0.0,
                          num(row, "errors", default=0.0) or 0.0, error_rate(row),
                          num(row, "p50_ms"), num(row, "p95_ms"), num(row, "p99_ms")))
    cycles = parse_cycles(data)
    cycle_edges = {pair for c in cycles for pair in c.edges}
    for edge in edges:
        edge.in_cycle = (edge.source, edge.target) in cycle_edges
    graph = ServiceGraph(list(nodes.values()), edges, cycles)
    layout(graph)
    return graph


def layout(graph: ServiceGraph) -> None:
    """Sets x (column) and y (row, centred) of every node."""
    services = [n.id for n in graph.nodes if n.kind == "service"]
    outgoing: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    incoming: dict[str, int] = {n.id: 0 for n in graph.nodes}
    for edge in graph.edges:
        if edge.source != edge.target:
            outgoing[edge.source].append(edge.target)
    # Drop back edges (found by depth-first search from entry points) so the rest is acyclic.
    order = sorted(services, key=lambda s: (0 if not any(s in outgoing[o] for o in outgoing) else 1, s))
    order += [n.id for n in graph.nodes if n.kind != "service"]
    state: dict[str, int] = {}
    forward: dict[str, list[str]] = {n: [] for n in outgoing}
    for start in order:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            current, index = stack.pop()
            targets = sorted(outgoing[current])
            if index < len(targets):
                stack.append((current, index + 1))
                target = targets[index]
                if state.get(target) == 1:
                    continue  # back edge: closes a cycle
                forward[current].append(target)
                if target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[current] = 2
    for targets in forward.values():
        for target in targets:
            incoming[target] += 1
    column: dict[str, int] = dict.fromkeys(outgoing, 0)
    ready = [n for n, count in incoming.items() if count == 0]
    while ready:
        current = ready.pop()
        for target in forward[current]:
            column[target] = max(column[target], column[current] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    service_columns = [column[s] for s in services]
    last = (max(service_columns) + 1) if service_columns else 0
    kinds = {n.id: n.kind for n in graph.nodes}
    for node_id in column:
        if kinds[node_id] != "service":
            column[node_id] = max(last, column[node_id])
    by_column: dict[int, list[Node]] = {}
    for node in graph.nodes:
        by_column.setdefault(column[node.id], []).append(node)
    for col, members in by_column.items():
        members.sort(key=lambda n: (NODE_KINDS.index(n.kind), n.id))
        count = len(members)
        for i, node in enumerate(members):
            node.x = float(col)
            node.y = (count - 1) / 2 - i


def node_size_px(calls: float, max_calls: float) -> float:
    """Marker diameter: area grows with calls, between 18 and 60 px."""
    if max_calls <= 0 or calls <= 0:
        return 18.0
    return 18.0 + 42.0 * math.sqrt(calls / max_calls)


def edge_width_px(calls: float, max_calls: float) -> float:
    if max_calls <= 0 or calls <= 0:
        return 1.0
    return 1.0 + 7.0 * math.sqrt(calls / max_calls)


def neighbourhood(graph: ServiceGraph, focus: str, depth: int = 1) -> ServiceGraph:
    """The part of the graph within `depth` calls of `focus`, either direction, laid out again.
    Cycles are kept when all their services are in view."""
    keep = {focus}
    frontier = {focus}
    for _ in range(max(0, depth)):
        reached = {e.target for e in graph.edges if e.source in frontier} | {
            e.source for e in graph.edges if e.target in frontier}
        frontier = reached - keep
        keep |= reached
    nodes = [replace(n) for n in graph.nodes if n.id in keep]
    edges = [replace(e) for e in graph.edges if e.source in keep and e.target in keep]
    cycles = [c for c in graph.cycles if set(c.services) <= keep]
    part = ServiceGraph(nodes, edges, cycles)
    layout(part)
    return part
