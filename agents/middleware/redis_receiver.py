"""Redis: the `INFO` command (all sections).

Metric names follow the OpenTelemetry Collector contrib `redisreceiver` where one exists
(redis.commands.processed, redis.clients.connected, redis.keyspace.hits, ...).
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tracehouse.agents.middleware.base import MetricSpec, Receiver, Sample, ScrapeError, number, ratio

# (INFO field, metric name, kind, unit, description)
_FIELDS: tuple[tuple[str, str, str, str, str], ...] = (
    ("total_commands_processed", "redis.commands.processed", "counter", "{command}", "Commands processed by the server"),
    ("instantaneous_ops_per_sec", "redis.commands", "gauge", "{command}/s", "Commands per second, as the server measures it"),
    ("connected_clients", "redis.clients.connected", "updowncounter", "{client}", "Client connections (excluding replicas)"),
    ("blocked_clients", "redis.clients.blocked", "updowncounter", "{client}", "Clients blocked in a blocking call"),
    ("used_memory", "redis.memory.used", "gauge", "By", "Bytes allocated by Redis"),
    ("used_memory_rss", "redis.memory.rss", "gauge", "By", "Resident set size of the server process"),
    ("used_memory_peak", "redis.memory.peak", "gauge", "By", "Peak memory allocated by Redis"),
    ("maxmemory", "redis.maxmemory", "gauge", "By", "The maxmemory setting (0 = no limit)"),
    ("keyspace_hits", "redis.keyspace.hits", "counter", "{hit}", "Successful key lookups"),
    ("keyspace_misses", "redis.keyspace.misses", "counter", "{miss}", "Failed key lookups"),
    ("evicted_keys", "redis.keys.evicted", "counter", "{key}", "Keys evicted because of maxmemory"),
    ("expired_keys", "redis.keys.expired", "counter", "{key}", "Key expiration events"),
    ("total_connections_received", "redis.connections.received", "counter", "{connection}", "Connections accepted"),
    ("rejected_connections", "redis.connections.rejected", "counter", "{connection}", "Connections rejected at maxclients"),
    ("total_net_input_bytes", "redis.net.input", "counter", "By", "Bytes read from the network"),
    ("total_net_output_bytes", "redis.net.output", "counter", "By", "Bytes written to the network"),
    ("connected_slaves", "redis.slaves.connected", "updowncounter", "{replica}", "Connected replicas"),
    ("master_repl_offset", "redis.replication.offset", "gauge", "By", "The server's replication offset"),
    ("uptime_in_seconds", "redis.uptime", "gauge", "s", "Seconds since the server started"),
)


class RedisReceiver(Receiver):
    system = "redis"
    client_system = ("db.system", "redis")
    catalogue = (
        *(MetricSpec(name, kind, unit, description) for _f, name, kind, unit, description in _FIELDS),
        MetricSpec("redis.keyspace.hit_ratio", "gauge", "1", "keyspace_hits / (hits + misses) since the server started"),
        MetricSpec("redis.db.keys", "gauge", "{key}", "Keys per database"),
        MetricSpec("redis.db.expires", "gauge", "{key}", "Keys with an expiry per database"),
        MetricSpec("redis.replication.role", "gauge", "1", "1 with the role (master or slave) as attribute"),
    )

    def __init__(self, name: str, host: str, port: int, *, user: str = "", password: str = "",
                 timeout_s: float = 5.0) -> None:
        super().__init__(name, host, port)
        self._options: dict[str, Any] = {
            "host": host, "port": port, "username": user or None, "password": password or None,
            "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
            # One attempt per scrape: the next scrape is the retry, and `up` must not wait for backoffs.
            "retry": Retry(NoBackoff(), 0),
        }
        self._client: redis.Redis | None = None

    def _scrape(self) -> list[Sample]:
        if self._client is None:
            self._client = redis.Redis(**self._options)
        info: dict[str, Any] = self._client.info("all")
        if not isinstance(info, dict) or "redis_version" not in info:
            raise ScrapeError("INFO did not answer like a Redis server")
        return samples_from_info(info)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


def samples_from_info(info: dict[str, Any]) -> list[Sample]:
    """Samples from the parsed `INFO all` reply (as redis-py returns it)."""
    out: list[Sample] = []
    for field_name, metric, _kind, _unit, _description in _FIELDS:
        value = number(info.get(field_name))
        if value is not None:
            out.append(Sample(metric, value))
    hit_ratio = ratio(number(info.get("keyspace_hits")),
                      (number(info.get("keyspace_hits")) or 0.0) + (number(info.get("keyspace_misses")) or 0.0))
    if hit_ratio is not None:
        out.append(Sample("redis.keyspace.hit_ratio", hit_ratio))
    for key, value in info.items():
        # redis-py parses "db0:keys=1,expires=0,avg_ttl=0" into {"keys": 1, "expires": 0, ...}
        if key.startswith("db") and key[2:].isdigit() and isinstance(value, dict):
            for field_name, metric in (("keys", "redis.db.keys"), ("expires", "redis.db.expires")):
                count = number(value.get(field_name))
                if count is not None:
                    out.append(Sample(metric, count, {"db": key[2:]}))
    role = info.get("role")
    if isinstance(role, str) and role:
        out.append(Sample("redis.replication.role", 1.0, {"role": role}))
    return out
