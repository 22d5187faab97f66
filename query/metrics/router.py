"""`/api/v1/metrics`, `/api/v1/metrics/query`, `/api/v1/hosts`, `/api/v1/middleware`,
`/api/v1/services/{service}/correlated`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from tracehouse.query.metrics import service as metrics_service
from tracehouse.query.metrics.models import (
    Correlated,
    HostList,
    MetricCatalogue,
    MetricQueryResult,
    MiddlewareList,
)
from tracehouse.query.metrics.params import BadParameter, parse_attrs, parse_step, window
from tracehouse.query.store import Store

router = APIRouter(prefix="/api/v1", tags=["metrics"])

Start = Annotated[str | None, Query(description="RFC 3339 or Unix milliseconds")]
End = Annotated[str | None, Query(description="RFC 3339 or Unix milliseconds; default now")]
Step = Annotated[str | None, Query(description="30s, 5m, 1h or seconds; default about 120 steps")]


def _bad(exc: Exception) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


@router.get("/metrics", response_model=MetricCatalogue)
def list_metrics(client: Store, start: Start = None, end: End = None,
                 service: Annotated[str, Query(description="only metrics this service reports")] = "",
                 host: Annotated[str, Query(description="only metrics reported from this host.name")] = "",
                 prefix: Annotated[str, Query(description="metric name prefix, e.g. redis.")] = "") -> MetricCatalogue:
    """Metric names with type, unit, and the services and hosts that report them (default: last 24 h)."""
    try:
        win = window(start, end, default_s=86_400)
    except BadParameter as exc:
        raise _bad(exc) from None
    return metrics_service.catalogue(client, win, service=service, host=host, prefix=prefix)


@router.get("/metrics/query", response_model=MetricQueryResult)
def query_metric(client: Store, name: Annotated[str, Query(min_length=1, description="metric name")],
                 start: Start = None, end: End = None, step: Step = None,
                 agg: Annotated[Literal["avg", "max", "min", "sum", "rate", "p99"] | None,
                                Query(description="default: rate for counters, p99 for histograms, "
                                                  "avg otherwise")] = None,
                 attr: Annotated[list[str] | None, Query(description="key:value, repeatable; matches point "
                                                                     "or resource attributes")] = None,
                 group_by: Annotated[list[str] | None, Query(description="attribute keys that split the "
                                                                         "result into series, repeatable")] = None,
                 ) -> MetricQueryResult:
    """A metric as time series on aligned steps (default: last hour). Counters become per-second
    rates, with resets (a restarted process or server) counted as starting again from zero.
    Explicit-bucket histograms give p99 (from the merged buckets), avg, sum or rate."""
    try:
        win = window(start, end, default_s=3600)
        step_s = parse_step(step, win.seconds)
        filters = parse_attrs(attr)
        return metrics_service.query(client, name=name, win=win, step_s=step_s, agg=agg, filters=filters,
                                     group_by=list(group_by or []))
    except BadParameter as exc:
        raise _bad(exc) from None
    except metrics_service.MetricNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/hosts", response_model=HostList)
def list_hosts(client: Store, start: Start = None, end: End = None) -> HostList:
    """Each host with its latest CPU, memory, disk and network figures and the service instances
    running on it (from host.name; default: last 15 minutes)."""
    try:
        win = window(start, end, default_s=900)
    except BadParameter as exc:
        raise _bad(exc) from None
    return metrics_service.hosts(client, win)


@router.get("/middleware", response_model=MiddlewareList)
def list_middleware(client: Store, start: Start = None, end: End = None) -> MiddlewareList:
    """Each middleware instance read by `tracehouse-agent middleware`: its system and address,
    whether its latest scrape succeeded (`up`) and the share that did in the window
    (default: last 15 minutes)."""
    try:
        win = window(start, end, default_s=900)
    except BadParameter as exc:
        raise _bad(exc) from None
    return metrics_service.middleware(client, win)


@router.get("/services/{service:path}/correlated", response_model=Correlated)
def correlated(client: Store, service: str, start: Start = None, end: End = None, step: Step = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Correlated:
    """The service's p99, p50 and error rate per step, with the metrics of the hosts its instances
    run on and of the middleware it calls, ranked by how strongly each moves with its p99
    (default: last hour)."""
    try:
        win = window(start, end, default_s=3600)
        step_s = parse_step(step, win.seconds, target_steps=60)
        return metrics_service.correlated(client, service, win, step_s, limit=limit)
    except BadParameter as exc:
        raise _bad(exc) from None
    except metrics_service.MetricNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
