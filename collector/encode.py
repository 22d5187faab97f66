"""Column batches -> ClickHouse Native format bytes, ready to insert.

Encoding happens where decoding does (in the decode worker processes when there are any), so the
process that owns the store only concatenates blocks: a Native stream is a sequence of blocks, so
the blocks of many requests form one insert. Native is also by far the cheapest format for
ClickHouse to read (JSON costs it about ten times more per span).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

from tracehouse.collector.batch import ColumnBatch
from tracehouse.collector.tables import ALL_TABLES


@dataclass(frozen=True)
class NativeBlock:
    """Rows of one table as Native-format bytes (one or more blocks)."""

    table: str
    columns: tuple[str, ...]
    rows: int
    data: bytes


@cache
def _types(table: str) -> tuple[ClickHouseType, ...]:
    return tuple(get_from_name(kind) for kind in ALL_TABLES[table].column_types)


def encode(batch: ColumnBatch) -> NativeBlock:
    context = InsertContext(batch.table, list(batch.columns), list(_types(batch.table)), batch.data,
                            column_oriented=True)
    chunks = list(NativeTransform.build_insert(context))
    if context.insert_exception is not None:
        raise context.insert_exception
    data = b"".join(chunks)
    # The first block carries the HTTP-style "INSERT ... FORMAT Native" line; the stream starts after it.
    if data.startswith(b"INSERT INTO"):
        data = data[data.index(b"\n") + 1:]
    return NativeBlock(batch.table, batch.columns, batch.rows, data)
