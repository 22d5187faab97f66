"""Zipkin v2 JSON spans -> `otel_traces` rows, mapped as the OpenTelemetry Collector's Zipkin receiver does:
localEndpoint.serviceName -> ServiceName, kind, tags -> SpanAttributes, annotations -> Events,
remoteEndpoint -> peer attributes, the `error` tag -> StatusCode Error."""

from __future__ import annotations

from typing import Any

import orjson

from tracehouse.collector.batch import Decoded
from tracehouse.collector.otlp_json import DecodeError
from tracehouse.collector.traces import MAX_TIMESTAMP_NS, TRACE_COLUMNS, TRACES_TABLE

_KINDS = {"SERVER": "Server", "CLIENT": "Client", "PRODUCER": "Producer", "CONSUMER": "Consumer"}
_HEX = set("0123456789abcdefABCDEF")


def _hex_id(value: Any, lengths: tuple[int, ...], field: str) -> str:
    if not isinstance(value, str) or len(value) not in lengths or not set(value) <= _HEX:
        raise DecodeError(f"{field} must be {' or '.join(map(str, lengths))} hex characters, got {str(value)[:40]!r}")
    text = value.lower()
    if set(text) == {"0"}:
        raise DecodeError(f"{field} must not be all zeros")
    return text


def _micros(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DecodeError(f"{field} must be a non-negative number of microseconds")
    nanos = int(value) * 1000
    if nanos > MAX_TIMESTAMP_NS:
        raise DecodeError(f"{field} is past the year 2262")
    return nanos


def _tags(value: Any, field: str, limit: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f"{field} must be an object of string values")
    out: dict[str, str] = {}
    for key, item in list(value.items())[:limit]:
        out[str(key)] = item if isinstance(item, str) else orjson.dumps(item).decode()
    return out


def _endpoint(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f"{field} must be an object")
    return value


def decode_zipkin(body: bytes, max_attributes: int = 1024) -> Decoded:
    """All spans of a Zipkin v2 JSON array, or DecodeError naming the first bad one."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, list):
        raise DecodeError("body must be a JSON array of Zipkin v2 spans")
    decoded = Decoded()
    batch = decoded.batch(TRACES_TABLE, TRACE_COLUMNS)
    for index, span in enumerate(document):
        where = f"span {index}"
        if not isinstance(span, dict):
            raise DecodeError(f"{where}: expected an object")
        row = _row(span, where, max_attributes)
        for column, value in zip(batch.data, row, strict=True):
            column.append(value)
    decoded.accepted = batch.rows
    return decoded


def _row(span: dict[str, Any], where: str, limit: int) -> tuple[Any, ...]:
    trace_id = _hex_id(span.get("traceId"), (16, 32), f"{where}.traceId").rjust(32, "0")
    span_id = _hex_id(span.get("id"), (16,), f"{where}.id")
    parent = span.get("parentId")
    parent_id = _hex_id(parent, (16,), f"{where}.parentId") if parent else ""
    start_ns = _micros(span.get("timestamp"), f"{where}.timestamp")
    duration_ns = _micros(span.get("duration"), f"{where}.duration")
    local = _endpoint(span.get("localEndpoint"), f"{where}.localEndpoint")
    remote = _endpoint(span.get("remoteEndpoint"), f"{where}.remoteEndpoint")
    service = str(local.get("serviceName") or "")
    attributes = _tags(span.get("tags"), f"{where}.tags", limit)
    status_code, status_message = "Unset", ""
    if "error" in attributes:
        status_code, status_message = "Error", attributes.pop("error")
    if remote.get("serviceName"):
        attributes["peer.service"] = str(remote["serviceName"])
    if remote.get("ipv4") or remote.get("ipv6"):
        attributes["network.peer.address"] = str(remote.get("ipv4") or remote.get("ipv6"))
    if remote.get("port"):
        attributes["network.peer.port"] = str(remote["port"])
    resource = {"service.name": service}
    if local.get("ipv4") or local.get("ipv6"):
        resource["host.ip"] = str(local.get("ipv4") or local.get("ipv6"))
    annotations = span.get("annotations") or []
    if not isinstance(annotations, list):
        raise DecodeError(f"{where}.annotations must be an array")
    event_times, event_names = [], []
    for position, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise DecodeError(f"{where}.annotations[{position}] must be an object")
        event_times.append(_micros(annotation.get("timestamp"), f"{where}.annotations[{position}].timestamp"))
        event_names.append(str(annotation.get("value", "")))
    kind = _KINDS.get(str(span.get("kind") or "").upper(), "Internal")
    return (
        start_ns, trace_id, span_id, parent_id, "", str(span.get("name") or ""), kind, service, resource,
        "zipkin", "", attributes, duration_ns, status_code, status_message,
        event_times, event_names, [{} for _ in event_names], [], [], [], [],
    )
