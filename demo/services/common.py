"""What every demo service shares: its settings from the environment, a small database helper over
sqlite3 or PostgreSQL (psycopg 3), an optional Redis client, and a server loop.

The SQL is written once with `?` placeholders; for PostgreSQL they become `%s`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    port: int
    database_url: str  # sqlite:///path/file.db or postgresql://user@host:port/db
    pg_schema: str  # the schema of this demo run on PostgreSQL
    redis_url: str  # empty: no Redis
    redis_prefix: str
    failure_rate: float  # share of payment calls that fail
    slow_query_ms: int  # how long the slow search query takes
    cycle: bool  # notifications calls back into orders

    @classmethod
    def from_env(cls, name: str) -> ServiceSettings:
        env = os.environ
        return cls(
            name=name,
            port=int(env["PORT"]),
            database_url=env.get("DEMO_DATABASE_URL", f"sqlite:///{name}.db"),
            pg_schema=env.get("DEMO_PG_SCHEMA", "public"),
            redis_url=env.get("DEMO_REDIS_URL", ""),
            redis_prefix=env.get("DEMO_REDIS_PREFIX", "tracehouse-demo"),
            failure_rate=float(env.get("DEMO_FAILURE_RATE", "0.2")),
            slow_query_ms=int(env.get("DEMO_SLOW_QUERY_MS", "300")),
            cycle=env.get("DEMO_CYCLE", "") == "1",
        )

    def url_of(self, service: str) -> str:
        return os.environ[f"DEMO_{service.upper()}_URL"].rstrip("/")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))


def _pause_ms(duration_ms: int) -> int:
    """sqlite has no sleep(): the slow query calls this to stand for a scan of a table too big for memory."""
    time.sleep(duration_ms / 1000)
    return 0


class Database:
    """One connection per thread, autocommit; `execute` returns the rows (empty for writes)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._local = threading.local()

    @property
    def system(self) -> str:
        return "postgresql" if self.settings.is_postgres else "sqlite"

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self.settings.is_postgres:
                import psycopg

                connection = psycopg.connect(self.settings.database_url, autocommit=True,
                                             options=f"-c search_path={self.settings.pg_schema}")
            else:
                path = self.settings.database_url.removeprefix("sqlite:///")
                connection = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.create_function("pause_ms", 1, _pause_ms)
            self._local.connection = connection
        return connection

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.settings.is_postgres:
            sql = sql.replace("?", "%s")
        cursor = self._connection().cursor()
        try:
            cursor.execute(sql, tuple(parameters))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def scalar(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        rows = self.execute(sql, parameters)
        return rows[0][0] if rows else None

    @property
    def autoincrement(self) -> str:
        """The column type of an integer key that numbers itself."""
        return "SERIAL PRIMARY KEY" if self.settings.is_postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"


def redis_client(settings: ServiceSettings) -> Any:
    """A Redis client, or None when the demo runs without Redis."""
    if not settings.redis_url:
        return None
    import redis

    return redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)


def serve_wsgi(app: Any, port: int) -> None:
    """Serves a WSGI (Flask) app on 127.0.0.1:port with a thread per request until SIGTERM/SIGINT."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_asgi(app: Any, port: int) -> None:
    """Serves an ASGI (FastAPI) app on 127.0.0.1:port with uvicorn until SIGTERM/SIGINT."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
