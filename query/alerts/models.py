"""The API's shapes: rules, channels, silences, alerts, history. Pydantic validates them, so a bad
rule is answered with 422 and the location of the field at fault."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class Signal(StrEnum):
    P50_MS = "p50_ms"
    P95_MS = "p95_ms"
    P99_MS = "p99_ms"
    ERROR_RATE = "error_rate"  # errors / calls, 0..1
    CALLS_PER_MIN = "calls_per_min"
    METRIC_VALUE = "metric_value"  # a stored metric's value (aggregated over the window)
    METRIC_RATE = "metric_rate"  # a counter's increase per second over the window
    HEARTBEAT_MISSING = "heartbeat_missing"  # seconds since an instance's last heartbeat
    NEW_CYCLE = "new_cycle"  # 1 per service-level dependency cycle seen in the window
    N_PLUS_ONE = "n_plus_one"  # most executions of one statement under one parent span


SPAN_SIGNALS = frozenset({Signal.P50_MS, Signal.P95_MS, Signal.P99_MS, Signal.ERROR_RATE, Signal.CALLS_PER_MIN})
METRIC_SIGNALS = frozenset({Signal.METRIC_VALUE, Signal.METRIC_RATE})

Op = Literal[">", ">=", "<", "<=", "==", "!="]
Severity = Literal["critical", "warning", "info"]
GroupBy = Literal["service", "operation", "instance", "host"]
Aggregation = Literal["avg", "min", "max", "last", "sum"]
AlertStateName = Literal["ok", "pending", "firing", "resolved"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def compare(value: float, op: str, threshold: float) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    if op == "!=":
        return value != threshold
    raise ValueError(f"unknown comparison {op!r}")


class Target(BaseModel):
    """What a rule watches. Every field narrows it; empty fields do not filter."""

    model_config = ConfigDict(extra="forbid")

    service: str | None = Field(None, max_length=256, description="service.name")
    operation: str | None = Field(None, max_length=1024, description="span name within the service")
    peer_service: str | None = Field(None, max_length=256,
                                     description="edge: calls from `service` into this service (child spans)")
    db_statement: str | None = Field(None, max_length=10000,
                                     description="a DB statement, compared after normalization (literals → ?)")
    host: str | None = Field(None, max_length=256, description="host.name resource attribute")
    metric: str | None = Field(None, max_length=512, description="a stored metric's name (metric signals)")
    attributes: dict[str, str] = Field(default_factory=dict,
                                       description="span or metric-point attributes that must match exactly")
    group_by: GroupBy | None = Field(None, description="span signals: one series per service/operation/instance/host")


class RuleBody(BaseModel):
    """A rule as clients write it (POST, PUT, rules file)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    signal: Signal
    target: Target = Field(default=Target.model_validate({}), validate_default=True)
    op: Op = ">"
    threshold: float = Field(0.0, validate_default=True)
    window_s: int = Field(300, ge=10, le=7 * 86400, description="evaluation window, seconds")
    for_s: int = Field(0, ge=0, le=7 * 86400, description="how long the condition must hold before firing")
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    channels: list[str] = Field(default_factory=list, max_length=20)
    enabled: bool = True
    repeat_interval_s: float | None = Field(None, ge=0, description="re-notify while firing; 0 = never; "
                                                                       "null = the server default")
    aggregation: Aggregation = Field("avg", description="metric_value: how points in the window are combined")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float, info: ValidationInfo) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        if info.data.get("signal") == Signal.HEARTBEAT_MISSING and value <= 0:
            raise ValueError("heartbeat_missing compares the seconds since an instance's last heartbeat: "
                             "give how many are too many (e.g. 60)")
        return value

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a channel name (letters, digits, _ . -; at most 64)")
        return list(dict.fromkeys(value))

    @field_validator("target")
    @classmethod
    def _target_fits_signal(cls, target: Target, info: ValidationInfo) -> Target:
        signal = info.data.get("signal")
        if signal is None:
            return target
        if signal in METRIC_SIGNALS and not target.metric:
            raise ValueError(f"target.metric is required for signal {signal.value}")
        if signal in SPAN_SIGNALS and not target.service and target.group_by != "service":
            raise ValueError(f"target.service is required for signal {signal.value} "
                             "(or target.group_by = 'service')")
        if target.peer_service and not target.service:
            raise ValueError("target.peer_service needs target.service (the calling side of the edge)")
        if target.group_by and signal not in SPAN_SIGNALS:
            raise ValueError(f"target.group_by applies to span signals only, not {signal.value}")
        if target.metric and signal not in METRIC_SIGNALS:
            raise ValueError(f"target.metric applies to metric_value and metric_rate, not {signal.value}")
        return target


