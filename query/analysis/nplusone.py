"""N+1 query detection: one parent span running the same statement again and again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StatementRun:
    """One parent span's executions of one normalized statement (a row of the detection query)."""

    trace_id: str
    parent_span_id: str
    service: str
    parent_operation: str
    db_system: str
    statement: str
    executions: int


@dataclass
class NPlusOne:
    service: str
    parent_operation: str
    db_system: str
    statement: str
    traces: int = 0
    occurrences: int = 0
    max_executions: int = 0
    total_executions: int = 0
    example_trace_ids: list[str] = field(default_factory=list)

    @property
    def mean_executions(self) -> float:
        return round(self.total_executions / self.occurrences, 3) if self.occurrences else 0.0


def find_n_plus_one(runs: Iterable[StatementRun], *, min_executions: int, max_examples: int = 5) -> list[NPlusOne]:
    """Groups parent spans that ran one statement at least `min_executions` times by (service,
    parent operation, statement): how many traces do it, executions per parent span, examples.
    Most traces first."""
    groups: dict[tuple[str, str, str, str], NPlusOne] = {}
    traces: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for run in runs:
        if run.executions < min_executions:
            continue
        key = (run.service, run.parent_operation, run.db_system, run.statement)
        group = groups.setdefault(key, NPlusOne(*key))
        group.occurrences += 1
        group.total_executions += run.executions
        group.max_executions = max(group.max_executions, run.executions)
        if run.trace_id not in traces[key]:
            traces[key].add(run.trace_id)
            if len(group.example_trace_ids) < max_examples:
                group.example_trace_ids.append(run.trace_id)
    for key, group in groups.items():
        group.traces = len(traces[key])
        group.example_trace_ids.sort()
    return sorted(groups.values(), key=lambda g: (-g.traces, -g.max_executions, g.service, g.statement))
