"""OTLP trace requests -> `otel_traces` column batches (the ClickHouse exporter's row layout)."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracehouse.collector.attributes import attributes_map
from tracehouse.collector.batch import Decoded
from tracehouse.collector.tables import TRACES

TRACES_TABLE = TRACES.name
TRACE_COLUMNS: tuple[str, ...] = TRACES.column_names

# Spelled as the current exporter writes them (ptrace.SpanKind.String / StatusCode.String).
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
_ZERO_TRACE_ID = bytes(16)
MAX_TIMESTAMP_NS = 2**63 - 1  # DateTime64(9) is stored as Int64 nanoseconds
_ZERO_SPAN_ID = bytes(8)


@dataclass(frozen=True)
class DecodeLimits:
    max_attributes: int = 1024  # per span, resource, event or link; the rest are dropped and reported
    max_events: int = 1024
    max_links: int = 1024


DEFAULT_LIMITS = DecodeLimits()


def decode_traces(request: ExportTraceServiceRequest, limits: DecodeLimits = DEFAULT_LIMITS) -> Decoded:
    """Flattens resource -> scope -> span into columns. Spans with invalid ids are rejected one by
    one (counted for partial_success); everything else in the request is kept."""
    decoded = Decoded()
    batch = decoded.batch(TRACES_TABLE, TRACE_COLUMNS)
    (c_ts, c_trace, c_span, c_parent, c_state, c_name, c_kind, c_service, c_res, c_scope,
     c_scope_v, c_attrs, c_dur, c_status, c_status_msg, c_ev_ts, c_ev_name, c_ev_attrs,
     c_ln_trace, c_ln_span, c_ln_state, c_ln_attrs) = batch.data
    max_attrs = limits.max_attributes
    dropped_attrs = 0
    for resource_spans in request.resource_spans:
        resource_attrs, dropped = attributes_map(resource_spans.resource.attributes, max_attrs)
        dropped_attrs += dropped
        service = resource_attrs.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for index, span in enumerate(scope_spans.spans):
                trace_id = span.trace_id
                span_id = span.span_id
                parent_id = span.parent_span_id
                start_ns = span.start_time_unix_nano
                end_ns = span.end_time_unix_nano
                problem = _id_problem(trace_id, span_id, parent_id) or _time_problem(start_ns, end_ns)
                if problem:
                    decoded.rejected += 1
                    decoded.note(f"span {index} ({span.name!r}) rejected: {problem}")
                    continue
                attrs, dropped = attributes_map(span.attributes, max_attrs)
                dropped_attrs += dropped
                c_ts.append(start_ns)
                c_trace.append(trace_id.hex())
                c_span.append(span_id.hex())
                c_parent.append(parent_id.hex())
                c_state.append(span.trace_state)
                c_name.append(span.name)
                kind = span.kind
                c_kind.append(SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified")
                c_service.append(service)
                c_res.append(resource_attrs)
                c_scope.append(scope_name)
                c_scope_v.append(scope_version)
                c_attrs.append(attrs)
                c_dur.append(end_ns - start_ns if end_ns > start_ns else 0)
                status = span.status
                code = status.code
                c_status.append(STATUS_CODES[code] if 0 <= code < 3 else "Unset")
                c_status_msg.append(status.message)
                events = span.events
                if events:
                    kept = events[: limits.max_events]
                    c_ev_ts.append([min(e.time_unix_nano, MAX_TIMESTAMP_NS) for e in kept])
                    c_ev_name.append([e.name for e in kept])
                    c_ev_attrs.append([attributes_map(e.attributes, max_attrs)[0] for e in kept])
                else:
                    c_ev_ts.append([])
                    c_ev_name.append([])
                    c_ev_attrs.append([])
                links = span.links
                if links:
                    kept_links = links[: limits.max_links]
                    c_ln_trace.append([link.trace_id.hex() for link in kept_links])
                    c_ln_span.append([link.span_id.hex() for link in kept_links])
                    c_ln_state.append([link.trace_state for link in kept_links])
                    c_ln_attrs.append([attributes_map(link.attributes, max_attrs)[0] for link in kept_links])
                else:
                    c_ln_trace.append([])
                    c_ln_span.append([])
                    c_ln_state.append([])
                    c_ln_attrs.append([])
    decoded.accepted = batch.rows
    if dropped_attrs:
        decoded.note(f"{dropped_attrs} attributes dropped over the limit of {max_attrs} per span or resource")
    return decoded


def _id_problem(trace_id: bytes, span_id: bytes, parent_id: bytes) -> str | None:
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        return f"trace_id must be 16 bytes and not all zero, got {len(trace_id)} bytes"
    if len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        return f"span_id must be 8 bytes and not all zero, got {len(span_id)} bytes"
    if parent_id and len(parent_id) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(parent_id)} bytes"
    return None


def _time_problem(start_ns: int, end_ns: int) -> str | None:
    if start_ns > MAX_TIMESTAMP_NS or end_ns > MAX_TIMESTAMP_NS:
        return "start or end time is past the year 2262, beyond what DateTime64(9) holds"
    return None
