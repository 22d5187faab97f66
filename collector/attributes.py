"""OTLP attribute values -> the text form the ClickHouse exporter stores in Map(String, String) columns.

Scalars become their text (`true`, `42`, `3.5`), bytes become base64, arrays and key-value lists
become JSON, as the OpenTelemetry Collector's `pcommon.Value.AsString` does.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _plain(value: AnyValue) -> Any:
    """A JSON-ready Python value for nested arrays and maps."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else float_text(number)
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def value_text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return float_text(value.double_value)
    if kind is None:
        return ""
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return orjson.dumps(_plain(value)).decode()


def attributes_map(key_values: Iterable[KeyValue], limit: int) -> tuple[dict[str, str], int]:
    """The attributes as a dict, and how many were dropped for going over `limit`."""
    out: dict[str, str] = {}
    dropped = 0
    for kv in key_values:
        if len(out) >= limit:
            dropped += 1
            continue
        value = kv.value
        # Inline fast path for the common case: string values.
        if value.WhichOneof("value") == "string_value":
            out[kv.key] = value.string_value
        else:
            out[kv.key] = value_text(value)
    return out, dropped
