"""The raw tables the collector writes, column by column with their ClickHouse types.

These are the OpenTelemetry Collector ClickHouse exporter's tables (schemas/00*.sql); the types are
what the Native encoding needs, and a test checks them against the live schema.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, ClickHouse type)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def column_types(self) -> tuple[str, ...]:
        return tuple(kind for _, kind in self.columns)


ATTRS = "Map(LowCardinality(String), String)"
NS = "DateTime64(9)"

TRACES = Table("otel_traces", (
    ("Timestamp", NS), ("TraceId", "String"), ("SpanId", "String"), ("ParentSpanId", "String"),
    ("TraceState", "String"), ("SpanName", "LowCardinality(String)"), ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"), ("ResourceAttributes", ATTRS), ("ScopeName", "String"),
    ("ScopeVersion", "String"), ("SpanAttributes", ATTRS), ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"), ("StatusMessage", "String"),
    ("Events.Timestamp", f"Array({NS})"), ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", f"Array({ATTRS})"), ("Links.TraceId", "Array(String)"), ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"), ("Links.Attributes", f"Array({ATTRS})"),
))

_METRIC_HEAD = (
    ("ResourceAttributes", ATTRS), ("ResourceSchemaUrl", "String"), ("ScopeName", "String"),
    ("ScopeVersion", "String"), ("ScopeAttributes", ATTRS), ("ScopeDroppedAttrCount", "UInt32"),
    ("ScopeSchemaUrl", "String"), ("ServiceName", "LowCardinality(String)"), ("MetricName", "String"),
    ("MetricDescription", "String"), ("MetricUnit", "String"), ("Attributes", ATTRS), ("StartTimeUnix", NS),
    ("TimeUnix", NS),
)
_EXEMPLARS = (
    ("Exemplars.FilteredAttributes", f"Array({ATTRS})"), ("Exemplars.TimeUnix", f"Array({NS})"),
    ("Exemplars.Value", "Array(Float64)"), ("Exemplars.SpanId", "Array(String)"),
    ("Exemplars.TraceId", "Array(String)"),
)
_MIN_MAX_TEMPORALITY = (("Flags", "UInt32"), ("Min", "Float64"), ("Max", "Float64"),
                        ("AggregationTemporality", "Int32"))

GAUGE = Table("otel_metrics_gauge", _METRIC_HEAD + (("Value", "Float64"), ("Flags", "UInt32")) + _EXEMPLARS)
SUM = Table("otel_metrics_sum", GAUGE.columns + (("AggregationTemporality", "Int32"), ("IsMonotonic", "Bool")))
HISTOGRAM = Table("otel_metrics_histogram", _METRIC_HEAD + (
    ("Count", "UInt64"), ("Sum", "Float64"), ("BucketCounts", "Array(UInt64)"), ("ExplicitBounds", "Array(Float64)"),
) + _EXEMPLARS + _MIN_MAX_TEMPORALITY)
EXPONENTIAL_HISTOGRAM = Table("otel_metrics_exponential_histogram", _METRIC_HEAD + (
    ("Count", "UInt64"), ("Sum", "Float64"), ("Scale", "Int32"), ("ZeroCount", "UInt64"), ("PositiveOffset", "Int32"),
    ("PositiveBucketCounts", "Array(UInt64)"), ("NegativeOffset", "Int32"), ("NegativeBucketCounts", "Array(UInt64)"),
) + _EXEMPLARS + _MIN_MAX_TEMPORALITY)
SUMMARY = Table("otel_metrics_summary", _METRIC_HEAD + (
    ("Count", "UInt64"), ("Sum", "Float64"), ("ValueAtQuantiles.Quantile", "Array(Float64)"),
    ("ValueAtQuantiles.Value", "Array(Float64)"), ("Flags", "UInt32"),
))

ALL_TABLES = {table.name: table for table in (TRACES, GAUGE, SUM, HISTOGRAM, EXPONENTIAL_HISTOGRAM, SUMMARY)}
