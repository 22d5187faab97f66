"""Settings of the alert evaluator: `load_settings(AlertSettings, toml=..., section="alerts")`.

Environment variables: TRACEHOUSE_EVALUATION_INTERVAL_S, TRACEHOUSE_RULES_FILE, TRACEHOUSE_LEASE_TTL_S,
TRACEHOUSE_REPLICA_ID, TRACEHOUSE_ALERTS_ENABLED, TRACEHOUSE_REPEAT_INTERVAL_S,
TRACEHOUSE_WEBHOOK_TIMEOUT_S, TRACEHOUSE_WEBHOOK_MAX_ATTEMPTS, TRACEHOUSE_WEBHOOK_BACKOFF_S,
TRACEHOUSE_SMTP_HOST, TRACEHOUSE_SMTP_PORT, TRACEHOUSE_SMTP_FROM, TRACEHOUSE_SMTP_USER,
TRACEHOUSE_SMTP_PASSWORD, TRACEHOUSE_SMTP_STARTTLS.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tracehouse.config import require


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class AlertSettings:
    alerts_enabled: bool = True  # run the evaluator at all (the API works either way)
    evaluation_interval_s: float = 30.0  # how often rules are evaluated
    rules_file: str | None = None  # YAML (.yaml/.yml) or TOML (.toml) with `rules` and `channels`, loaded at start
    lease_ttl_s: float | None = None  # how long a replica's evaluator lease lasts; default 3 intervals, at least 10 s
    lease_settle_s: float = 0.5  # wait after claiming a free lease before reading who won
    replica_id: str = field(default_factory=_default_replica_id)  # this process's name in the lease
    repeat_interval_s: float = 4 * 3600.0  # default re-notification period while firing; 0 = never
    webhook_timeout_s: float = 5.0  # per HTTP attempt
    webhook_max_attempts: int = 5  # attempts per notification and channel
    webhook_backoff_s: float = 0.5  # first retry delay; doubles per attempt, capped at 30 s
    delivery_workers: int = 4  # notifications are sent by this many threads, off the evaluation loop
    smtp_host: str | None = None  # email channels need this
    smtp_port: int = 25
    smtp_from: str = "tracehouse@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        require(self.evaluation_interval_s >= 0.05,
                f"evaluation_interval_s must be at least 0.05 seconds, not {self.evaluation_interval_s}")
        require(self.lease_ttl_s is None or self.lease_ttl_s > self.evaluation_interval_s,
                f"lease_ttl_s ({self.lease_ttl_s}) must be longer than evaluation_interval_s "
                f"({self.evaluation_interval_s})")
        require(0 <= self.lease_settle_s < 60, "lease_settle_s must be between 0 and 60 seconds")
        require(bool(self.replica_id.strip()), "replica_id must not be empty")
        require(self.repeat_interval_s >= 0, "repeat_interval_s must be 0 (never repeat) or more seconds")
        require(self.webhook_timeout_s > 0, "webhook_timeout_s must be positive")
        require(1 <= self.webhook_max_attempts <= 20, "webhook_max_attempts must be between 1 and 20")
        require(self.webhook_backoff_s >= 0, "webhook_backoff_s must be 0 or more seconds")
        require(1 <= self.delivery_workers <= 64, "delivery_workers must be between 1 and 64")
        require(0 < self.smtp_port <= 65535, f"smtp_port must be a TCP port, not {self.smtp_port}")
        if self.rules_file:
            path = Path(self.rules_file)
            require(path.suffix.lower() in (".yaml", ".yml", ".toml"),
                    f"rules_file {self.rules_file} must end in .yaml, .yml or .toml")
            require(path.is_file(), f"rules_file {self.rules_file} does not exist")

    @property
    def effective_lease_ttl_s(self) -> float:
        if self.lease_ttl_s is not None:
            return self.lease_ttl_s
        return max(3 * self.evaluation_interval_s, 10.0)
