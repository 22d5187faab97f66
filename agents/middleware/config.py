"""`middleware.toml`: where to send metrics and which middleware instances to read.

    [exporter]
    endpoint = "http://127.0.0.1:4318"   # OTLP/HTTP base URL; TRACEHOUSE_ENDPOINTS overrides it,
                                         # OTEL_EXPORTER_OTLP_ENDPOINT applies when it is not set
    interval_s = 10                      # scrape and export period
    timeout_s = 5                        # export timeout

    [[redis]]
    name = "cache"                       # service.name of this instance (default "redis:HOST:PORT")
    host = "127.0.0.1"
    port = 6379
    password_env = "REDIS_PASSWORD"      # or password = "...", never on the command line

    [[mysql]]                            # MySQL and MariaDB
    host = "127.0.0.1"
    user = "monitor"
    password_env = "MYSQL_PASSWORD"

    [[postgresql]]
    host = "127.0.0.1"
    user = "postgres"
    database = "postgres"

    [[nginx]]
    url = "http://127.0.0.1/nginx_status"   # a location with `stub_status;`

    [[rabbitmq]]
    url = "http://127.0.0.1:15672"           # the management plugin's HTTP API
    user = "guest"
    password_env = "RABBITMQ_PASSWORD"
    amqp_port = 5672                         # the port clients publish to, for matching their spans

Credentials come from the file (`password`) or from the environment variable it names
(`password_env`); a named variable that is not set is a configuration error at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from tracehouse.config import ConfigError, read_toml, require

SYSTEMS = ("redis", "mysql", "postgresql", "nginx", "rabbitmq")
DEFAULT_PORTS = {"redis": 6379, "mysql": 3306, "postgresql": 5432, "nginx": 80, "rabbitmq": 15672}
DEFAULT_USERS = {"redis": "", "mysql": "root", "postgresql": "postgres", "nginx": "", "rabbitmq": "guest"}


@dataclass(frozen=True)
class ExporterSettings:
    endpoint: str = "http://127.0.0.1:4318"
    interval_s: float = 10.0
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        parsed = urlparse(self.endpoint)
        require(parsed.scheme in ("http", "https") and bool(parsed.hostname),
                f"exporter endpoint {self.endpoint!r} must be an http(s):// URL")
        require(self.interval_s > 0, "exporter interval_s must be more than 0")
        require(self.timeout_s > 0, "exporter timeout_s must be more than 0")

    @property
    def metrics_url(self) -> str:
        return self.endpoint.rstrip("/") + "/v1/metrics"


@dataclass(frozen=True)
class TargetSettings:
    system: str
    name: str
    host: str
    port: int
    user: str = ""
    password: str = field(default="", repr=False)
    database: str = ""
    url: str = ""  # nginx stub_status page, RabbitMQ management API
    amqp_port: int = 5672
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        require(self.system in SYSTEMS, f"unknown middleware {self.system!r}; one of {', '.join(SYSTEMS)}")
        require(bool(self.name), f"{self.system}: name must not be empty")
        require(bool(self.host), f"{self.system} {self.name}: host must not be empty")
        require(0 < self.port <= 65535, f"{self.system} {self.name}: port must be 1-65535, not {self.port}")
        require(self.timeout_s > 0, f"{self.system} {self.name}: timeout_s must be more than 0")


@dataclass(frozen=True)
class MiddlewareSettings:
    exporter: ExporterSettings
    targets: tuple[TargetSettings, ...]

    def __post_init__(self) -> None:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        require(not duplicates, f"two middleware instances share the name {', '.join(duplicates)}")


_TARGET_KEYS = {"name", "host", "port", "user", "username", "password", "password_env", "database", "url",
                "amqp_port", "timeout_s"}


def _password(where: str, table: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    if "password" in table and "password_env" in table:
        raise ConfigError(f"{where}: set password or password_env, not both")
    variable = table.get("password_env")
    if variable:
        if str(variable) not in environ:
            raise ConfigError(f"{where}: password_env names {variable}, which is not set")
        return environ[str(variable)]
    return str(table.get("password", ""))


def _number(where: str, key: str, raw: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(raw, bool) or (kind is int and isinstance(raw, float) and not raw.is_integer()):
        raise ConfigError(f"{where}: {key} must be a number, not {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, not {raw!r}") from None


def _target(system: str, index: int, table: Any, environ: Mapping[str, str]) -> TargetSettings:
    where = f"[[{system}]] #{index + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - _TARGET_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    url = str(table.get("url", ""))
    host = str(table.get("host", ""))
    port_raw = table.get("port")
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"{where}: url {url!r} must be an http(s):// URL")
        host = host or parsed.hostname
        if port_raw is None:
            port_raw = parsed.port or (443 if parsed.scheme == "https" else 80)
    elif system in ("nginx", "rabbitmq"):
        host = host or "127.0.0.1"
        port_raw = port_raw if port_raw is not None else DEFAULT_PORTS[system]
        url = f"http://{host}:{port_raw}" + ("/nginx_status" if system == "nginx" else "")
    host = host or "127.0.0.1"
    port = _number(where, "port", port_raw if port_raw is not None else DEFAULT_PORTS[system], int)
    timeout_s = _number(where, "timeout_s", table.get("timeout_s", 5.0), float)
    amqp_port = _number(where, "amqp_port", table.get("amqp_port", 5672), int)
    name = str(table.get("name") or f"{system}:{host}:{port if system != 'rabbitmq' else amqp_port}")
    user = str(table.get("user", table.get("username", DEFAULT_USERS[system])))
    return TargetSettings(system=system, name=name, host=host, port=port, user=user,
                          password=_password(where, table, environ), database=str(table.get("database", "")),
                          url=url, amqp_port=amqp_port, timeout_s=timeout_s)


def settings_from_toml(document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> MiddlewareSettings:
    environ = os.environ if environ is None else environ
    unknown = sorted(set(document) - set(SYSTEMS) - {"exporter"})
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(unknown)}; expected exporter, {', '.join(SYSTEMS)}")
    exporter_table = document.get("exporter", {})
    if not isinstance(exporter_table, Mapping):
        raise ConfigError("[exporter] must be a table")
    # As everywhere in TraceHouse, TRACEHOUSE_* variables win over the file; the standard OTel
    # variable fills in when the file says nothing.
    overriding = [e.strip() for e in environ.get("TRACEHOUSE_ENDPOINTS", "").split(",") if e.strip()]
    endpoint = (overriding[0] if overriding else None) or exporter_table.get("endpoint") \
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or ExporterSettings.endpoint
    unknown = sorted(set(exporter_table) - {"endpoint", "interval_s", "timeout_s"})
    if unknown:
        raise ConfigError(f"[exporter]: unknown setting(s) {', '.join(unknown)}")
    exporter = ExporterSettings(endpoint=str(endpoint),
                                interval_s=_number("[exporter]", "interval_s", exporter_table.get("interval_s", 10.0), float),
                                timeout_s=_number("[exporter]", "timeout_s", exporter_table.get("timeout_s", 5.0), float))
    targets: list[TargetSettings] = []
    for system in SYSTEMS:
        tables = document.get(system, [])
        if isinstance(tables, Mapping):
            tables = [tables]
        if not isinstance(tables, list):
            raise ConfigError(f"[[{system}]] must be a list of tables")
        targets += [_target(system, i, table, environ) for i, table in enumerate(tables)]
    if not targets:
        raise ConfigError("the config names no middleware; add a [[redis]], [[mysql]], [[postgresql]], "
                          "[[nginx]] or [[rabbitmq]] table")
    return MiddlewareSettings(exporter=exporter, targets=tuple(targets))


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> MiddlewareSettings:
    return settings_from_toml(read_toml(path), environ)
