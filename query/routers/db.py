"""`/db/calls` (normalized statements and the endpoints issuing them) and `/db/n-plus-one`."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from tracehouse.query.analysis.nplusone import StatementRun, find_n_plus_one
from tracehouse.query.analysis.percentiles import error_rate, ms
from tracehouse.query.deps import Settings, Window
from tracehouse.query.graphs import plan_pairs
from tracehouse.query.models import DbCalls, DbEndpoint, DbStatement, NPlusOneFinding, NPlusOneReport
from tracehouse.query.routers.common import window_fields
from tracehouse.query.rows import fetch, seconds_params
from tracehouse.query.sqlfiles import sql, with_filters
from tracehouse.query.store import Store

router = APIRouter(tags=["database"])

MAX_RUNS = 100_000
RAW_SYSTEM_FILTER = "AND (SpanAttributes['db.system'] = {db_system:String} OR SpanAttributes['db.system.name'] = {db_system:String})"


def _raw_filters(service: str | None, db_system: str | None, parameters: dict[str, Any]) -> list[str]:
    fragments = []
    if service:
        fragments.append("AND ServiceName = {service:String}")
        parameters["service"] = service
    if db_system:
        fragments.append(RAW_SYSTEM_FILTER)
        parameters["db_system"] = db_system
    return fragments


def _rollup_filters(service: str | None, db_system: str | None) -> list[str]:
    fragments = []
    if service:
        fragments.append("AND ServiceName = {service:String}")
    if db_system:
        fragments.append("AND DbSystem = {db_system:String}")
    return fragments


def _endpoint_query(client: Store, settings: Settings, window: Window, service: str | None,
                    db_system: str | None) -> tuple[str, dict[str, Any]]:
    """Endpoints per statement: the rollup (plus the raw tail), or raw spans for a small window."""
    plan = plan_pairs(client, settings, window)
    parameters: dict[str, Any] = dict(plan.pairs.parameters())
    parameters.update(seconds_params(window.start_ns, window.end_ns) if plan.mode == "rollup"
                      else {"start_s": 0, "end_s": 0})
    statement = with_filters(sql("db_endpoints"), _rollup_filters(service, db_system), "/*ROLLUP_FILTERS*/")
    statement = with_filters(statement, _raw_filters(service, db_system, parameters))
    return statement, parameters


@router.get("/db/calls", response_model=DbCalls,
            summary="Database statements (normalized) with latency, errors and the endpoints that issue them")
def db_calls(
    client: Store,
    settings: Settings,
    window: Window,
    service: Annotated[str | None, Query(max_length=512)] = None,
    db_system: Annotated[str | None, Query(max_length=128, description="e.g. postgresql, mysql, redis")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DbCalls:
    parameters: dict[str, Any] = {**seconds_params(window.start_ns, window.end_ns), "limit": limit}
    fragments = []
    if service:
        fragments.append("AND ServiceName = {service:String}")
        parameters["service"] = service
    if db_system:
        fragments.append("AND DbSystem = {db_system:String}")
        parameters["db_system"] = db_system
    rows = fetch(client, with_filters(sql("db_calls"), fragments), parameters)
    endpoints: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    if rows:
        for row in fetch(client, *_endpoint_query(client, settings, window, service, db_system)):
            endpoints[(row["service"], row["statement"])].append((row["endpoint"], int(row["calls"])))
    statements = []
    for row in rows:
        calls, errors = int(row["calls"]), int(row["errors"])
        q = list(row["quantiles"]) + [None, None, None]
        issued = sorted(endpoints.get((row["service"], row["statement"]), []), key=lambda item: (-item[1], item[0]))
        statements.append(DbStatement(
            statement=row["statement"], service=row["service"], db_system=row["db_system"], db_name=row["db_name"],
            calls=calls, errors=errors, error_rate=error_rate(errors, calls), p50_ms=ms(q[0]), p95_ms=ms(q[1]),
            p99_ms=ms(q[2]), total_time_ms=round(int(row["total_ns"]) / 1e6, 3),
            example_trace_ids=sorted(row["example_trace_ids"]),
            endpoints=[DbEndpoint(service=row["service"], operation=name, calls=count,
                                  share=round(min(count / calls, 1.0), 6) if calls else 0.0)
                       for name, count in issued]))
    return DbCalls(**window_fields(window), statements=statements)


@router.get("/db/n-plus-one", response_model=NPlusOneReport,
            summary="Traces where one parent span runs the same statement at least K times")
def n_plus_one(
    client: Store,
    settings: Settings,
    window: Window,
    service: Annotated[str | None, Query(max_length=512)] = None,
    db_system: Annotated[str | None, Query(max_length=128)] = None,
    k: Annotated[int | None, Query(ge=2, le=100_000, description="minimum executions per parent span")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NPlusOneReport:
    min_executions = k or settings.n_plus_one_min
    plan = plan_pairs(client, settings, window)
    parameters: dict[str, Any] = dict(plan.pairs.parameters())
    parameters.update(seconds_params(window.start_ns, window.end_ns) if plan.mode == "rollup"
                      else {"start_s": 0, "end_s": 0})
    parameters.update(min_executions=min_executions, max_runs=MAX_RUNS)
    statement = with_filters(sql("n_plus_one"), _rollup_filters(service, db_system), "/*ROLLUP_FILTERS*/")
    statement = with_filters(statement, _raw_filters(service, db_system, parameters))
    runs = [StatementRun(row["trace_id"], row["parent_span_id"], row["service"], row["parent_operation"],
                         row["db_system"], row["statement"], int(row["executions"]))
            for row in fetch(client, statement, parameters)]
    findings = [
        NPlusOneFinding(service=f.service, parent_operation=f.parent_operation, db_system=f.db_system,
                        statement=f.statement, traces=f.traces, occurrences=f.occurrences,
                        executions_per_trace_max=f.max_executions, executions_per_trace_mean=f.mean_executions,
                        example_trace_ids=f.example_trace_ids)
        for f in find_n_plus_one(runs, min_executions=min_executions)[:limit]
    ]
    return NPlusOneReport(**window_fields(window), min_executions=min_executions, findings=findings)
