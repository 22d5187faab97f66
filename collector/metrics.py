"""OTLP metric requests -> column batches for the exporter's otel_metrics_* tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Exemplar, Metric

from tracehouse.collector.attributes import attributes_map
from tracehouse.collector.batch import ColumnBatch, Decoded
from tracehouse.collector.tables import EXPONENTIAL_HISTOGRAM, GAUGE, HISTOGRAM, SUM, SUMMARY
from tracehouse.collector.traces import MAX_TIMESTAMP_NS

TABLES = {kind: (table.name, table.column_names) for kind, table in (
    ("gauge", GAUGE), ("sum", SUM), ("histogram", HISTOGRAM), ("exponential_histogram", EXPONENTIAL_HISTOGRAM),
    ("summary", SUMMARY))}


def _exemplar_columns(exemplars: Iterable[Exemplar], limit: int) -> list[list[Any]]:
    attrs, times, values, span_ids, trace_ids = [], [], [], [], []
    for exemplar in exemplars:
        attrs.append(attributes_map(exemplar.filtered_attributes, limit)[0])
        times.append(min(exemplar.time_unix_nano, MAX_TIMESTAMP_NS))
        kind = exemplar.WhichOneof("value")
        values.append(float(exemplar.as_int) if kind == "as_int" else exemplar.as_double)
        span_ids.append(exemplar.span_id.hex())
        trace_ids.append(exemplar.trace_id.hex())
    return [attrs, times, values, span_ids, trace_ids]


def _append(batch: ColumnBatch, values: Iterable[Any]) -> None:
    for column, value in zip(batch.data, values, strict=True):
        column.append(value)


def decode_metrics(request: ExportMetricsServiceRequest, max_attributes: int = 1024) -> Decoded:
    """One row per data point, in the table of its metric type."""
    decoded = Decoded()
    for resource_metrics in request.resource_metrics:
        resource_attrs, _ = attributes_map(resource_metrics.resource.attributes, max_attributes)
        service = resource_attrs.get("service.name", "")
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scope_attrs, _ = attributes_map(scope.attributes, max_attributes)
            head = (resource_attrs, resource_metrics.schema_url, scope.name, scope.version, scope_attrs,
                    scope.dropped_attributes_count, scope_metrics.schema_url, service)
            for metric in scope_metrics.metrics:
                _decode_metric(decoded, head, metric, max_attributes)
    decoded.accepted = sum(b.rows for b in decoded.batches.values())
    return decoded


def _time(ns: int) -> int:
    return ns if ns <= MAX_TIMESTAMP_NS else MAX_TIMESTAMP_NS


def _decode_metric(decoded: Decoded, head: tuple[Any, ...], metric: Metric, limit: int) -> None:
    kind = metric.WhichOneof("data")
    if kind is None:
        decoded.note(f"metric {metric.name!r} has no data; skipped")
        return
    table, columns = TABLES[kind]
    batch = decoded.batch(table, columns)
    described = head + (metric.name, metric.description, metric.unit)
    data = getattr(metric, kind)
    for point in data.data_points:
        common = described + (attributes_map(point.attributes, limit)[0], _time(point.start_time_unix_nano),
                              _time(point.time_unix_nano))
        if kind in ("gauge", "sum"):
            value = float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double
            row: tuple[Any, ...] = common + (value, point.flags) + tuple(_exemplar_columns(point.exemplars, limit))
            if kind == "sum":
                row += (data.aggregation_temporality, data.is_monotonic)
        elif kind == "histogram":
            row = common + (point.count, point.sum, list(point.bucket_counts), list(point.explicit_bounds)) + tuple(
                _exemplar_columns(point.exemplars, limit)) + (point.flags, point.min, point.max,
                                                               data.aggregation_temporality)
        elif kind == "exponential_histogram":
            row = common + (point.count, point.sum, point.scale, point.zero_count, point.positive.offset,
                            list(point.positive.bucket_counts), point.negative.offset,
                            list(point.negative.bucket_counts)) + tuple(
                _exemplar_columns(point.exemplars, limit)) + (point.flags, point.min, point.max,
                                                               data.aggregation_temporality)
        else:  # summary
            row = common + (point.count, point.sum, [q.quantile for q in point.quantile_values],
                            [q.value for q in point.quantile_values], point.flags)
        _append(batch, row)
