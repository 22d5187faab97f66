"""Running a statement and reading its rows as dicts (the reader layer's one helper)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clickhouse_connect.driver.client import Client


def fetch(client: Client, statement: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    result = client.query(statement, parameters=dict(parameters or {}))
    return list(result.named_results())


def seconds_params(start_ns: int, end_ns: int) -> dict[str, int]:
    """Rollup bounds in whole seconds: the start's minute and the end rounded up."""
    start_s = start_ns // 1_000_000_000
    return {"start_s": start_s - start_s % 60, "end_s": -(-end_ns // 1_000_000_000)}
