"""How a column batch travels to ClickHouse.

Spans go as one `JSONColumns` document written by orjson (C speed, and ClickHouse parses it without
holding our GIL), which is several times cheaper for the collector than building the Native format
in Python. Batches with floats (metrics) keep clickhouse-connect's Native encoding, since JSON has no
NaN or infinities.
"""

from __future__ import annotations

import orjson

from tracehouse.collector.batch import ColumnBatch

# Tables sent as JSONColumns, and which of their columns hold DateTime64(9) nanoseconds (JSON numbers
# would be read as seconds, so they go as "seconds.nanoseconds" text).
JSON_TABLES: dict[str, tuple[str, ...]] = {"otel_traces": ("Timestamp",)}
JSON_ARRAY_TIME_COLUMNS: dict[str, tuple[str, ...]] = {"otel_traces": ("Events.Timestamp",)}


def _time_text(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return f"{seconds}.{fraction:09d}"


def json_columns(batch: ColumnBatch) -> bytes | None:
    """The batch as a JSONColumns document, or None when the table keeps the Native encoding or a
    value cannot be written as JSON."""
    time_columns = JSON_TABLES.get(batch.table)
    if time_columns is None:
        return None
    document = dict(zip(batch.columns, batch.data, strict=True))
    for name in time_columns:
        document[name] = [_time_text(ns) for ns in document[name]]
    for name in JSON_ARRAY_TIME_COLUMNS.get(batch.table, ()):
        document[name] = [[_time_text(ns) for ns in times] if times else times for times in document[name]]
    try:
        return orjson.dumps(document)
    except (orjson.JSONEncodeError, TypeError):
        return None
