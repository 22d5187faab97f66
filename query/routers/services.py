"""`/services` and `/services/{service}/operations`: RED numbers from the per-minute rollup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tracehouse.query.analysis.percentiles import error_rate, ms
from tracehouse.query.deps import Window
from tracehouse.query.graphs import load_services
from tracehouse.query.models import OperationList, OperationSummary, ServiceList, ServiceSummary
from tracehouse.query.routers.common import window_fields
from tracehouse.query.rows import fetch, seconds_params
from tracehouse.query.sqlfiles import sql
from tracehouse.query.store import Store

router = APIRouter(tags=["services"])


@router.get("/services", response_model=ServiceList, summary="Services with calls, error rate and latency")
def list_services(client: Store, window: Window) -> ServiceList:
    services = [
        ServiceSummary(name=s.name, calls=s.calls, errors=s.errors, error_rate=error_rate(s.errors, s.calls),
                       p50_ms=s.p50_ms, p95_ms=s.p95_ms, p99_ms=s.p99_ms, operations=s.operations,
                       instances=list(s.instances), versions=list(s.versions))
        for s in load_services(client, window)
    ]
    return ServiceList(**window_fields(window), services=services)


@router.get("/services/{service}/operations", response_model=OperationList,
            summary="Operations of one service with calls, error rate and latency")
def list_operations(client: Store, window: Window,
                    service: Annotated[str, Path(min_length=1, max_length=512)]) -> OperationList:
    rows = fetch(client, sql("operations"), {"service": service, **seconds_params(window.start_ns, window.end_ns)})
    operations = []
    for row in rows:
        quantiles = list(row["quantiles"]) + [None, None, None]
        calls, errors = int(row["calls"]), int(row["errors"])
        operations.append(OperationSummary(
            name=row["operation"], span_kind=row["span_kind"], calls=calls, errors=errors,
            error_rate=error_rate(errors, calls), p50_ms=ms(quantiles[0]), p95_ms=ms(quantiles[1]),
            p99_ms=ms(quantiles[2]), total_time_ms=round(int(row["total_ns"]) / 1e6, 3)))
    return OperationList(**window_fields(window), service=service, operations=operations)
