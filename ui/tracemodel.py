"""A trace as the waterfall shows it: spans nested by parent in start order, and its critical path.

Pure functions over the JSON of `GET /api/v1/traces/{trace_id}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracehouse.ui.data import first, num, rows, text, to_ns

MAX_DEPTH = 300  # deeper nesting is drawn flat, so a malformed trace cannot exhaust the stack


@dataclass
class Span:
    span_id: str
    parent_id: str
    service: str
    name: str
    kind: str
    start_ns: int
    duration_ns: int
    is_error: bool
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    depth: int = 0
    children: list[Span] = field(default_factory=list)
    orphan: bool = False  # its parent is not in the trace (not arrived yet, or lost)

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns


@dataclass(frozen=True)
class Segment:
    span_id: str
    start_ns: int
    end_ns: int


@dataclass
class Trace:
    trace_id: str
    spans: list[Span]  # depth-first, children in start order
    start_ns: int
    end_ns: int
    critical_path: list[Segment]

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def services(self) -> list[str]:
        return sorted({s.service for s in self.spans})

    @property
    def error_count(self) -> int:
        return sum(1 for s in self.spans if s.is_error)

    @property
    def critical_span_ids(self) -> set[str]:
        return {seg.span_id for seg in self.critical_path}


def _is_error(row: Mapping[str, Any]) -> bool:
    status = str(first(row, "status_code", "status", "StatusCode", default="")).lower()
    if "error" in status:
        return True
    flag = row.get("error", row.get("is_error"))
    return bool(flag) if isinstance(flag, bool) else False


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):  # [{"key": k, "value": v}] spelling
        out: dict[str, Any] = {}
        for item in value:
            if isinstance(item, Mapping) and "key" in item:
                out[str(item["key"])] = item.get("value")
        return out
    return {}


def parse_span(row: Mapping[str, Any]) -> Span | None:
    span_id = text(row, "span_id", "spanId", "SpanId")
    if not span_id:
        return None
    start_ns = to_ns(first(row, "start_unix_ns", "start_ns", "start_time_unix_nano", "start", "start_time", "timestamp",
                           "Timestamp"))
    duration_ns = num(row, "duration_ns", "Duration")
    if duration_ns is None:
        duration_ms = num(row, "duration_ms")
        duration_ns = duration_ms * 1e6 if duration_ms is not None else None
    if duration_ns is None:
        end_ns = to_ns(first(row, "end_ns", "end", "end_time"))
        duration_ns = float(end_ns - start_ns) if end_ns is not None and start_ns is not None else 0.0
    return Span(
        span_id=span_id,
        parent_id=text(row, "parent_span_id", "parent_id", "parentSpanId", "ParentSpanId"),
        service=text(row, "service", "service_name", "ServiceName", default="unknown"),
        name=text(row, "name", "operation", "span_name", "SpanName", default="(unnamed)"),
        kind=text(row, "kind", "span_kind", "SpanKind"),
        start_ns=start_ns or 0,
        duration_ns=max(0, int(duration_ns)),
        is_error=_is_error(row),
        status_message=text(row, "status_message", "StatusMessage"),
        attributes=_as_dict(first(row, "attributes", "span_attributes", "SpanAttributes", default={})),
        resource=_as_dict(first(row, "resource", "resource_attributes", "ResourceAttributes", default={})),
        events=rows(first(row, "events", default=[])),
        links=rows(first(row, "links", default=[])),
    )


def build_trace(data: Any, trace_id: str = "") -> Trace:
    """Spans nested by parent. Spans whose parent is missing are shown as extra roots."""
    parsed = [s for s in (parse_span(r) for r in rows(data, "spans")) if s is not None]
    if isinstance(data, Mapping):
        trace_id = text(data, "trace_id", "traceId", default=trace_id)
    by_id: dict[str, Span] = {}
    for span in parsed:
        by_id.setdefault(span.span_id, span)  # a duplicated span id keeps its first copy
    spans = list(by_id.values())
    roots: list[Span] = []
    for span in spans:
        parent = by_id.get(span.parent_id) if span.parent_id and span.parent_id != span.span_id else None
        if parent is None:
            span.orphan = bool(span.parent_id)
            roots.append(span)
        else:
            parent.children.append(span)
    ordered: list[Span] = []
    seen: set[str] = set()
    # Parent links that loop never reach a root; they are appended flat at the end.
    stack: list[tuple[Span, int]] = [(r, 0) for r in sorted(roots, key=_order, reverse=True)]
    while stack:
        span, depth = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        span.depth = min(depth, MAX_DEPTH)
        ordered.append(span)
        for child in sorted(span.children, key=_order, reverse=True):
            stack.append((child, depth + 1))
    for span in spans:
        if span.span_id not in seen:
            span.orphan = True
            ordered.append(span)
    if not ordered:
        return Trace(trace_id, [], 0, 0, [])
    start_ns = min(s.start_ns for s in ordered)
    end_ns = max(s.end_ns for s in ordered)
    main_root = min((r for r in roots if not r.orphan), key=_order, default=None) or (
        min(roots, key=_order) if roots else ordered[0])
    return Trace(trace_id, ordered, start_ns, end_ns, critical_path(main_root))


def _order(span: Span) -> tuple[int, str]:
    return (span.start_ns, span.span_id)


def critical_path(root: Span) -> list[Segment]:
    """The chain of work that decides the trace's end-to-end time.

    Walking back from the end of a span: the child that finished last (before the cursor) is on
    the path; the time between that child's end and the cursor is the span's own work; then the
    cursor moves to that child's start and the search repeats. This is the usual definition
    (as described for Jaeger's and Uber's critical-path views); segments are returned in time order.
    """
    segments: list[Segment] = []
    _walk(root, root.end_ns, segments, 0)
    return sorted(segments, key=lambda s: (s.start_ns, s.end_ns))


def _walk(span: Span, cursor_end: int, out: list[Segment], depth: int) -> None:
    cursor = min(span.end_ns, cursor_end)
    remaining = [c for c in span.children if c.start_ns < cursor] if depth < MAX_DEPTH else []
    while remaining:
        child = max(remaining, key=lambda c: (min(c.end_ns, cursor), c.start_ns))
        child_end = min(child.end_ns, cursor)
        if child_end < cursor:
            out.append(Segment(span.span_id, child_end, cursor))
        _walk(child, child_end, out, depth + 1)
        cursor = max(child.start_ns, span.start_ns)
        remaining = [c for c in remaining if c is not child and c.start_ns < cursor]
    if cursor > span.start_ns:
        out.append(Segment(span.span_id, span.start_ns, cursor))
