"""The one place that knows how to reach ClickHouse: DSN -> client, schema rendering, migrations.

Every other component gets a `clickhouse_connect` client from `connect()` and must not care whether
an embedded chDB engine or a ClickHouse server is behind it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

DEFAULT_DATA_PATH = "./tracehouse-data"
MIGRATIONS_TABLE = "tracehouse_schema_migrations"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreConfigError(ValueError):
    """A DSN or schema option that cannot work; raised at start-up, never at request time."""


def dsn_for_data_path(path: str | os.PathLike[str]) -> str:
    """The embedded-engine DSN for a data directory (created if missing)."""
    absolute = Path(path).expanduser().resolve()
    absolute.mkdir(parents=True, exist_ok=True)
    return f"chdb://{absolute}" if str(absolute).startswith("/") else f"chdb:///{absolute}"


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb:")


def validate_dsn(dsn: str) -> None:
    parsed = urlparse(dsn)
    if parsed.scheme not in ("chdb", "http", "https"):
        raise StoreConfigError(
            f"store DSN {redact_dsn(dsn)!r}: scheme must be chdb://, http:// or https://"
        )
    if parsed.scheme in ("http", "https") and not parsed.hostname:
        raise StoreConfigError(f"store DSN {redact_dsn(dsn)!r} names no host")


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for logs and error messages."""
    parsed = urlparse(dsn)
    if parsed.password:
        return dsn.replace(f":{parsed.password}@", ":***@", 1)
    return dsn


def connect(dsn: str, *, database: str | None = None, connect_timeout_s: float = 5.0,
            send_receive_timeout_s: float = 60.0, settings: dict[str, Any] | None = None) -> Client:
    """A new client for `dsn` (and `database`, when given, over the DSN's own).

    Clients are not shared between threads: call this once per worker. The embedded engine
    allows one data path per process; several clients on that path run queries concurrently.
    """
    validate_dsn(dsn)
    extra: dict[str, Any] = {"database": database} if database else {}
    if is_embedded(dsn):
        parsed = urlparse(dsn)
        location = parsed.path if not parsed.netloc else parsed.netloc + parsed.path
        if location not in ("", "memory", ":memory:"):
            Path(location).mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=dsn, settings=settings or {}, **extra)
    return clickhouse_connect.get_client(
        dsn=dsn,
        connect_timeout=connect_timeout_s,
        send_receive_timeout=send_receive_timeout_s,
        settings=settings or {},
        autogenerate_session_id=False,
        **extra,
    )


def database_of(client: Client) -> str:
    return str(client.command("SELECT currentDatabase()"))


# ---------------------------------------------------------------------------------------------
# Schema files: `schemas/NNN_name.sql`, statements separated by `;`, with these placeholders:
#   ${LOCAL name}            the table name (name_local in cluster mode, where `name` is Distributed)
#   ${ON_CLUSTER}            empty, or ON CLUSTER "cluster"
#   ${ENGINE X}              X, or ReplicatedX('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
#   ${TTL expr}              TTL expr + toIntervalDay(retention_days), or nothing when retention is 0
#   ${DISTRIBUTED name key}  nothing, or the Distributed table `name` over name_local sharded by key
# ---------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{(LOCAL|ON_CLUSTER|ENGINE|TTL|DISTRIBUTED)\s*([^}]*)\}")


