"""Unit tests of the dashboard's pure models: time range, trace tree and critical path, service graph,
alert-rule form, API error messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracehouse.ui.api import error_message
from tracehouse.ui.data import error_rate, fmt_ms, fmt_pct, rows, to_datetime, to_ns
from tracehouse.ui.forms import form_to_rule, rule_states, rule_to_form, trace_filter_problems
from tracehouse.ui.graph import edge_width_px, node_size_px, parse_cycles, parse_graph
from tracehouse.ui.timerange import page_url, parse_time_range
from tracehouse.ui.tracemodel import Segment, build_trace

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
T0_NS = int(NOW.timestamp()) * 1_000_000_000


# --- time range ----------------------------------------------------------------------------------------

def test_preset_range_ends_now_and_reproduces_in_url() -> None:
    tr = parse_time_range("6h", None, None, "30", now=NOW)
    assert (tr.preset, tr.end, tr.start, tr.refresh_s) == ("6h", NOW, NOW - timedelta(hours=6), 30)
    assert tr.api_params() == {"start": str(int((NOW - timedelta(hours=6)).timestamp() * 1000)),
                               "end": str(int(NOW.timestamp() * 1000))}
    assert tr.url_params() == {"range": "6h", "refresh": "30"}


def test_custom_range_round_trips_through_its_url() -> None:
    tr = parse_time_range("custom", "2026-11-25T10:00", "2026-11-25T12:30", None, now=NOW)
    assert tr.start == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert tr.end == datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
    again = parse_time_range(**{"range_name": "custom", "start": tr.url_params()["start"],
                                "end": tr.url_params()["end"], "refresh": None}, now=NOW)
    assert (again.start, again.end) == (tr.start, tr.end)
    assert "2026-11-25 10:00" in tr.describe()


def test_bad_ranges_fall_back_to_the_last_hour_with_a_reason() -> None:
    for args in (("custom", "yesterday", None), ("custom", "2026-11-25T12:00", "2026-11-25T11:00"), ("2w", None, None)):
        tr = parse_time_range(*args, None, now=NOW)
        assert (tr.preset, tr.end - tr.start) == ("1h", timedelta(hours=1))
        assert tr.warning
    assert parse_time_range(None, None, None, "abc", now=NOW).refresh_s == 0
    assert parse_time_range(None, None, None, "45", now=NOW).refresh_s in (30, 60)


def test_page_url_keeps_the_range_and_drops_empty_parameters() -> None:
    tr = parse_time_range("15m", None, None, None, now=NOW)
    assert page_url("/ui/traces", tr, service="a b", operation="") == "/ui/traces?range=15m&service=a+b"


# --- trace model ---------------------------------------------------------------------------------------

def span(span_id: str, parent: str, service: str, start_ms: float, duration_ms: float, error: bool = False) -> dict:
    return {"span_id": span_id, "parent_span_id": parent, "service": service, "name": f"op-{span_id}",
            "kind": "Server", "start_unix_ns": T0_NS + int(start_ms * 1e6), "duration_ms": duration_ms,
            "status_code": "Error" if error else "Unset", "attributes": {"k": "v"}, "events": [], "links": []}


TRACE = {"trace_id": "ab" * 16, "spans": [
    span("c", "b", "payments", 10, 30), span("a", "", "front", 0, 100), span("e", "b", "checkout", 20, 5),
    span("b", "a", "checkout", 5, 80), span("d", "b", "payments", 45, 35, error=True)]}


def test_spans_are_nested_by_parent_in_start_order() -> None:
    trace = build_trace(TRACE)
    assert [(s.span_id, s.depth) for s in trace.spans] == [("a", 0), ("b", 1), ("c", 2), ("e", 2), ("d", 2)]
    assert (trace.duration_ns, trace.error_count, trace.services) == (100_000_000, 1, ["checkout", "front", "payments"])


def test_critical_path_follows_the_last_finishing_children() -> None:
    trace = build_trace(TRACE)
    ms = 1_000_000
    assert trace.critical_path == [
        Segment("a", T0_NS, T0_NS + 5 * ms), Segment("b", T0_NS + 5 * ms, T0_NS + 10 * ms),
        Segment("c", T0_NS + 10 * ms, T0_NS + 40 * ms), Segment("b", T0_NS + 40 * ms, T0_NS + 45 * ms),
        Segment("d", T0_NS + 45 * ms, T0_NS + 80 * ms), Segment("b", T0_NS + 80 * ms, T0_NS + 85 * ms),
        Segment("a", T0_NS + 85 * ms, T0_NS + 100 * ms)]
    assert "e" not in trace.critical_span_ids  # ran in parallel with c, finished earlier
    assert sum(s.end_ns - s.start_ns for s in trace.critical_path) == trace.duration_ns


def test_missing_parents_and_parent_loops_still_show_every_span() -> None:
    data = {"spans": [span("x", "gone", "a", 0, 10), span("p", "q", "b", 0, 5), span("q", "p", "b", 1, 2)]}
    trace = build_trace(data)
    assert sorted(s.span_id for s in trace.spans) == ["p", "q", "x"]
    assert all(s.orphan for s in trace.spans)


def test_span_fields_accept_rfc3339_start_and_nanosecond_duration() -> None:
    trace = build_trace({"spans": [{"span_id": "a", "start": "2026-11-26T08:00:00.000000500Z", "duration_ns": 2_000_000,
                                    "service": "s", "name": "n", "status": "STATUS_CODE_ERROR"}]})
    assert trace.spans[0].start_ns == T0_NS  # microsecond precision from text
    assert trace.spans[0].duration_ns == 2_000_000 and trace.spans[0].is_error


# --- service graph -------------------------------------------------------------------------------------

DEPENDENCIES = {
    "nodes": [{"id": "front", "kind": "service", "calls": 100, "errors": 0, "p50_ms": 1, "p99_ms": 9},
              {"id": "a", "kind": "service", "calls": 50, "errors": 5, "p50_ms": 1, "p99_ms": 9},
              {"id": "b", "kind": "service", "calls": 40, "errors": 0, "p50_ms": 1, "p99_ms": 9},
              {"id": "c", "kind": "service", "calls": 30, "errors": 0, "p50_ms": 1, "p99_ms": 9},
              {"id": "postgresql test", "kind": "database", "calls": 20, "errors": 0, "p50_ms": 1, "p99_ms": 2}],
    "edges": [{"source": "front", "target": "a", "calls": 50, "errors": 5, "error_rate": 0.1},
              {"source": "a", "target": "b", "calls": 40, "errors": 0, "error_rate": 0},
              {"source": "b", "target": "c", "calls": 30, "errors": 0, "error_rate": 0},
              {"source": "c", "target": "a", "calls": 30, "errors": 0, "error_rate": 0},
              {"source": "a", "target": "postgresql test", "calls": 20, "errors": 0, "error_rate": 0}],
    "cycles": [{"services": ["a", "b", "c"], "edges": [
        {"source": "a", "target": "b", "calls": 40, "example_trace_ids": ["t1"]},
        {"source": "b", "target": "c", "calls": 30, "example_trace_ids": ["t2"]},
        {"source": "c", "target": "a", "calls": 30, "example_trace_ids": ["t1"]}]}],
}


def test_graph_marks_exactly_the_cycle_edges() -> None:
    graph = parse_graph(DEPENDENCIES)
    assert [n.id for n in graph.nodes] == ["front", "a", "b", "c", "postgresql test"]
    assert {(e.source, e.target) for e in graph.edges if e.in_cycle} == {("a", "b"), ("b", "c"), ("c", "a")}
    assert graph.cycles[0].describe() == "a → b → c → a"
    assert graph.cycles[0].example_trace_ids == ["t1", "t2"]


def test_layout_puts_callers_left_of_callees_and_databases_last() -> None:
    graph = parse_graph(DEPENDENCIES)
    x = {n.id: n.x for n in graph.nodes}
    assert x["front"] < x["a"] < x["b"] < x["c"]  # the back edge c→a does not pull a to the right
    assert x["postgresql test"] > x["c"]


def test_cycles_in_other_spellings() -> None:
    assert [c.services for c in parse_cycles({"cycles": [["a", "b", "a"], {"path": ["x", "y"]}]})] == [["a", "b"], ["x", "y"]]
    assert parse_cycles({"cycles": "nonsense"}) == []


def test_sizes_grow_with_calls_and_stay_bounded() -> None:
    assert node_size_px(0, 100) == 18.0 and node_size_px(100, 100) == 60.0
    assert node_size_px(25, 100) < node_size_px(50, 100)
    assert edge_width_px(1, 100) < edge_width_px(100, 100) == 8.0


# --- alert form ----------------------------------------------------------------------------------------

def test_form_builds_the_documented_rule_json() -> None:
    rule, problems = form_to_rule({"name": "checkout p99", "service": "shop", "operation": "GET /checkout",
                                   "signal": "p99_ms", "op": ">", "threshold": "250", "window_s": "300",
                                   "for_s": "60", "severity": "critical", "labels": "team=shop",
                                   "channels": "ops-webhook", "enabled": "on"})
    assert problems == []
    assert rule == {"name": "checkout p99", "target": {"service": "shop", "operation": "GET /checkout"},
                    "signal": "p99_ms", "op": ">", "threshold": 250.0, "window_s": 300, "for_s": 60,
                    "severity": "critical", "labels": {"team": "shop"}, "channels": ["ops-webhook"], "enabled": True}
    again = rule_to_form({**rule, "id": "r1"})
    assert form_to_rule(again)[0] == rule


def test_form_problems_name_their_field() -> None:
    _, problems = form_to_rule({"name": "", "signal": "p99_ms", "threshold": "fast", "window_s": "-5",
                                "labels": "nokey", "severity": "loud"})
    fields = {p.split(":")[0] for p in problems}
    assert {"name", "threshold", "window_s", "labels", "severity"} <= fields
    assert trace_filter_problems({"min_duration_ms": "x", "attr": "nocolon", "status": "bad"}) == [
        "min duration ms must be a number, not 'x'", "status must be error or ok",
        "attribute filter must look like key:value, not 'nocolon'"]


def test_rule_state_is_the_worst_active_alert() -> None:
    rules = [{"id": "r1", "state": "ok"}, {"id": "r2", "enabled": False}, {"id": "r3", "state": "ok"}]
    active = [{"rule_id": "r1", "state": "pending"}, {"rule_id": "r1", "state": "firing"}]
    assert rule_states(rules, active) == {"r1": "firing", "r2": "disabled", "r3": "ok"}


# --- data helpers --------------------------------------------------------------------------------------

def test_api_error_messages_name_the_endpoint_and_parameter() -> None:
    assert error_message("/api/v1/traces", 422, {"detail": [{"loc": ["query", "limit"], "msg": "too big"}]}) == \
        "/api/v1/traces answered 422: limit: too big"
    assert error_message("/api/v1/x", 503, {"detail": "store unavailable: down"}) == \
        "/api/v1/x answered 503: store unavailable: down"
    assert "not available" in error_message("/api/v1/hosts", 404, {"detail": "Not Found"})


def test_times_and_formats() -> None:
    assert to_datetime(1764144000000) == to_datetime("2025-11-26T08:00:00Z") == to_datetime(1764144000)
    assert to_ns(T0_NS) == T0_NS
    assert (fmt_ms(0.5), fmt_ms(12.34), fmt_ms(1500), fmt_pct(0.1234), fmt_pct(0)) == (
        "500 µs", "12.3 ms", "1.50 s", "12.3%", "0%")
    assert error_rate({"calls": 10, "errors": 1}) == 0.1
    assert rows({"services": [{"name": "a"}, "junk"]}, "services") == [{"name": "a"}]


def test_latest_value_per_label_skips_empty_steps() -> None:
    from tracehouse.ui.data import latest_by_label

    data = {"series": [
        {"labels": {"service.name": "redis-main"}, "timestamps": ["2026-11-26T08:00:00Z", "2026-11-26T08:01:00Z",
                                                                  "2026-11-26T08:02:00Z"], "values": [1, 0, None]},
        {"labels": {"service.name": "pg"}, "timestamps": ["2026-11-26T08:00:00Z"], "values": [1]}]}
    latest = latest_by_label(data, "service.name")
    assert latest == {"redis-main": (0.0, datetime(2026, 11, 26, 8, 1, tzinfo=UTC)),
                      "pg": (1.0, datetime(2026, 11, 26, 8, 0, tzinfo=UTC))}


def test_neighbourhood_keeps_what_is_within_reach_of_the_focus() -> None:
    from tracehouse.ui.graph import neighbourhood

    graph = parse_graph(DEPENDENCIES)
    near = neighbourhood(graph, "front", 1)
    assert sorted(n.id for n in near.nodes) == ["a", "front"]
    assert [(e.source, e.target) for e in near.edges] == [("front", "a")] and near.cycles == []
    wider = neighbourhood(graph, "front", 2)
    assert sorted(n.id for n in wider.nodes) == ["a", "b", "c", "front", "postgresql test"]  # c calls a
    assert len(wider.cycles) == 1
    assert [n.id for n in graph.nodes] == ["front", "a", "b", "c", "postgresql test"]  # the full graph is untouched
