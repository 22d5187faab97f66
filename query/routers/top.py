"""`/top`: the N services, operations, database statements or edges ranked by a measure."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query

from tracehouse.query.analysis.percentiles import error_rate, ms
from tracehouse.query.analysis.ranking import top_n
from tracehouse.query.deps import Settings, Window
from tracehouse.query.graphs import load_edges
from tracehouse.query.models import TopEntry, TopList
from tracehouse.query.routers.common import window_fields
from tracehouse.query.rows import fetch, seconds_params
from tracehouse.query.sqlfiles import sql, with_filters
from tracehouse.query.store import Store

router = APIRouter(tags=["top"])

MAX_DB_STATEMENTS = 100_000


class By(StrEnum):
    calls = "calls"
    p99 = "p99"
    error_rate = "error_rate"
    errors = "errors"
    total_time = "total_time"


class Entity(StrEnum):
    service = "service"
    operation = "operation"
    db_statement = "db_statement"
    edge = "edge"


def _entry(name: str, calls: int, errors: int, total_ns: int, quantiles: list[Any], **extra: Any) -> TopEntry:
    q = list(quantiles) + [None, None, None]
    return TopEntry(name=name, calls=calls, errors=errors, error_rate=error_rate(errors, calls),
                    p50_ms=ms(q[0]) if calls else None, p95_ms=ms(q[1]) if calls else None,
                    p99_ms=ms(q[2]) if calls else None, total_time_ms=round(total_ns / 1e6, 3), value=None, **extra)


def _value(entry: TopEntry, by: By) -> float | None:
    if by is By.calls:
        return float(entry.calls)
    if by is By.errors:
        return float(entry.errors)
    if by is By.error_rate:
        return entry.error_rate
    if by is By.total_time:
        return entry.total_time_ms
    return entry.p99_ms


@router.get("/top", response_model=TopList, summary="TOP-N services, operations, statements or edges")
def top(
    client: Store,
    settings: Settings,
    window: Window,
    by: Annotated[By, Query(description="the measure ranked by")] = By.calls,
    entity: Annotated[Entity, Query(description="what is ranked")] = Entity.service,
    n: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> TopList:
    bounds = seconds_params(window.start_ns, window.end_ns)
    entries: list[TopEntry] = []
    if entity is Entity.service:
        for row in fetch(client, sql("top_services"), bounds):
            if int(row["calls"]):
                entries.append(_entry(row["service"], int(row["calls"]), int(row["errors"]), int(row["total_ns"]),
                                      row["quantiles"], service=row["service"]))
    elif entity is Entity.operation:
        for row in fetch(client, sql("top_operations"), bounds):
            entries.append(_entry(f"{row['service']}: {row['operation']}", int(row["calls"]), int(row["errors"]),
                                  int(row["total_ns"]), row["quantiles"], service=row["service"],
                                  operation=row["operation"]))
    elif entity is Entity.db_statement:
        statement = with_filters(sql("db_calls"), [])
        for row in fetch(client, statement, {**bounds, "limit": MAX_DB_STATEMENTS}):
            entries.append(_entry(row["statement"], int(row["calls"]), int(row["errors"]), int(row["total_ns"]),
                                  row["quantiles"], service=row["service"], db_system=row["db_system"]))
    else:
        for edge in load_edges(client, settings, window, examples=False, backends=False).edges:
            entries.append(TopEntry(name=f"{edge.source} -> {edge.target}", source=edge.source, target=edge.target,
                                    calls=edge.calls, errors=edge.errors, error_rate=edge.error_rate,
                                    p50_ms=edge.p50_ms, p95_ms=edge.p95_ms, p99_ms=edge.p99_ms,
                                    total_time_ms=round(edge.total_ns / 1e6, 3), value=None))
    ranked = top_n(entries, value=lambda e: _value(e, by), name=lambda e: e.name, n=n)
    items = [e.model_copy(update={"value": _value(e, by)}) for e in ranked]
    return TopList(**window_fields(window), by=by.value, entity=entity.value, items=items)