@dataclass(frozen=True)
class SchemaOptions:
    retention_days: int = 7
    cluster: str | None = None
    database: str = "default"

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise StoreConfigError("retention_days must be 0 (keep forever) or more")
        if self.cluster is not None and not _IDENTIFIER.match(self.cluster):
            raise StoreConfigError(f"cluster name {self.cluster!r} is not a plain identifier")
        if not _IDENTIFIER.match(self.database):
            raise StoreConfigError(f"database name {self.database!r} is not a plain identifier")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str  # the template, before rendering

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def load_migrations() -> list[Migration]:
    """Every `schemas/NNN_*.sql` file in version order."""
    found: list[Migration] = []
    for entry in resources.files("tracehouse.schemas").iterdir():
        match = re.match(r"^(\d+)_(.+)\.sql$", entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise StoreConfigError(f"two schema files share a version number: {versions}")
    return found


def render(template: str, options: SchemaOptions) -> list[str]:
    """The statements of one schema file, placeholders filled for a single node or a cluster."""
    cluster = options.cluster

    def fill(match: re.Match[str]) -> str:
        kind, arg = match.group(1), match.group(2).strip()
        if kind == "LOCAL":
            return f"{arg}_local" if cluster else arg
        if kind == "ON_CLUSTER":
            return f'ON CLUSTER "{cluster}"' if cluster else ""
        if kind == "ENGINE":
            if not cluster:
                return arg
            return f"Replicated{arg}('/clickhouse/tables/{{shard}}/{{database}}/{{table}}', '{{replica}}')"
        if kind == "TTL":
            return f"TTL {arg} + toIntervalDay({options.retention_days})" if options.retention_days else ""
        # DISTRIBUTED name sharding_key
        if not cluster:
            return ""
        name, _, key = arg.partition(" ")
        return (
            f'CREATE TABLE IF NOT EXISTS {name} ON CLUSTER "{cluster}" AS {name}_local '
            f"ENGINE = Distributed('{cluster}', '{options.database}', '{name}_local', {key})"
        )

    statements = []
    for raw in _PLACEHOLDER.sub(fill, template).split(";"):
        body = "\n".join(line for line in raw.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            statements.append(body)
    return statements


def render_all(options: SchemaOptions) -> str:
    """The whole schema as one SQL script, for `tracehouse schema`."""
    parts = []
    for migration in load_migrations():
        parts.append(f"-- {migration.version:03d}_{migration.name}")
        parts += [statement + ";" for statement in render(migration.sql, options)]
    return "\n\n".join(parts) + "\n"


def applied_versions(client: Client) -> set[int]:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    return {row[0] for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE}").result_rows}


def migrate(client: Client, options: SchemaOptions | None = None) -> list[int]:
    """Applies every schema file not yet recorded, in order; returns the versions applied now.

    Statements are all `IF NOT EXISTS`, so two processes migrating at once, or a file that failed
    half-way, converge on the same schema when run again. Retention is re-applied to existing
    tables so a changed TTL setting takes effect on the next start.
    """
    options = options or SchemaOptions()
    done = applied_versions(client)
    applied: list[int] = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        for statement in render(migration.sql, options):
            client.command(statement)
        client.insert(
            MIGRATIONS_TABLE,
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration.version)
        log.info("applied schema %03d_%s", migration.version, migration.name)
    apply_retention(client, options)
    return applied


_TTL_COLUMNS = {
    "otel_traces": "toDateTime(Timestamp)",
    "otel_traces_trace_id_ts": "Start",
    "otel_metrics_gauge": "toDateTime(TimeUnix)",
    "otel_metrics_sum": "toDateTime(TimeUnix)",
    "otel_metrics_histogram": "toDateTime(TimeUnix)",
    "otel_metrics_summary": "toDateTime(TimeUnix)",
    "otel_metrics_exponential_histogram": "toDateTime(TimeUnix)",
}


def apply_retention(client: Client, options: SchemaOptions) -> None:
    """Brings each raw table's TTL in line with `retention_days` (cheap when it already is)."""
    if options.cluster:
        return  # on a cluster the operator owns ALTERs; `tracehouse schema` prints the DDL
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": list(_TTL_COLUMNS)},
    ).result_rows
    for table, engine_full in rows:
        wanted = f"toIntervalDay({options.retention_days})"
        has_ttl = " TTL " in engine_full
        if options.retention_days == 0:
            if has_ttl:
                client.command(f"ALTER TABLE {table} REMOVE TTL")
        elif not has_ttl or wanted not in engine_full:
            client.command(
                f"ALTER TABLE {table} MODIFY TTL {_TTL_COLUMNS[table]} + {wanted}",
                settings={"materialize_ttl_after_modify": 0},
            )
            log.info("retention of %s set to %d days", table, options.retention_days)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A store error as one short line, for logs and client-facing messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def ping(client: Client) -> bool:
    try:
        client.command("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
