"""SQL statements of the query service, read once from `query/sql/*.sql`.

A statement includes shared parts by marker: `/*NAME*/` in the table below is replaced by the file
of that name. The `/*WINDOW_...*/` parts read a rollup over a window: whole ten-minute buckets
from the 10m table, the minutes at either end from the 1m table. Other markers (`/*FILTERS*/`)
are left for the reader, which fills them with constant fragments only.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

_INCLUDES = {
    "/*DB_SYSTEM*/": "expr_db_system",
    "/*DB_STATEMENT*/": "expr_db_statement",
    "/*BACKEND_TARGET*/": "expr_backend_target",
    "/*SPAN_PAIRS*/": "span_pairs",
    "/*EXTERNAL_PEER*/": "expr_external_peer",
    "/*DB_ENDPOINT_PAIRS*/": "db_endpoint_pairs",
    "/*DB_REPEAT_RUNS*/": "db_repeat_runs",
    "/*WINDOW_RED*/": "window_red",
    "/*EDGES_SELECT*/": "edges_select",
    "/*EDGES_ROLLUP_ROWS*/": "edges_rollup_rows",
    "/*WINDOW_SERVICE_EDGES*/": "window_service_edges",
    "/*WINDOW_DB_CALLS*/": "window_db_calls",
}


@cache
def sql(name: str) -> str:
    """The text of `query/sql/<name>.sql`, without comment lines, includes expanded."""
    text = resources.files("tracehouse.query").joinpath("sql", f"{name}.sql").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--")).strip()
    for marker, include in _INCLUDES.items():
        if marker in text:
            text = text.replace(marker, sql(include))
    return text


def with_filters(statement: str, fragments: list[str], marker: str = "/*FILTERS*/") -> str:
    """`statement` with `marker` replaced by constant `AND ...` fragments (values stay bound parameters)."""
    return statement.replace(marker, "\n".join(fragments))
