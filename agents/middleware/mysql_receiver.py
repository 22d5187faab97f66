"""MySQL and MariaDB: `SHOW GLOBAL STATUS` (and `max_connections`).

Metric names follow the OpenTelemetry Collector contrib `mysqlreceiver` where one exists.
"""

from __future__ import annotations

import pymysql

from tracehouse.agents.middleware.base import MetricSpec, Receiver, Sample, ScrapeError, number, ratio

# (status variable, metric name, point attributes)
_COUNTERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Queries", "mysql.queries", {}),
    ("Questions", "mysql.questions", {}),
    ("Slow_queries", "mysql.query.slow.count", {}),
    ("Connections", "mysql.connection.count", {}),
    ("Aborted_clients", "mysql.connection.aborted", {"kind": "clients"}),
    ("Aborted_connects", "mysql.connection.aborted", {"kind": "connects"}),
    ("Com_select", "mysql.commands", {"command": "select"}),
    ("Com_insert", "mysql.commands", {"command": "insert"}),
    ("Com_update", "mysql.commands", {"command": "update"}),
    ("Com_delete", "mysql.commands", {"command": "delete"}),
    ("Com_commit", "mysql.commands", {"command": "commit"}),
    ("Com_rollback", "mysql.commands", {"command": "rollback"}),
    ("Innodb_buffer_pool_read_requests", "mysql.buffer_pool.read_requests", {}),
    ("Innodb_buffer_pool_reads", "mysql.buffer_pool.reads", {}),
    ("Innodb_row_lock_waits", "mysql.row_locks.waits", {}),
    ("Bytes_received", "mysql.net.received", {}),
    ("Bytes_sent", "mysql.net.sent", {}),
    ("Threads_created", "mysql.threads.created", {}),
)
_GAUGES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Threads_connected", "mysql.threads", {"kind": "connected"}),
    ("Threads_running", "mysql.threads", {"kind": "running"}),
    ("Threads_cached", "mysql.threads", {"kind": "cached"}),
    ("Max_used_connections", "mysql.connection.max_used", {}),
    ("Innodb_buffer_pool_pages_total", "mysql.buffer_pool.pages", {"kind": "total"}),
    ("Innodb_buffer_pool_pages_free", "mysql.buffer_pool.pages", {"kind": "free"}),
    ("Innodb_buffer_pool_pages_dirty", "mysql.buffer_pool.pages", {"kind": "dirty"}),
    ("Uptime", "mysql.uptime", {}),
)
_UNITS = {
    "mysql.queries": ("{query}", "Statements executed by the server, including stored programs"),
    "mysql.questions": ("{query}", "Statements sent by clients"),
    "mysql.query.slow.count": ("{query}", "Queries slower than long_query_time"),
    "mysql.connection.count": ("{connection}", "Connection attempts"),
    "mysql.connection.aborted": ("{connection}", "Aborted clients and failed connection attempts"),
    "mysql.commands": ("{command}", "Statements by command"),
    "mysql.buffer_pool.read_requests": ("{request}", "InnoDB logical read requests"),
    "mysql.buffer_pool.reads": ("{read}", "InnoDB reads that missed the buffer pool"),
    "mysql.row_locks.waits": ("{wait}", "InnoDB row lock waits"),
    "mysql.net.received": ("By", "Bytes received from clients"),
    "mysql.net.sent": ("By", "Bytes sent to clients"),
    "mysql.threads.created": ("{thread}", "Threads created to handle connections"),
    "mysql.threads": ("{thread}", "Threads by kind"),
    "mysql.connection.max_used": ("{connection}", "Most connections open at once since start"),
    "mysql.buffer_pool.pages": ("{page}", "InnoDB buffer pool pages by kind"),
    "mysql.uptime": ("s", "Seconds since the server started"),
}


def _spec(name: str, kind: str) -> MetricSpec:
    unit, description = _UNITS[name]
    return MetricSpec(name, kind, unit, description)


class MySQLReceiver(Receiver):
    system = "mysql"
    client_system = ("db.system", "mysql")
    catalogue = (
        *{_spec(name, "counter") for _v, name, _a in _COUNTERS},
        *{_spec(name, "gauge") for _v, name, _a in _GAUGES},
        MetricSpec("mysql.buffer_pool.hit_ratio", "gauge", "1",
                   "1 - buffer pool reads / read requests since the server started"),
        MetricSpec("mysql.connection.max", "gauge", "{connection}", "The max_connections setting"),
    )

    def __init__(self, name: str, host: str, port: int, *, user: str = "root", password: str = "",
                 database: str = "", timeout_s: float = 5.0) -> None:
        super().__init__(name, host, port)
        self._user, self._password, self._database, self._timeout_s = user, password, database, timeout_s
        self._connection: pymysql.connections.Connection | None = None

    def _connect(self) -> pymysql.connections.Connection:
        return pymysql.connect(host=self.address, port=self.port, user=self._user, password=self._password,
                               database=self._database or None, connect_timeout=self._timeout_s,
                               read_timeout=self._timeout_s, write_timeout=self._timeout_s, autocommit=True)

    def _scrape(self) -> list[Sample]:
        if self._connection is None:
            self._connection = self._connect()
        with self._connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS")
            status = {str(k): v for k, v in cursor.fetchall()}
            cursor.execute("SHOW GLOBAL VARIABLES LIKE 'max_connections'")
            variables = {str(k): v for k, v in cursor.fetchall()}
        if "Uptime" not in status:
            raise ScrapeError("SHOW GLOBAL STATUS did not answer like MySQL or MariaDB")
        return samples_from_status(status, variables)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # noqa: BLE001,S110 - already broken
                pass
            finally:
                self._connection = None


def samples_from_status(status: dict[str, object], variables: dict[str, object]) -> list[Sample]:
    out: list[Sample] = []
    for variable, metric, attributes in (*_COUNTERS, *_GAUGES):
        value = number(status.get(variable))
        if value is not None:
            out.append(Sample(metric, value, attributes))
    misses = ratio(number(status.get("Innodb_buffer_pool_reads")),
                   number(status.get("Innodb_buffer_pool_read_requests")))
    if misses is not None:
        out.append(Sample("mysql.buffer_pool.hit_ratio", max(0.0, 1.0 - misses)))
    max_connections = number(variables.get("max_connections"))
    if max_connections is not None:
        out.append(Sample("mysql.connection.max", max_connections))
    return out
