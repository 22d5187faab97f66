"""The schema is the OpenTelemetry Collector ClickHouse exporter's, column for column, so the
official collector and Grafana's ClickHouse plugin work on a TraceHouse database."""

from __future__ import annotations

import re

import pytest

from tracehouse import storage

# Column names and types as the exporter's DDL (exporter/clickhouseexporter/internal/sqltemplates) has them.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "otel_traces": [
        ("Timestamp", "DateTime64(9)"), ("TraceId", "String"), ("SpanId", "String"), ("ParentSpanId", "String"),
        ("TraceState", "String"), ("SpanName", "LowCardinality(String)"), ("SpanKind", "LowCardinality(String)"),
        ("ServiceName", "LowCardinality(String)"), ("ResourceAttributes", "Map(LowCardinality(String), String)"),
        ("ScopeName", "String"), ("ScopeVersion", "String"),
        ("SpanAttributes", "Map(LowCardinality(String), String)"), ("Duration", "UInt64"),
        ("StatusCode", "LowCardinality(String)"), ("StatusMessage", "String"),
        ("Events.Timestamp", "Array(DateTime64(9))"), ("Events.Name", "Array(LowCardinality(String))"),
        ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
        ("Links.TraceId", "Array(String)"), ("Links.SpanId", "Array(String)"), ("Links.TraceState", "Array(String)"),
        ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
    ],
    "otel_traces_trace_id_ts": [
        ("TraceId", "String"), ("Start", "SimpleAggregateFunction(min, DateTime)"),
        ("End", "SimpleAggregateFunction(max, DateTime)"),
    ],
}
_METRIC_HEAD = [
    ("ResourceAttributes", "Map(LowCardinality(String), String)"), ("ResourceSchemaUrl", "String"),
    ("ScopeName", "String"), ("ScopeVersion", "String"), ("ScopeAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeDroppedAttrCount", "UInt32"), ("ScopeSchemaUrl", "String"), ("ServiceName", "LowCardinality(String)"),
    ("MetricName", "String"), ("MetricDescription", "String"), ("MetricUnit", "String"),
    ("Attributes", "Map(LowCardinality(String), String)"), ("StartTimeUnix", "DateTime64(9)"),
    ("TimeUnix", "DateTime64(9)"),
]
_EXEMPLARS = [
    ("Exemplars.FilteredAttributes", "Array(Map(LowCardinality(String), String))"),
    ("Exemplars.TimeUnix", "Array(DateTime64(9))"), ("Exemplars.Value", "Array(Float64)"),
    ("Exemplars.SpanId", "Array(String)"), ("Exemplars.TraceId", "Array(String)"),
]
EXPECTED["otel_metrics_gauge"] = _METRIC_HEAD + [("Value", "Float64"), ("Flags", "UInt32")] + _EXEMPLARS
EXPECTED["otel_metrics_sum"] = EXPECTED["otel_metrics_gauge"] + [("AggregationTemporality", "Int32"),
                                                                  ("IsMonotonic", "Bool")]
EXPECTED["otel_metrics_histogram"] = _METRIC_HEAD + [
    ("Count", "UInt64"), ("Sum", "Float64"), ("BucketCounts", "Array(UInt64)"), ("ExplicitBounds", "Array(Float64)"),
] + _EXEMPLARS + [("Flags", "UInt32"), ("Min", "Float64"), ("Max", "Float64"), ("AggregationTemporality", "Int32")]
EXPECTED["otel_metrics_exponential_histogram"] = _METRIC_HEAD + [
    ("Count", "UInt64"), ("Sum", "Float64"), ("Scale", "Int32"), ("ZeroCount", "UInt64"), ("PositiveOffset", "Int32"),
    ("PositiveBucketCounts", "Array(UInt64)"), ("NegativeOffset", "Int32"), ("NegativeBucketCounts", "Array(UInt64)"),
] + _EXEMPLARS + [("Flags", "UInt32"), ("Min", "Float64"), ("Max", "Float64"), ("AggregationTemporality", "Int32")]
EXPECTED["otel_metrics_summary"] = _METRIC_HEAD + [
    ("Count", "UInt64"), ("Sum", "Float64"), ("ValueAtQuantiles.Quantile", "Array(Float64)"),
    ("ValueAtQuantiles.Value", "Array(Float64)"), ("Flags", "UInt32"),
]


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_columns_match_the_exporter(clickhouse: storage.Client, table: str) -> None:
    rows = clickhouse.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String}"
        " ORDER BY position", parameters={"t": table}).result_rows
    assert [(name, kind) for name, kind in rows] == EXPECTED[table]


