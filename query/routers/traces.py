"""`/traces` (search) and `/traces/{trace_id}` (every span of one trace)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from tracehouse.query.deps import Window
from tracehouse.query.models import SpanDetail, SpanEvent, SpanLink, TraceDetail, TraceList, TraceSummary
from tracehouse.query.routers.common import rfc3339_ns, window_fields
from tracehouse.query.rows import fetch
from tracehouse.query.sqlfiles import sql, with_filters
from tracehouse.query.store import Store
from tracehouse.query.timerange import BadParameter

router = APIRouter(tags=["traces"])

_TRACE_ID = re.compile(r"^(?:[0-9a-fA-F]{16}|[0-9a-fA-F]{32})$")
MAX_ATTRIBUTE_FILTERS = 8


class Status(StrEnum):
    error = "error"
    ok = "ok"


def parse_trace_id(raw: str) -> str:
    """A W3C trace id: 32 hex digits (16-digit Zipkin ids are left-padded), lowercase."""
    if not _TRACE_ID.match(raw) or set(raw) == {"0"}:
        raise BadParameter("trace_id", f"{raw[:80]!r} is not 32 (or 16) hexadecimal digits")
    return raw.lower().rjust(32, "0")


def parse_attribute(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition(":")
    if not sep or not key.strip():
        raise BadParameter("attr", f"{raw[:80]!r} is not key:value")
    return key.strip(), value


@router.get("/traces", response_model=TraceList, summary="Search traces, newest first")
def search_traces(
    client: Store,
    window: Window,
    service: Annotated[str | None, Query(max_length=512, description="a span of this service")] = None,
    operation: Annotated[str | None, Query(max_length=1024, description="a span with this name")] = None,
    min_duration_ms: Annotated[float | None, Query(ge=0, le=1e12, description="matching span at least this long")] = None,
    max_duration_ms: Annotated[float | None, Query(ge=0, le=1e12, description="matching span at most this long")] = None,
    status: Annotated[Status | None, Query(description="error: the matching span failed; ok: it did not")] = None,
    attr: Annotated[list[str] | None, Query(max_length=1024,
                                            description="key:value on the span or its resource; repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> TraceList:
    if min_duration_ms is not None and max_duration_ms is not None and min_duration_ms > max_duration_ms:
        raise BadParameter("min_duration_ms", "must not exceed max_duration_ms")
    fragments: list[str] = []
    parameters: dict[str, Any] = {"start_ns": window.start_ns, "end_ns": window.end_ns, "limit": limit}
    if service:
        fragments.append("AND ServiceName = {service:String}")
        parameters["service"] = service
    if operation:
        fragments.append("AND SpanName = {operation:String}")
        parameters["operation"] = operation
    if min_duration_ms is not None:
        fragments.append("AND Duration >= {min_duration_ns:UInt64}")
        parameters["min_duration_ns"] = int(min_duration_ms * 1_000_000)
    if max_duration_ms is not None:
        fragments.append("AND Duration <= {max_duration_ns:UInt64}")
        parameters["max_duration_ns"] = int(max_duration_ms * 1_000_000)
    if status is Status.error:
        fragments.append("AND StatusCode IN ('Error', 'STATUS_CODE_ERROR')")
    elif status is Status.ok:
        fragments.append("AND StatusCode NOT IN ('Error', 'STATUS_CODE_ERROR')")
    attributes = attr or []
    if len(attributes) > MAX_ATTRIBUTE_FILTERS:
        raise BadParameter("attr", f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters")
    for index, raw in enumerate(attributes):
        key, value = parse_attribute(raw)
        fragments.append(
            f"AND (SpanAttributes[{{attr_key_{index}:String}}] = {{attr_value_{index}:String}} "
            f"OR ResourceAttributes[{{attr_key_{index}:String}}] = {{attr_value_{index}:String}})")
        parameters[f"attr_key_{index}"] = key
        parameters[f"attr_value_{index}"] = value
    matches = fetch(client, with_filters(sql("trace_search"), fragments), parameters)
    trace_ids = [row["trace_id"] for row in matches]
    summaries: list[TraceSummary] = []
    if trace_ids:
        rows = {row["trace_id"]: row for row in fetch(client, sql("trace_summaries"), {"trace_ids": trace_ids})}
        for trace_id in trace_ids:
            row = rows.get(trace_id)
            if row is None:
                continue
            summaries.append(TraceSummary(
                trace_id=trace_id, root_service=row["root_service"], root_operation=row["root_operation"],
                start=rfc3339_ns(row["start_ns"]), start_unix_ms=int(row["start_ns"]) // 1_000_000,
                duration_ms=round(max(int(row["duration_ns"]), 0) / 1e6, 3), span_count=int(row["span_count"]),
                error_count=int(row["error_count"]), services=list(row["services"])))
        summaries.sort(key=lambda s: (-s.start_unix_ms, s.trace_id))
    return TraceList(**window_fields(window), traces=summaries)


@router.get("/traces/{trace_id}", response_model=TraceDetail,
            responses={400: {"description": "malformed trace id"}, 404: {"description": "unknown trace id"}},
            summary="Every span of one trace")
def get_trace(client: Store, trace_id: Annotated[str, Path(max_length=128)]) -> TraceDetail:
    normalized = parse_trace_id(trace_id)
    rows = fetch(client, sql("trace_by_id"), {"trace_id": normalized})
    if not rows:
        raise HTTPException(status_code=404, detail=f"trace {normalized} not found")
    spans = [_span(row) for row in rows]
    start_ns = min(int(row["start_ns"]) for row in rows)
    end_ns = max(int(row["start_ns"]) + int(row["duration_ns"]) for row in rows)
    return TraceDetail(trace_id=normalized, span_count=len(spans),
                       services=sorted({s.service for s in spans}), start=rfc3339_ns(start_ns),
                       duration_ms=round((end_ns - start_ns) / 1e6, 3), spans=spans)


def _span(row: dict[str, Any]) -> SpanDetail:
    events = [SpanEvent(time=rfc3339_ns(t), name=n, attributes=dict(a))
              for t, n, a in zip(row["event_times_ns"], row["event_names"], row["event_attributes"], strict=False)]
    links = [SpanLink(trace_id=t, span_id=s, trace_state=ts, attributes=dict(a))
             for t, s, ts, a in zip(row["link_trace_ids"], row["link_span_ids"], row["link_trace_states"],
                                    row["link_attributes"], strict=False)]
    return SpanDetail(
        span_id=row["span_id"], parent_span_id=row["parent_span_id"], name=row["name"], kind=row["kind"],
        service=row["service"], start=rfc3339_ns(row["start_ns"]), start_unix_ns=int(row["start_ns"]),
        duration_ms=round(int(row["duration_ns"]) / 1e6, 6), status_code=row["status_code"],
        status_message=row["status_message"], trace_state=row["trace_state"], scope_name=row["scope_name"],
        scope_version=row["scope_version"], attributes=dict(row["attributes"]),
        resource_attributes=dict(row["resource_attributes"]), events=events, links=links)
