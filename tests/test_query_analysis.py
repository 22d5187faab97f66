"""Unit tests of the query service's pure analysis functions (no database)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracehouse.query.analysis.graph import (
    SpanRef,
    adjacency_from_edges,
    canonical_cycle,
    elementary_cycles,
    strongly_connected_components,
    to_dot,
    trace_reentries,
)
from tracehouse.query.analysis.nplusone import StatementRun, find_n_plus_one
from tracehouse.query.analysis.percentiles import (
    bucket_bounds_ms,
    bucket_of,
    histogram,
    percentile,
    quantile_from_histogram,
)
from tracehouse.query.analysis.ranking import shares, top_n
from tracehouse.query.analysis.sqlnorm import normalize_statement
from tracehouse.query.timerange import BadParameter, parse_time, window


def brute_force_cycles(adjacency: dict[str, list[str]]) -> set[tuple[str, ...]]:
    """Every elementary cycle by trying every ordered subset of nodes (small graphs only)."""
    nodes = sorted(adjacency)
    found = set()
    for size in range(1, len(nodes) + 1):
        for combo in itertools.permutations(nodes, size):
            if combo[0] != min(combo):
                continue
            if all(b in adjacency[a] for a, b in zip(combo, combo[1:] + combo[:1], strict=True)):
                found.add(combo)
    return found


def test_overlapping_cycles_and_self_loops() -> None:
    adjacency = adjacency_from_edges([("A", "B"), ("B", "C"), ("C", "A"), ("B", "A"), ("C", "C"), ("C", "D")])
    result = elementary_cycles(adjacency)
    assert result.cycles == [["C"], ["A", "B"], ["A", "B", "C"]]
    assert not result.truncated
    without_loops = elementary_cycles(adjacency, include_self_loops=False)
    assert without_loops.cycles == [["A", "B"], ["A", "B", "C"]]


def test_cycle_enumeration_is_bounded_on_a_dense_graph() -> None:
    nodes = [f"s{i:02d}" for i in range(12)]
    adjacency = {a: [b for b in nodes if b != a] for a in nodes}  # billions of cycles
    result = elementary_cycles(adjacency, max_cycles=200)
    assert result.truncated
    assert len(result.cycles) == 200
    assert len({canonical_cycle(c) for c in result.cycles}) == 200


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCDEF"), st.sampled_from("ABCDEF")), max_size=18))
def test_elementary_cycles_match_brute_force(edges: list[tuple[str, str]]) -> None:
    adjacency = adjacency_from_edges(edges)
    result = elementary_cycles(adjacency, max_cycles=100_000)
    assert {tuple(c) for c in result.cycles} == brute_force_cycles(adjacency)
    assert all(c[0] == min(c) for c in result.cycles)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABCDEFG"), st.sampled_from("ABCDEFG")), max_size=20))
def test_scc_partition_agrees_with_reachability(edges: list[tuple[str, str]]) -> None:
    adjacency = adjacency_from_edges(edges)
    reach = {n: {n} for n in adjacency}
    changed = True
    while changed:
        changed = False
        for node, targets in adjacency.items():
            for target in targets:
                if not reach[target] <= reach[node]:
                    reach[node] |= reach[target]
                    changed = True
    components = strongly_connected_components(adjacency)
    assert sorted(n for c in components for n in c) == sorted(adjacency)
    for component in components:
        for a in component:
            assert {b for b in adjacency if a in reach[b] and b in reach[a]} == set(component)


def test_scc_handles_a_deep_chain_without_recursion() -> None:
    nodes = [f"n{i}" for i in range(5000)]
    adjacency = {a: [b] for a, b in zip(nodes, nodes[1:], strict=False)}
    adjacency[nodes[-1]] = [nodes[0]]
    assert strongly_connected_components(adjacency) == [sorted(nodes)]


def spans(*rows: tuple[str, str, str]) -> list[SpanRef]:
    return [SpanRef(span, parent, service) for span, parent, service in rows]


def test_trace_reentry_found_through_internal_spans() -> None:
    trace = spans(("1", "", "A"), ("2", "1", "A"), ("3", "2", "B"), ("4", "3", "B"), ("5", "4", "A"))
    assert trace_reentries(trace) == [("A", "B", "A")]


def test_calls_inside_one_service_and_fan_out_are_not_reentries() -> None:
    same_service = spans(("1", "", "A"), ("2", "1", "A"), ("3", "2", "A"))
    assert trace_reentries(same_service) == []
    fan_out = spans(("1", "", "G"), ("2", "1", "A"), ("3", "1", "C"), ("4", "3", "A"))
    assert trace_reentries(fan_out) == []


def test_reentry_paths_of_a_longer_cycle() -> None:
    trace = spans(("1", "", "A"), ("2", "1", "B"), ("3", "2", "C"), ("4", "3", "A"), ("5", "4", "B"))
    assert trace_reentries(trace) == [("A", "B", "C", "A"), ("B", "C", "A", "B")]


def test_parent_loops_and_missing_parents_do_not_hang() -> None:
    looped = spans(("1", "2", "A"), ("2", "1", "B"))
    assert trace_reentries(looped) == []
    orphan = spans(("5", "missing", "A"), ("6", "5", "B"), ("7", "6", "A"))
    assert trace_reentries(orphan) == [("A", "B", "A")]


def test_dot_output_quotes_names() -> None:
    dot = to_dot([{"id": 'we"ird', "kind": "service"}, {"id": "postgresql/db", "kind": "database"}],
                 [{"source": 'we"ird', "target": "postgresql/db", "calls": 3, "error_rate": 0.5}])
    assert dot.startswith("digraph dependencies {")
    assert '"we\\"ird" -> "postgresql/db" [label="3 calls, 50.0% errors" color="red"];' in dot
    assert '"postgresql/db" [shape=cylinder];' in dot


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=1))
def test_percentile_equals_numpy(values: list[float], q: float) -> None:
    ordered = sorted(values)
    assert percentile(ordered, q) == pytest.approx(float(np.quantile(ordered, q)), rel=1e-9, abs=1e-6)


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


@given(st.floats(min_value=0.0011, max_value=1e7))
def test_bucket_contains_its_duration(duration_ms: float) -> None:
    lower, upper = bucket_bounds_ms(bucket_of(duration_ms))
    assert lower * (1 - 1e-12) <= duration_ms < upper * (1 + 1e-12)


def test_histogram_fills_gaps_and_estimates_quantiles() -> None:
    values = np.random.default_rng(1).lognormal(2, 0.7, 5000)
    counts: dict[int, int] = {}
    for v in values:
        counts[bucket_of(float(v))] = counts.get(bucket_of(float(v)), 0) + 1
    buckets = histogram(counts)
    assert sum(b.count for b in buckets) == 5000
    assert all(b.upper_ms == pytest.approx(next_b.lower_ms) for b, next_b in zip(buckets, buckets[1:], strict=False))
    width = 2 ** 0.25
    for q in (0.5, 0.9, 0.99):
        exact = float(np.quantile(values, q))
        assert exact / width <= quantile_from_histogram(buckets, q) <= exact * width
    assert histogram({}) == []


def test_top_n_ranks_by_value_then_name_and_puts_missing_last() -> None:
    rows = [("b", 5.0), ("a", 5.0), ("c", None), ("d", 9.0), ("e", math.nan)]
    ranked = top_n(rows, value=lambda r: r[1], name=lambda r: r[0], n=4)
    assert [r[0] for r in ranked] == ["d", "a", "b", "c"]
    assert top_n(rows, value=lambda r: r[1], name=lambda r: r[0], n=0) == []
    assert shares([("x", 1), ("y", 3)]) == [("y", 3, 0.75), ("x", 1, 0.25)]


@pytest.mark.parametrize(("raw", "system", "expected"), [
    ("SELECT * FROM t WHERE id = 42", "postgresql", "SELECT * FROM t WHERE id = ?"),
    ("SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x''y'", "mysql",
     "SELECT * FROM t WHERE id IN (?) AND name = ?"),
    ("INSERT INTO t (a, b) VALUES (1, 'a'), (2, 'b')", "postgresql", "INSERT INTO t (a, b) VALUES (?)"),
    ("select  a1\n from t2 where c = $1 and d = true -- note", "postgresql", "select a1 from t2 where c = $1 and d = ?"),
    ("UPDATE t SET x = -1.5e3 WHERE y = 0x1F", "mysql", "UPDATE t SET x = ? WHERE y = ?"),
    ("GET user:42", "redis", "GET ?"),
    ("hset session:9 k v", "redis", "HSET ?"),
])
def test_statement_normalization(raw: str, system: str, expected: str) -> None:
    assert normalize_statement(raw, system) == expected


@given(st.lists(st.one_of(st.integers(-10**9, 10**9), st.text("abc'", max_size=5)), min_size=1, max_size=6))
def test_normalization_hides_literals_and_is_idempotent(values: list[object]) -> None:
    literals = ", ".join(str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in values)
    statement = f"SELECT * FROM orders WHERE id IN ({literals}) AND x = {len(values)}"
    normalized = normalize_statement(statement)
    assert normalized == "SELECT * FROM orders WHERE id IN (?) AND x = ?"
    assert normalize_statement(normalized) == normalized


def test_n_plus_one_groups_by_statement_and_parent() -> None:
    runs = [StatementRun(f"t{i}", f"p{i}", "orders", "GET /orders", "postgresql", "SELECT ?", 10 + i)
            for i in range(3)]
    runs.append(StatementRun("t9", "p9", "orders", "GET /orders", "postgresql", "SELECT ?", 2))
    runs.append(StatementRun("t0", "q0", "users", "GET /u", "mysql", "SELECT u", 6))
    [first, second] = find_n_plus_one(runs, min_executions=5)
    assert (first.service, first.traces, first.max_executions, first.mean_executions) == ("orders", 3, 12, 11.0)
    assert first.example_trace_ids == ["t0", "t1", "t2"]
    assert (second.service, second.traces) == ("users", 1)


def test_time_parameters() -> None:
    assert parse_time("start", "1700000000000").timestamp() == 1_700_000_000
    assert parse_time("start", "2023-11-14T22:13:20Z").timestamp() == 1_700_000_000
    assert parse_time("start", "2023-11-14T23:13:20+01:00").timestamp() == 1_700_000_000
    for bad in ("yesterday", "99999999999999999999999", "2023-13-01T00:00:00Z"):
        with pytest.raises(BadParameter) as raised:
            parse_time("end", bad)
        assert raised.value.parameter == "end"
    with pytest.raises(BadParameter):
        window("2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z", default_s=3600)
    assert window(None, "1700000000000", default_s=60).seconds == 60


@given(st.integers(1_600_000_000, 2_000_000_000), st.integers(1, 3 * 86_400))
def test_rollup_bounds_cover_the_window_once(start_s: int, length_s: int) -> None:
    from tracehouse.query.rows import seconds_params

    end_s = start_s + length_s
    bounds = seconds_params(start_s * 1_000_000_000 + 123, end_s * 1_000_000_000, now_s=end_s + 3600)
    assert bounds["start_s"] % 60 == 0 and bounds["start_s"] <= start_s < bounds["start_s"] + 60
    assert bounds["end_s"] == end_s
    assert bounds["start_s"] <= bounds["mid_start_s"] <= bounds["mid_end_s"] <= bounds["end_s"]
    if bounds["mid_start_s"] < bounds["mid_end_s"]:  # whole ten-minute buckets in the middle
        assert bounds["mid_start_s"] % 600 == 0 and bounds["mid_end_s"] % 600 == 0
    ending_now = seconds_params(start_s * 1_000_000_000, end_s * 1_000_000_000, now_s=end_s)
    if ending_now["mid_start_s"] < ending_now["mid_end_s"]:  # the current bucket comes whole from 10m
        assert ending_now["mid_end_s"] % 600 == 0 and end_s <= ending_now["mid_end_s"] < end_s + 600


def test_window_pair_query_reaches_back_by_the_gap() -> None:
    from tracehouse.query.rollup import PairQuery

    query = PairQuery.for_window(10_000, 20_000, 3_000)
    assert query.parameters() == {"child_from_ns": 7_000, "child_to_ns": 20_000, "parent_from_ns": 7_000,
                                  "parent_to_ns": 20_000, "pair_end_from_ns": 10_000, "pair_end_to_ns": 20_000}
