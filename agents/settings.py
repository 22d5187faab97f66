"""Agent settings: defaults < standard `OTEL_*` variables < `TRACEHOUSE_*` variables < `init()` arguments.

Stdlib only, so that reading (and rejecting) the configuration costs nothing inside a user's service.
A bad value raises `AgentConfigError` whose message is one line naming the variable and what is
allowed; the agent prints that line and stays off, the application runs on untouched.

Every field of AgentSettings can be set as TRACEHOUSE_<FIELD> (TRACEHOUSE_ENDPOINTS=http://a:4318,http://b:4318,
TRACEHOUSE_SAMPLING_RATIO=0.1, TRACEHOUSE_SANITIZE_DB_STATEMENT=false, TRACEHOUSE_METRICS_INTERVAL_S=10, ...).
Standard variables follow the OpenTelemetry SDK environment specification as the Python SDK reads
them (notably OTEL_EXPORTER_OTLP_TIMEOUT in seconds, OTEL_BSP_* and OTEL_METRIC_EXPORT_* in ms).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import unquote, urlsplit

PROTOCOLS = ("http/protobuf", "grpc")
COMPRESSIONS = ("none", "gzip")
SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off",
            "parentbased_traceidratio")
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"


class AgentConfigError(ValueError):
    """An invalid agent setting; the message is one line meant for the operator."""


@dataclass(frozen=True)
class AgentSettings:
    service_name: str = ""
    service_version: str = ""
    environment: str = ""  # deployment.environment
    resource_attributes: dict[str, str] = field(default_factory=dict)
    endpoints: tuple[str, ...] = ()  # empty: the protocol's default collector address
    protocol: str = "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)
    compression: str = "none"
    request_timeout_s: float = 10.0  # one HTTP/gRPC request
    export_deadline_s: float = 30.0  # how long one batch is retried before it is dropped (counted)
    endpoint_cooldown_s: float = 30.0  # an endpoint that refused or timed out is skipped this long
    max_backoff_s: float = 30.0  # cap on any retry wait, including a collector's Retry-After
    sampler: str = "parentbased_traceidratio"
    sampling_ratio: float = 1.0
    traces_enabled: bool = True
    metrics_enabled: bool = True
    max_queue_size: int = 2048  # spans buffered; when full the oldest are dropped (counted)
    max_export_batch_size: int = 512
    schedule_delay_s: float = 1.0  # how often buffered spans are sent
    metrics_interval_s: float = 10.0  # host/process metrics and heartbeat
    host_metrics: bool = True
    process_metrics: bool = True
    sanitize_db_statement: bool = True  # strip literals from db.statement / db.query.text
    instrument: bool = True  # auto-instrument every installed library that has an instrumentation
    disabled_instrumentations: tuple[str, ...] = ()
    instrumentation_metrics: bool = False  # the instrumentations' own duration histograms (spans carry it)
    service_port: int = 0  # the listening port for service.instance.id; 0 = find it out
    flush_on_sigterm: bool = True  # flush before a default-handled SIGTERM ends the process
    gc_freeze: bool = True  # under `run`: keep start-up objects out of the garbage collector's sweeps
    disabled: bool = False

    def __post_init__(self) -> None:
        _require(self.protocol in PROTOCOLS, f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        _require(self.compression in COMPRESSIONS,
                 f"compression must be one of {', '.join(COMPRESSIONS)}, not {self.compression!r}")
        _require(self.sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, not {self.sampler!r}")
        _require(0.0 <= self.sampling_ratio <= 1.0, f"sampling_ratio must be between 0 and 1, not {self.sampling_ratio}")
        for name in ("request_timeout_s", "export_deadline_s", "metrics_interval_s", "schedule_delay_s"):
            _require(getattr(self, name) > 0, f"{name} must be greater than 0, not {getattr(self, name)}")
        for name in ("endpoint_cooldown_s", "max_backoff_s"):
            _require(getattr(self, name) >= 0, f"{name} must not be negative, not {getattr(self, name)}")
        _require(self.max_queue_size >= 1, f"max_queue_size must be at least 1, not {self.max_queue_size}")
        _require(1 <= self.max_export_batch_size <= self.max_queue_size,
                 f"max_export_batch_size must be between 1 and max_queue_size ({self.max_queue_size}), "
                 f"not {self.max_export_batch_size}")
        _require(0 <= self.service_port <= 65535, f"service_port must be between 0 and 65535, not {self.service_port}")
        for endpoint in self.endpoints:
            try:
                validate_endpoint(endpoint, self.protocol)
            except AgentConfigError as exc:
                raise AgentConfigError(f"endpoints: {exc}") from None

    @property
    def effective_endpoints(self) -> tuple[str, ...]:
        if self.endpoints:
            return self.endpoints
        return (DEFAULT_GRPC_ENDPOINT if self.protocol == "grpc" else DEFAULT_HTTP_ENDPOINT,)

    @property
    def effective_service_name(self) -> str:
        if self.service_name:
            return self.service_name
        if "service.name" in self.resource_attributes:
            return self.resource_attributes["service.name"]
        return f"unknown_service:{program_name()}"


def program_name(argv: list[str] | None = None) -> str:
    """What the process runs: the module of `python -m x`, else the script's file name (the full command
    line, as at start-up sys.argv still lacks the module name)."""
    args = argv if argv is not None else list(getattr(sys, "orig_argv", None) or sys.argv)
    for index, arg in enumerate(args[1:], start=1):
        if arg == "-m":
            return args[index + 1] if index + 1 < len(args) else "python"
        if arg == "-c":
            return "python"
        if not arg.startswith("-"):
            return os.path.basename(arg)
    return "python"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AgentConfigError(message)


def validate_endpoint(endpoint: str, protocol: str) -> None:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if protocol == "http/protobuf" and "://" not in endpoint:
        raise AgentConfigError(f"endpoint {endpoint!r} needs a scheme, e.g. http://collector:4318")
    _require(parts.scheme in ("http", "https"), f"endpoint {endpoint!r} must use http:// or https://")
    try:
        port = parts.port
    except ValueError:
        raise AgentConfigError(f"endpoint {endpoint!r} has an invalid port") from None
    _require(bool(parts.hostname), f"endpoint {endpoint!r} has no host")
    _require(port is None or 0 < port <= 65535, f"endpoint {endpoint!r} has an invalid port")


# --- parsing environment values ------------------------------------------------------------------

def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parse_pairs(text: str) -> dict[str, str]:
    """`key=value,key2=value2` with percent-encoded values (W3C Baggage style, as OTel env vars use)."""
    result: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value pairs separated by commas, got {item.strip()!r}")
        result[key.strip()] = unquote(value.strip())
    return result


def _millis_to_s(text: str) -> float:
    return float(text) / 1000.0


def _lower(text: str) -> str:
    return text.strip().lower()


# (variable, field, parser). Standard variables first; TRACEHOUSE_* ones are applied after and win.
Parser = Callable[[str], Any]
OTEL_VARIABLES: tuple[tuple[str, str, Parser], ...] = (
    ("OTEL_SDK_DISABLED", "disabled", _parse_bool),
    ("OTEL_SERVICE_NAME", "service_name", str.strip),
    ("OTEL_RESOURCE_ATTRIBUTES", "resource_attributes", _parse_pairs),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "endpoints", _parse_list),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "protocol", _lower),
    ("OTEL_EXPORTER_OTLP_HEADERS", "headers", _parse_pairs),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "compression", _lower),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "request_timeout_s", float),
    ("OTEL_TRACES_SAMPLER", "sampler", _lower),
    ("OTEL_TRACES_SAMPLER_ARG", "sampling_ratio", float),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "max_queue_size", int),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "max_export_batch_size", int),
    ("OTEL_BSP_SCHEDULE_DELAY", "schedule_delay_s", _millis_to_s),
    ("OTEL_BSP_EXPORT_TIMEOUT", "export_deadline_s", _millis_to_s),
    ("OTEL_METRIC_EXPORT_INTERVAL", "metrics_interval_s", _millis_to_s),
    ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "disabled_instrumentations", _parse_list),
    ("PORT", "service_port", int),
)

TYPE_PARSERS: dict[str, Parser] = {
    "str": str.strip, "float": float, "int": int, "bool": _parse_bool,
    "dict[str, str]": _parse_pairs, "tuple[str, ...]": _parse_list,
}


FIELD_TYPES: dict[str, Any] = {item.name: item.type for item in fields(AgentSettings)}


def tracehouse_variable(field_name: str) -> str:
    return "TRACEHOUSE_" + field_name.upper()


def load_agent_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> AgentSettings:
    """Settings from the environment, then keyword overrides (those that are not None)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for variable, name, parser in OTEL_VARIABLES:
        if variable in environ and environ[variable].strip() != "":
            values[name] = _parsed(variable, environ[variable], parser)
            sources[name] = variable
    traces_exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    metrics_exporter = environ.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if traces_exporter == "none":
        values["traces_enabled"] = False
    if metrics_exporter == "none":
        values["metrics_enabled"] = False
    for item in fields(AgentSettings):
        variable = tracehouse_variable(item.name)
        if variable in environ:
            values[item.name] = _parsed(variable, environ[variable], TYPE_PARSERS[str(item.type)])
            sources[item.name] = variable
    known = {item.name for item in fields(AgentSettings)}
    for name, value in overrides.items():
        if name not in known:
            raise AgentConfigError(f"unknown agent setting {name!r}")
        if value is not None:
            if str(FIELD_TYPES[name]).startswith("tuple") and isinstance(value, str):
                value = _parse_list(value)  # endpoints="http://a:4318,http://b:4318" as in the environment
            values[name] = tuple(value) if isinstance(value, list) else value
            sources[name] = f"init({name}=...)"
    try:
        return AgentSettings(**values)
    except AgentConfigError as exc:
        message = str(exc)
        field_name = message.split(" ", 1)[0].rstrip(":")
        if field_name in sources:  # say where the bad value came from
            message += f" (from {sources[field_name]})"
        raise AgentConfigError(message) from None
    except (TypeError, ValueError) as exc:
        raise AgentConfigError(str(exc)) from None


def _parsed(variable: str, raw: str, parser: Parser) -> Any:
    try:
        return parser(raw)
    except (TypeError, ValueError) as exc:
        raise AgentConfigError(f"{variable}={raw!r} is not valid ({exc})") from None


def with_overrides(settings: AgentSettings, **changes: Any) -> AgentSettings:
    return replace(settings, **changes)
