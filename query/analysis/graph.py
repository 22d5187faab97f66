"""Service graphs: strongly connected components (Tarjan), elementary cycles (Johnson, bounded),
per-trace service re-entry, and Graphviz DOT output.

Johnson's algorithm follows D. B. Johnson, "Finding all the elementary circuits of a directed
graph", SIAM J. Comput. 4(1), 1975; Tarjan's follows R. Tarjan, "Depth-first search and linear
graph algorithms", SIAM J. Comput. 1(2), 1972. Both are written iteratively so that deep graphs
cannot exhaust the Python stack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

N = TypeVar("N", bound=Hashable)

Adjacency = Mapping[str, Iterable[str]]


def adjacency_from_edges(edges: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Node -> sorted successors; every node that appears on either end is a key."""
    out: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        out[source].add(target)
        out.setdefault(target, set())
    return {node: sorted(targets) for node, targets in sorted(out.items())}


def strongly_connected_components(adjacency: Adjacency) -> list[list[str]]:
    """Tarjan's SCCs, each sorted, in the order Tarjan completes them (reverse topological)."""
    graph = {node: list(targets) for node, targets in adjacency.items()}
    for targets in list(graph.values()):
        for target in targets:
            graph.setdefault(target, [])
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index_of:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_index = work[-1]
            if child_index == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = graph[node]
            if child_index < len(successors):
                work[-1] = (node, child_index + 1)
                successor = successors[child_index]
                if successor not in index_of:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index_of[successor])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


@dataclass
class CycleSearch:
    """The outcome of `elementary_cycles`: the cycles found, and whether the bound stopped the search."""

    cycles: list[list[str]] = field(default_factory=list)
    truncated: bool = False


def elementary_cycles(adjacency: Adjacency, *, max_cycles: int = 1000, max_steps: int = 1_000_000,
                      include_self_loops: bool = True) -> CycleSearch:
    """Every elementary cycle (no node repeated) as a list of nodes in call order, each starting at
    its smallest node, sorted; at most `max_cycles` cycles and `max_steps` search steps."""
    graph: dict[str, set[str]] = defaultdict(set)
    for node, targets in adjacency.items():
        graph[node].update(targets)
        for target in targets:
            graph.setdefault(target, set())
    result = CycleSearch()
    if include_self_loops:
        for node in sorted(graph):
            if node in graph[node]:
                result.cycles.append([node])
    steps = 0
    order = sorted(graph)
    rank = {node: position for position, node in enumerate(order)}
    for start in order:
        if len(result.cycles) >= max_cycles or result.truncated:
            break
        # Johnson: cycles through `start` inside the SCC of `start` within the subgraph of nodes >= start.
        allowed = {node for node in order if rank[node] >= rank[start]}
        sub = {node: sorted(t for t in graph[node] if t in allowed and t != node) for node in allowed}
        component = next((c for c in strongly_connected_components(sub) if start in c), [start])
        if len(component) < 2:
            continue
        members = set(component)
        succ = {node: [t for t in sub[node] if t in members] for node in component}
        blocked: set[str] = set()
        blocked_by: dict[str, set[str]] = defaultdict(set)
        path = [start]
        blocked.add(start)
        frames: list[tuple[str, int, bool]] = [(start, 0, False)]  # node, next successor index, found a cycle
        while frames:
            steps += 1
            if steps > max_steps or len(result.cycles) >= max_cycles:
                result.truncated = True
                break
            node, position, found = frames[-1]
            successors = succ[node]
            if position < len(successors):
                frames[-1] = (node, position + 1, found)
                nxt = successors[position]
                if nxt == start:
                    result.cycles.append(list(path))
                    frames[-1] = (node, position + 1, True)
                elif nxt not in blocked:
                    path.append(nxt)
                    blocked.add(nxt)
                    frames.append((nxt, 0, False))
                continue
            frames.pop()
            if found:
                _unblock(node, blocked, blocked_by)
            else:
                for successor in successors:
                    blocked_by[successor].add(node)
            path.pop()
            if frames and found:
                parent, parent_position, _ = frames[-1]
                frames[-1] = (parent, parent_position, True)
    if len(result.cycles) > max_cycles:
        result.cycles = result.cycles[:max_cycles]
        result.truncated = True
    result.cycles.sort(key=lambda cycle: (len(cycle), cycle))
    return result


def _unblock(node: str, blocked: set[str], blocked_by: dict[str, set[str]]) -> None:
    pending = [node]
    while pending:
        current = pending.pop()
        if current in blocked:
            blocked.discard(current)
            pending.extend(blocked_by.pop(current, set()))


def canonical_cycle(nodes: Sequence[str]) -> tuple[str, ...]:
    """A cycle rotated to start at its smallest node, so equal cycles compare equal."""
    if not nodes:
        return ()
    pivot = min(range(len(nodes)), key=lambda i: nodes[i])
    return tuple(nodes[pivot:]) + tuple(nodes[:pivot])


@dataclass(frozen=True)
class SpanRef:
    span_id: str
    parent_span_id: str
    service: str


def trace_reentries(spans: Iterable[SpanRef]) -> list[tuple[str, ...]]:
    """The service re-entries of one trace: for every span whose call path already passed through
    its service in an earlier, different-service segment, the service path from that earlier
    segment to the re-entry, e.g. ("A", "B", "A"). Calls inside one service are not re-entries.
    Each distinct path is reported once. Spans whose parent is missing start a new path."""
    by_id: dict[str, SpanRef] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    children: dict[str, list[str]] = defaultdict(list)
    roots: list[str] = []
    for span in by_id.values():
        if span.parent_span_id and span.parent_span_id in by_id and span.parent_span_id != span.span_id:
            children[span.parent_span_id].append(span.span_id)
        else:
            roots.append(span.span_id)
    found: set[tuple[str, ...]] = set()
    visited: set[str] = set()
    for root in sorted(roots):
        # Each entry: span id, the service path of segments from the root down to this span.
        pending: list[tuple[str, tuple[str, ...]]] = [(root, (by_id[root].service,))]
        while pending:
            span_id, segments = pending.pop()
            if span_id in visited:
                continue  # a malformed parent loop
            visited.add(span_id)
            for child_id in children.get(span_id, ()):
                service = by_id[child_id].service
                if service == segments[-1]:
                    pending.append((child_id, segments))
                    continue
                if service in segments:
                    first = len(segments) - 1 - segments[::-1].index(service)
                    found.add(segments[first:] + (service,))
                pending.append((child_id, segments + (service,)))
    return sorted(found)


def to_dot(nodes: Sequence[Mapping[str, object]], edges: Sequence[Mapping[str, object]]) -> str:
    """The dependency graph in Graphviz DOT: one node per service or backend, edges labelled with
    calls and error rate."""
    shapes = {"service": "box", "database": "cylinder", "messaging": "cds", "external": "ellipse"}
    lines = ["digraph dependencies {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for node in nodes:
        shape = shapes.get(str(node.get("kind", "service")), "box")
        lines.append(f"  {_dot_id(str(node['id']))} [shape={shape}];")
    for edge in edges:
        calls = edge.get("calls", 0)
        raw_rate = edge.get("error_rate", 0.0)
        rate = float(raw_rate) if isinstance(raw_rate, int | float) else 0.0
        label = f"{calls} calls" + (f", {rate:.1%} errors" if rate else "")
        color = ' color="red"' if rate else ""
        lines.append(f"  {_dot_id(str(edge['source']))} -> {_dot_id(str(edge['target']))} "
                     f"[label={_dot_id(label)}{color}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
