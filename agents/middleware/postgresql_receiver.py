"""PostgreSQL: `pg_stat_database` per database and `pg_stat_activity` for connections and the
longest running query. Names follow the OpenTelemetry Collector contrib `postgresqlreceiver`
where one exists (postgresql.commits, postgresql.rollbacks, postgresql.deadlocks, ...)."""

from __future__ import annotations

from typing import Any

import psycopg

from tracehouse.agents.middleware.base import MetricSpec, Receiver, Sample, number, ratio

DATABASE_STATS_SQL = """
SELECT datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched,
       tup_inserted, tup_updated, tup_deleted, deadlocks, temp_files, temp_bytes, conflicts
FROM pg_stat_database
WHERE datname IS NOT NULL
"""

# Client backends by state; `state` is NULL for background workers, which are not connections.
ACTIVITY_SQL = """
SELECT coalesce(state, 'unknown') AS state, count(*) AS connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
"""

LONGEST_SQL = """
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)) FILTER (WHERE state = 'active'), 0),
       coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""

MAX_CONNECTIONS_SQL = "SELECT setting::float8 FROM pg_settings WHERE name = 'max_connections'"

# (pg_stat_database column, metric, point attributes beyond the database name)
_DATABASE_COUNTERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("xact_commit", "postgresql.commits", {}),
    ("xact_rollback", "postgresql.rollbacks", {}),
    ("blks_read", "postgresql.blocks_read", {"source": "disk"}),
    ("blks_hit", "postgresql.blocks_read", {"source": "cache"}),
    ("tup_returned", "postgresql.rows", {"operation": "returned"}),
    ("tup_fetched", "postgresql.rows", {"operation": "fetched"}),
    ("tup_inserted", "postgresql.rows", {"operation": "inserted"}),
    ("tup_updated", "postgresql.rows", {"operation": "updated"}),
    ("tup_deleted", "postgresql.rows", {"operation": "deleted"}),
    ("deadlocks", "postgresql.deadlocks", {}),
    ("temp_files", "postgresql.temp_files", {}),
    ("temp_bytes", "postgresql.temp_bytes", {}),
    ("conflicts", "postgresql.conflicts", {}),
)
DATABASE_ATTRIBUTE = "postgresql.database.name"


class PostgreSQLReceiver(Receiver):
    system = "postgresql"
    client_system = ("db.system", "postgresql")
    catalogue = (
        MetricSpec("postgresql.commits", "counter", "{transaction}", "Committed transactions"),
        MetricSpec("postgresql.rollbacks", "counter", "{transaction}", "Rolled back transactions"),
        MetricSpec("postgresql.blocks_read", "counter", "{block}", "Blocks read, from disk or found in cache"),
        MetricSpec("postgresql.rows", "counter", "{row}", "Rows by operation"),
        MetricSpec("postgresql.deadlocks", "counter", "{deadlock}", "Deadlocks detected"),
        MetricSpec("postgresql.temp_files", "counter", "{file}", "Temporary files created by queries"),
        MetricSpec("postgresql.temp_bytes", "counter", "By", "Bytes written to temporary files"),
        MetricSpec("postgresql.conflicts", "counter", "{query}", "Queries cancelled by recovery conflicts"),
        MetricSpec("postgresql.database.backends", "updowncounter", "{connection}", "Connections per database"),
        MetricSpec("postgresql.cache.hit_ratio", "gauge", "1", "blks_hit / (blks_hit + blks_read) per database"),
        MetricSpec("postgresql.backends", "updowncounter", "{connection}", "Client connections by state"),
        MetricSpec("postgresql.connection.max", "gauge", "{connection}", "The max_connections setting"),
        MetricSpec("postgresql.query.longest_duration", "gauge", "s", "Age of the longest running active query"),
        MetricSpec("postgresql.transaction.longest_duration", "gauge", "s", "Age of the oldest open transaction"),
    )

    def __init__(self, name: str, host: str, port: int, *, user: str = "postgres", password: str = "",
                 database: str = "", timeout_s: float = 5.0) -> None:
        super().__init__(name, host, port)
        self._conninfo: dict[str, Any] = {
            "host": host, "port": port, "user": user, "dbname": database or "postgres",
            "connect_timeout": max(1, int(timeout_s)), "application_name": "tracehouse-middleware",
            "options": f"-c statement_timeout={int(timeout_s * 1000)}",
        }
        if password:
            self._conninfo["password"] = password
        self._connection: psycopg.Connection[Any] | None = None

    def _scrape(self) -> list[Sample]:
        if self._connection is None:
            self._connection = psycopg.connect(autocommit=True, **self._conninfo)
        with self._connection.cursor() as cursor:
            columns_rows = cursor.execute(DATABASE_STATS_SQL)
            names = [d.name for d in columns_rows.description or ()]
            databases = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            states = {str(state): float(count) for state, count in cursor.execute(ACTIVITY_SQL).fetchall()}
            longest = cursor.execute(LONGEST_SQL).fetchone() or (0, 0)
            max_row = cursor.execute(MAX_CONNECTIONS_SQL).fetchone()
        return samples_from_stats(databases, states, longest, max_row[0] if max_row else None)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001,S110 - already broken
                pass
            finally:
                self._connection = None


def samples_from_stats(databases: list[dict[str, Any]], states: dict[str, float],
                       longest: tuple[Any, Any] | Any, max_connections: Any) -> list[Sample]:
    out: list[Sample] = []
    for row in databases:
        database = str(row["datname"])
        for column, metric, extra in _DATABASE_COUNTERS:
            value = number(row.get(column))
            if value is not None:
                out.append(Sample(metric, value, {DATABASE_ATTRIBUTE: database, **extra}))
        backends = number(row.get("numbackends"))
        if backends is not None:
            out.append(Sample("postgresql.database.backends", backends, {DATABASE_ATTRIBUTE: database}))
        hit, read = number(row.get("blks_hit")), number(row.get("blks_read"))
        hit_ratio = ratio(hit, (hit or 0.0) + (read or 0.0))
        if hit_ratio is not None:
            out.append(Sample("postgresql.cache.hit_ratio", hit_ratio, {DATABASE_ATTRIBUTE: database}))
    for state in ("active", "idle", "idle in transaction", "idle in transaction (aborted)", *states):
        out.append(Sample("postgresql.backends", states.get(state, 0.0), {"state": state}))
    out = _unique(out)
    query_s, transaction_s = (number(v) for v in longest)
    out.append(Sample("postgresql.query.longest_duration", query_s or 0.0))
    out.append(Sample("postgresql.transaction.longest_duration", transaction_s or 0.0))
    max_value = number(max_connections)
    if max_value is not None:
        out.append(Sample("postgresql.connection.max", max_value))
    return out


def _unique(samples: list[Sample]) -> list[Sample]:
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    out = []
    for sample in samples:
        key = (sample.name, tuple(sorted(sample.attributes.items())))
        if key not in seen:
            seen.add(key)
            out.append(sample)
    return out
