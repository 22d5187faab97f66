"""Running a statement and reading its rows as dicts (the reader layer's one helper)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from clickhouse_connect.driver.client import Client


def fetch(client: Client, statement: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    result = client.query(statement, parameters=dict(parameters or {}))
    return list(result.named_results())


TEN_MINUTES_S = 600


def seconds_params(start_ns: int, end_ns: int, *, now_s: float | None = None) -> dict[str, int]:
    """Rollup bounds in whole seconds: the start's minute and the end rounded up; and the whole
    ten-minute buckets in between, [mid_start_s, mid_end_s) (empty when there is none), which the
    window_*.sql statements read from the ten-minute tables. A window that ends now also takes the
    current ten-minute bucket from there: nothing in it is later than now."""
    start_s = start_ns // 1_000_000_000
    start_s -= start_s % 60
    end_s = -(-end_ns // 1_000_000_000)
    mid_start_s = -(-start_s // TEN_MINUTES_S) * TEN_MINUTES_S
    mid_end_s = end_s // TEN_MINUTES_S * TEN_MINUTES_S
    if end_s >= (time.time() if now_s is None else now_s) - 60 and mid_end_s < end_s:
        mid_end_s += TEN_MINUTES_S
    if mid_end_s <= mid_start_s:
        mid_start_s = mid_end_s = end_s
    return {"start_s": start_s, "end_s": end_s, "mid_start_s": mid_start_s, "mid_end_s": mid_end_s}