class RuleIn(RuleBody):
    """POST body: an optional id (generated when missing)."""

    id: str | None = Field(None, description="letters, digits, _ . -; generated when missing")

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError("must be letters, digits, _ . - (at most 64, starting with a letter or digit)")
        return value


class RuleOut(RuleBody):
    id: str
    source: Literal["api", "file"] = "api"
    updated_at: datetime | None = None
    state: AlertStateName = Field("ok", description="the most severe state over the rule's series")
    silenced_until: datetime | None = None


class ChannelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["webhook", "log", "email"]
    url: str | None = Field(None, validate_default=True, max_length=2048, description="webhook: http(s) URL")
    secret: str | None = Field(None, max_length=512,
                               description="webhook: HMAC-SHA256 key for the X-TraceHouse-Signature header")
    format: Literal["json", "slack"] = Field("json", description="webhook: full JSON, or Slack's {\"text\": ...}")
    headers: dict[str, str] = Field(default_factory=dict, description="webhook: extra HTTP headers")
    to: list[str] = Field(default_factory=list, validate_default=True, max_length=50, description="email: recipients")
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _url_for_webhook(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == "webhook":
            if not value:
                raise ValueError("a webhook channel needs a url")
            if not re.match(r"^https?://[^\s/]+", value):
                raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _header_shape(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}", name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} must not contain line breaks")
        return value

    @field_validator("to")
    @classmethod
    def _recipients_for_email(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("type") == "email":
            if not value:
                raise ValueError("an email channel needs at least one recipient")
            for address in value:
                if not re.match(r"^[^@\s]+@[^@\s]+$", address):
                    raise ValueError(f"{address!r} is not an email address")
        return value


class ChannelIn(ChannelBody):
    name: str = Field(..., description="letters, digits, _ . -; at most 64")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be letters, digits, _ . - (at most 64, starting with a letter or digit)")
        return value


class ChannelOut(ChannelBody):
    name: str
    source: Literal["api", "file", "builtin"] = "api"
    has_secret: bool = False


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: datetime = Field(..., description="notifications of the rule are muted until this time (RFC 3339)")
    comment: str = Field("", max_length=1000)

    @field_validator("until")
    @classmethod
    def _storable(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if not 1970 <= value.year < 2200:
            raise ValueError("must be between 1970 and 2199")
        return value


class SilenceOut(BaseModel):
    rule_id: str
    until: datetime
    comment: str
    active: bool


class SeriesValue(BaseModel):
    series: str = Field(..., description="the series key ('' for a rule with one series)")
    labels: dict[str, str]
    value: float | None


class AlertOut(BaseModel):
    """One pending or firing series."""

    rule_id: str
    rule_name: str
    severity: Severity
    signal: Signal
    series: str
    labels: dict[str, str]
    state: AlertStateName
    value: float | None
    op: Op
    threshold: float
    active_since: datetime | None
    fired_at: datetime | None
    silenced: bool


class SeriesStateOut(BaseModel):
    """One series of a rule as the evaluator last left it."""

    series: str
    labels: dict[str, str]
    state: AlertStateName
    value: float | None
    active_since: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    evaluated_at: datetime | None


class HistoryEntry(BaseModel):
    at: datetime
    rule_id: str
    rule_name: str
    series: str
    labels: dict[str, str]
    from_state: AlertStateName
    to_state: AlertStateName
    value: float | None
    threshold: float
    severity: str
    silenced: bool


class NotificationRecord(BaseModel):
    at: datetime
    delivery_id: str
    rule_id: str
    rule_name: str
    series: str
    kind: Literal["firing", "resolved", "repeat", "test"]
    channel: str
    ok: bool
    attempts: int
    status_code: int
    error: str


class ChannelTestResult(BaseModel):
    delivery_id: str
    ok: bool
    attempts: int
    status_code: int = Field(..., description="the HTTP or SMTP status of the last attempt (0: none)")
    error: str


class WouldNotify(BaseModel):
    channel: str
    kind: str
    series: str
    payload: dict[str, Any]


class RuleTestResult(BaseModel):
    value: float | None = Field(..., description="the value of the rule's first series (the worst one when several)")
    state: AlertStateName = Field(..., description="the state the rule would be in after this evaluation")
    would_notify: list[WouldNotify] = Field(..., description="what this evaluation would send (transitions only)")
    preview: list[WouldNotify] = Field(default_factory=list,
                                       description="per channel, the body a notification about the worst series "
                                                   "would carry, whether or not one is due")
    series: list[Annotated[dict[str, Any], Field(description="per series: series, labels, value, state")]]
    error: str | None = None
