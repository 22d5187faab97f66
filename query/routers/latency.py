"""`/latency`: percentiles, a log-spaced histogram and a percentile time series."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tracehouse.query.analysis.percentiles import SKETCH_RELATIVE_ACCURACY, histogram, ms
from tracehouse.query.deps import Window
from tracehouse.query.models import Latency, LatencyBucket, LatencyPoint
from tracehouse.query.routers.common import rfc3339_ns, window_fields
from tracehouse.query.rows import fetch, seconds_params
from tracehouse.query.sqlfiles import sql, with_filters
from tracehouse.query.store import Store
from tracehouse.query.timerange import BadParameter

router = APIRouter(tags=["latency"])

MAX_POINTS = 120


def default_step_s(window_s: float) -> int:
    """A whole number of minutes giving at most MAX_POINTS points."""
    minutes = max(1, -(-int(window_s) // (60 * MAX_POINTS)))
    return minutes * 60


@router.get("/latency", response_model=Latency,
            summary="Latency distribution: percentiles, histogram, and p50/p95/p99 over time")
def latency(
    client: Store,
    window: Window,
    service: Annotated[str | None, Query(max_length=512)] = None,
    operation: Annotated[str | None, Query(max_length=1024,
                                           description="spans of this name; without it, entry spans")] = None,
    step_s: Annotated[int | None, Query(ge=60, le=86400, description="series interval, whole minutes")] = None,
) -> Latency:
    if step_s is not None and step_s % 60:
        raise BadParameter("step_s", "must be a whole number of minutes (a multiple of 60)")
    step = step_s or default_step_s(window.seconds)
    base: dict[str, Any] = seconds_params(window.start_ns, window.end_ns)
    fragments: list[str] = []
    if service:
        fragments.append("AND ServiceName = {service:String}")
        base["service"] = service
    if operation:
        fragments.append("AND SpanName = {operation:String}")
        base["operation"] = operation
    chosen = fragments if operation else [*fragments, "AND IsEntry = 1"]
    summary = fetch(client, with_filters(sql("latency_summary"), chosen), base)[0]
    if not operation and int(summary["calls"]) == 0:
        chosen = fragments  # a service without entry spans: all of its spans
        summary = fetch(client, with_filters(sql("latency_summary"), chosen), base)[0]
    series = fetch(client, with_filters(sql("latency_series"), chosen), {**base, "step_s": step})
    calls = int(summary["calls"])
    quantiles = list(summary["quantiles"]) if calls else [None] * 6
    keys, counts = summary["histogram"]
    points = []
    for row in series:
        q = list(row["quantiles"]) + [None, None, None]
        points.append(LatencyPoint(time=rfc3339_ns(int(row["bucket_s"]) * 1_000_000_000),
                                   unix_ms=int(row["bucket_s"]) * 1000, calls=int(row["calls"]),
                                   errors=int(row["errors"]), p50_ms=ms(q[0]), p95_ms=ms(q[1]), p99_ms=ms(q[2])))
    return Latency(
        **window_fields(window), service=service, operation=operation, count=calls,
        min_ms=ms(int(summary["min_ns"]) / 1e6) if calls else None,
        max_ms=ms(int(summary["max_ns"]) / 1e6) if calls else None,
        mean_ms=ms(int(summary["sum_ns"]) / calls / 1e6) if calls else None,
        p50_ms=ms(quantiles[0]), p75_ms=ms(quantiles[1]), p90_ms=ms(quantiles[2]), p95_ms=ms(quantiles[3]),
        p99_ms=ms(quantiles[4]), p999_ms=ms(quantiles[5]),
        relative_accuracy=SKETCH_RELATIVE_ACCURACY,
        histogram=[LatencyBucket(lower_ms=b.lower_ms, upper_ms=b.upper_ms, count=b.count)
                   for b in histogram(zip(keys, counts, strict=False))],
        step_s=step, series=points)
