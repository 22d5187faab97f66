"""Column batches: what the decoders produce and the writer inserts.

A batch is a table name, its column names and one Python list per column, so rows never exist as
objects; `Decoded.encode` turns a request's batches into ClickHouse Native blocks for the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracehouse.collector.encode import NativeBlock


@dataclass
class ColumnBatch:
    table: str
    columns: tuple[str, ...]
    data: list[list[object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.data:
            self.data = [[] for _ in self.columns]

    @property
    def rows(self) -> int:
        return len(self.data[0]) if self.data else 0


@dataclass
class Decoded:
    """One request's data: batches by table, and what was rejected or trimmed (for partial_success)."""

    batches: dict[str, ColumnBatch] = field(default_factory=dict)
    blocks: list[NativeBlock] = field(default_factory=list)  # the batches, encoded for insert
    accepted: int = 0
    rejected: int = 0
    messages: list[str] = field(default_factory=list)

    def batch(self, table: str, columns: tuple[str, ...]) -> ColumnBatch:
        found = self.batches.get(table)
        if found is None:
            found = self.batches[table] = ColumnBatch(table, columns)
        return found

    def note(self, message: str, limit: int = 5) -> None:
        """Keeps the first few messages; a response that lists 100 000 identical errors helps nobody."""
        if len(self.messages) < limit:
            self.messages.append(message)

    @property
    def error_message(self) -> str:
        return "; ".join(self.messages)

    def encode(self) -> Decoded:
        """Replaces the column batches by their Native encoding (cheap to pass between processes)."""
        from tracehouse.collector.encode import encode

        self.blocks = [encode(batch) for batch in self.batches.values() if batch.rows]
        self.batches = {}
        return self