def test_traces_table_keys_indexes_and_ttl(clickhouse: storage.Client) -> None:
    [(sorting_key, partition_key, primary_key, engine_full)] = clickhouse.query(
        "SELECT sorting_key, partition_key, primary_key, engine_full FROM system.tables"
        " WHERE database = currentDatabase() AND name = 'otel_traces'").result_rows
    assert partition_key == "toDate(Timestamp)"
    assert primary_key == "ServiceName, SpanName, toDateTime(Timestamp)"
    assert sorting_key == "ServiceName, SpanName, toDateTime(Timestamp), Timestamp"
    assert "TTL toDateTime(Timestamp) + toIntervalDay(7)" in engine_full
    indexes = dict(clickhouse.query("SELECT name, type_full FROM system.data_skipping_indices"
                                    " WHERE database = currentDatabase() AND table = 'otel_traces'").result_rows)
    assert indexes["idx_trace_id"] == "bloom_filter(0.001)"
    assert indexes["idx_duration"] == "minmax"
    assert {"idx_res_attr_key", "idx_res_attr_value", "idx_span_attr_key", "idx_span_attr_value",
            "idx_lower_span_name"} <= set(indexes)
    views = clickhouse.query("SELECT name FROM system.tables WHERE database = currentDatabase()"
                             " AND engine = 'MaterializedView'").result_rows
    assert ("otel_traces_trace_id_ts_mv",) in views


def test_migrations_are_recorded_idempotent_and_retention_follows_settings(clickhouse: storage.Client) -> None:
    versions = {m.version for m in storage.load_migrations()}
    recorded = {row[0] for row in clickhouse.query(f"SELECT version FROM {storage.MIGRATIONS_TABLE} FINAL").result_rows}
    assert recorded == versions
    assert storage.migrate(clickhouse) == []  # nothing left to apply
    storage.migrate(clickhouse, storage.SchemaOptions(retention_days=30))
    ttls = dict(clickhouse.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
                                 " AND name LIKE 'otel_%' AND engine LIKE '%MergeTree'").result_rows)
    assert all("toIntervalDay(30)" in engine for engine in ttls.values()), ttls
    storage.migrate(clickhouse, storage.SchemaOptions(retention_days=0))
    engine = clickhouse.query("SELECT engine_full FROM system.tables WHERE database = currentDatabase()"
                              " AND name = 'otel_traces'").result_rows[0][0]
    assert " TTL " not in engine


def test_cluster_variant_is_replicated_and_sharded_by_trace_id() -> None:
    ddl = storage.render_all(storage.SchemaOptions(cluster="prod", database="otel"))
    assert 'CREATE TABLE IF NOT EXISTS otel_traces_local ON CLUSTER "prod"' in ddl
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in ddl
    assert ("CREATE TABLE IF NOT EXISTS otel_traces ON CLUSTER \"prod\" AS otel_traces_local ENGINE = "
            "Distributed('prod', 'otel', 'otel_traces_local', cityHash64(TraceId))") in ddl
    assert "FROM otel_traces_local" in ddl  # materialized views read the local tables
    single = storage.render_all(storage.SchemaOptions())
    assert "ON CLUSTER" not in single and "Replicated" not in single and "Distributed" not in single
    # Every statement of the single-node variant has no unfilled placeholder.
    assert not re.search(r"\$\{", single + ddl)


def test_bad_schema_options_are_refused() -> None:
    with pytest.raises(storage.StoreConfigError):
        storage.SchemaOptions(cluster="prod; DROP TABLE x")
    with pytest.raises(storage.StoreConfigError):
        storage.SchemaOptions(retention_days=-1)
    with pytest.raises(storage.StoreConfigError):
        storage.validate_dsn("mysql://localhost")


def test_schema_command_prints_the_ddl() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "tracehouse", "schema", "--cluster", "prod", "--retention-days", "3"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert "ENGINE = Distributed('prod', 'default', 'otel_traces_local', cityHash64(TraceId))" in result.stdout
    assert "toIntervalDay(3)" in result.stdout


def test_the_collector_encodes_with_the_live_column_types(clickhouse: storage.Client) -> None:
    from tracehouse.collector.tables import ALL_TABLES

    for table in ALL_TABLES.values():
        live = clickhouse.query("SELECT name, type FROM system.columns WHERE database = currentDatabase()"
                                " AND table = {t:String} ORDER BY position", parameters={"t": table.name}).result_rows
        assert [(name, kind) for name, kind in live] == list(table.columns), table.name
