"""OTLP/JSON bodies -> the protobuf request messages the decoders take.

OTLP/JSON differs from the standard protobuf JSON mapping in one way that matters: trace and span
ids are hex strings, not base64. They are converted here; everything else (lowerCamelCase or
snake_case keys, int64 as strings, enums as numbers) is what `json_format` already accepts, and
unknown fields are ignored as the OTLP specification asks of receivers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


class DecodeError(ValueError):
    """The body is not a valid request; the message says where and why (HTTP 400)."""


def _hex_to_b64(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{where}: expected a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise DecodeError(f"{where}: {value[:64]!r} is not a hex string") from None
    return base64.b64encode(raw).decode()


def _fix_ids(obj: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        for spelling in (key, _snake(key)):
            if spelling in obj and obj[spelling] not in (None, ""):
                obj[spelling] = _hex_to_b64(obj[spelling], f"{where}.{key}")


def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


def _items(obj: dict[str, Any], key: str, where: str) -> list[tuple[str, dict[str, Any]]]:
    value = obj.get(key, obj.get(_snake(key)))
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{where}.{key}: expected an array")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise DecodeError(f"{where}.{key}[{index}]: expected an object")
        out.append((f"{where}.{key}[{index}]", item))
    return out


def _fix_trace_ids(body: dict[str, Any]) -> None:
    for rs_where, rs in _items(body, "resourceSpans", "$"):
        for ss_where, ss in _items(rs, "scopeSpans", rs_where):
            for span_where, span in _items(ss, "spans", ss_where):
                _fix_ids(span, ("traceId", "spanId", "parentSpanId"), span_where)
                for link_where, link in _items(span, "links", span_where):
                    _fix_ids(link, ("traceId", "spanId"), link_where)


_METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def _fix_metric_ids(body: dict[str, Any]) -> None:
    for rm_where, rm in _items(body, "resourceMetrics", "$"):
        for sm_where, sm in _items(rm, "scopeMetrics", rm_where):
            for metric_where, metric in _items(sm, "metrics", sm_where):
                for kind in _METRIC_KINDS:
                    data = metric.get(kind, metric.get(_snake(kind)))
                    if not isinstance(data, dict):
                        continue
                    for point_where, point in _items(data, "dataPoints", f"{metric_where}.{kind}"):
                        for ex_where, exemplar in _items(point, "exemplars", point_where):
                            _fix_ids(exemplar, ("traceId", "spanId"), ex_where)


def parse_json(body: bytes, message_type: type[M], fix_ids: Callable[[dict[str, Any]], None]) -> M:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DecodeError("body must be a JSON object")
    fix_ids(document)
    message = message_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP/JSON {message_type.__name__}: {exc}") from None
    return message


def parse_trace_json(body: bytes, message_type: type[M]) -> M:
    return parse_json(body, message_type, _fix_trace_ids)


def parse_metrics_json(body: bytes, message_type: type[M]) -> M:
    return parse_json(body, message_type, _fix_metric_ids)


def response_json(message: Message) -> bytes:
    """A response message in OTLP/JSON (lowerCamelCase, int64 as strings)."""
    return orjson.dumps(json_format.MessageToDict(message))
