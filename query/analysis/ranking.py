"""TOP-N ranking of aggregated rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def top_n(rows: Iterable[T], *, value: Callable[[T], float | None], name: Callable[[T], Any],
          n: int) -> list[T]:
    """The `n` rows with the highest value, ties broken by name so the order is stable; rows
    without a value (None or NaN) rank last."""
    if n < 1:
        return []

    def key(row: T) -> tuple[int, float, Any]:
        v = value(row)
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        return (1 if missing else 0, 0.0 if missing else -float(v), name(row))  # type: ignore[arg-type]

    return sorted(rows, key=key)[:n]


def shares(counts: Sequence[tuple[str, int]]) -> list[tuple[str, int, float]]:
    """Each name's count and its share of the total, largest first."""
    total = sum(count for _, count in counts)
    ordered = sorted(counts, key=lambda item: (-item[1], item[0]))
    return [(name, count, round(count / total, 6) if total else 0.0) for name, count in ordered]
