"""Elementary cycles of a small directed service graph (pure; no database).

Kept here, small and bounded, so that a "new dependency cycle" rule needs nothing else: it walks
from each node only through nodes ordered after it, so each cycle is found once, starting at its
smallest node (the idea behind Johnson's algorithm, without its blocking lists; the bounds keep a
dense graph from running away).
"""

from __future__ import annotations

from collections.abc import Iterable


def elementary_cycles(edges: Iterable[tuple[str, str]], *, max_cycles: int = 200,
                      max_length: int = 12) -> list[list[str]]:
    """Each cycle as its nodes in call order, starting at its smallest node; self-loops are skipped
    (calls inside one service are not cycles). At most `max_cycles`, each at most `max_length` long."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        if source == target:
            continue
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    cycles: list[list[str]] = []
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node], reverse=True):
                if nxt == start:
                    cycles.append(list(path))
                    if len(cycles) >= max_cycles:
                        return cycles
                elif nxt > start and nxt not in path and len(path) < max_length:
                    stack.append((nxt, [*path, nxt]))
    cycles.sort(key=lambda cycle: (len(cycle), cycle))
    return cycles


def cycle_key(cycle: list[str]) -> str:
    """`a -> b -> c -> a`: a stable name for a cycle (its smallest node first)."""
    if not cycle:
        return ""
    smallest = cycle.index(min(cycle))
    rotated = cycle[smallest:] + cycle[:smallest]
    return " -> ".join([*rotated, rotated[0]])
