"""Notification channels: webhook (JSON or Slack-style text, HMAC-signed, retried with backoff), the
log, and email over SMTP. Each `send` returns a `DeliveryResult` and never raises."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from tracehouse.query.alerts.models import ChannelBody
from tracehouse.query.alerts.repository import from_ms, now_ms
from tracehouse.query.alerts.settings import AlertSettings

log = logging.getLogger("tracehouse.alerts")

SIGNATURE_HEADER = "X-TraceHouse-Signature"
DELIVERY_HEADER = "X-TraceHouse-Delivery"
EVENT_HEADER = "X-TraceHouse-Event"
MAX_BACKOFF_S = 30.0
LOG_CHANNEL = "log"  # always available; rules without channels notify it


@dataclass(frozen=True)
class Notification:
    """What is announced: one series of one rule changing state (or repeating)."""

    kind: str  # firing | resolved | repeat | test
    delivery_id: str
    rule_id: str
    rule_name: str
    description: str
    severity: str
    signal: str
    op: str
    threshold: float
    rule_labels: Mapping[str, str]
    target: Mapping[str, Any]
    series: str
    series_labels: Mapping[str, str]
    value: float | None
    active_since_ms: int
    fired_at_ms: int
    resolved_at_ms: int
    at_ms: int = field(default_factory=now_ms)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "resolved" if self.kind == "resolved" else "firing"

    def text(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.target.items() if v not in (None, "", {}, [])) or "all"
        series = f" [{self.series}]" if self.series else ""
        value = "no data" if self.value is None else f"{self.value:.6g}"
        prefix = {"firing": "FIRING", "resolved": "RESOLVED", "repeat": "STILL FIRING", "test": "TEST"}[self.kind]
        return (f"[{prefix}] {self.rule_name} ({self.severity}): {self.signal} = {value}, "
                f"rule {self.op} {self.threshold:g}; {where}{series}")


def _iso(epoch_ms: int) -> str | None:
    return from_ms(epoch_ms).isoformat().replace("+00:00", "Z") if epoch_ms else None


def payload(notification: Notification) -> dict[str, Any]:
    """The JSON body of a webhook (format "json")."""
    n = notification
    return {
        "version": "1",
        "delivery_id": n.delivery_id,
        "kind": n.kind,
        "status": n.status,
        "rule": {"id": n.rule_id, "name": n.rule_name, "description": n.description, "severity": n.severity,
                 "signal": n.signal, "op": n.op, "threshold": n.threshold, "labels": dict(n.rule_labels),
                 "target": dict(n.target)},
        "series": n.series,
        "labels": {**n.rule_labels, **n.series_labels},
        "value": n.value,
        "active_since": _iso(n.active_since_ms),
        "fired_at": _iso(n.fired_at_ms),
        "resolved_at": _iso(n.resolved_at_ms),
        "sent_at": _iso(n.at_ms),
        "details": dict(n.details),
        "text": n.text(),
    }


def body_for(channel: ChannelBody, notification: Notification) -> dict[str, Any]:
    if channel.format == "slack":
        return {"text": notification.text()}
    return payload(notification)


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact request body with the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    attempts: int
    status_code: int = 0
    error: str = ""


class _Retryable(Exception):
    def __init__(self, message: str, status_code: int = 0, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class _Permanent(Exception):
    def __init__(self, message: str, status_code: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code


def retry(attempt_once: Callable[[], int], *, max_attempts: int, backoff_s: float,
          stop: threading.Event) -> DeliveryResult:
    """Runs `attempt_once` until it returns (a status code) or fails permanently, waiting
    backoff_s, 2*backoff_s, ... (at most 30 s, or the server's Retry-After) between attempts.
    A set `stop` event ends the waiting early."""
    last_error, last_status = "", 0
    for attempt in range(1, max_attempts + 1):
        try:
            return DeliveryResult(True, attempt, attempt_once())
        except _Permanent as exc:
            return DeliveryResult(False, attempt, exc.status_code, str(exc))
        except _Retryable as exc:
            last_error, last_status = str(exc), exc.status_code
            delay_s = min(backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            if exc.retry_after_s is not None:
                delay_s = min(max(delay_s, exc.retry_after_s), MAX_BACKOFF_S)
        if attempt < max_attempts and stop.wait(delay_s):
            return DeliveryResult(False, attempt, last_status, f"stopped while retrying: {last_error}")
    return DeliveryResult(False, max_attempts, last_status, last_error)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class WebhookSender:
    def __init__(self, settings: AlertSettings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self.http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def send(self, channel: ChannelBody, notification: Notification) -> DeliveryResult:
        assert channel.url is not None  # validated by ChannelBody
        body = json.dumps(body_for(channel, notification), separators=(",", ":"), sort_keys=True).encode()
        headers = {**channel.headers, "Content-Type": "application/json", "User-Agent": "TraceHouse-Alerts/1",
                   DELIVERY_HEADER: notification.delivery_id, EVENT_HEADER: notification.kind}
        if channel.secret:
            headers[SIGNATURE_HEADER] = sign(channel.secret, body)
        url = channel.url

        def once() -> int:
            try:
                response = self.http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            status = response.status_code
            if 200 <= status < 300:
                return status
            if status in (408, 425, 429) or status >= 500:
                raise _Retryable(f"HTTP {status}", status, _retry_after(response))
            raise _Permanent(f"HTTP {status}: {response.text[:200]}", status)

        return retry(once, max_attempts=self.settings.webhook_max_attempts,
                     backoff_s=self.settings.webhook_backoff_s, stop=self.stop)

    def close(self) -> None:
        self.http.close()


class EmailSender:
    def __init__(self, settings: AlertSettings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop

    def send(self, channel: ChannelBody, notification: Notification) -> DeliveryResult:
        s = self.settings
        if not s.smtp_host:
            return DeliveryResult(False, 0, 0, "smtp_host is not configured")
        smtp_host = s.smtp_host
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = ", ".join(channel.to)
        message["Subject"] = notification.text()[:200]
        message.set_content(notification.text() + "\n\n" + json.dumps(payload(notification), indent=2))

        def once() -> int:
            try:
                with smtplib.SMTP(smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
                    if s.smtp_starttls:
                        smtp.starttls()
                    if s.smtp_user:
                        smtp.login(s.smtp_user, s.smtp_password or "")
                    smtp.send_message(message)
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500:
                    raise _Retryable(f"SMTP {exc.smtp_code}", exc.smtp_code) from exc
                raise _Permanent(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", exc.smtp_code) from exc
            except (OSError, smtplib.SMTPException) as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            return 250

        return retry(once, max_attempts=s.webhook_max_attempts, backoff_s=s.webhook_backoff_s, stop=self.stop)


def send_to_log(notification: Notification) -> DeliveryResult:
    log.warning("alert %s", notification.text(),
                extra={"alert": payload(notification)})
    return DeliveryResult(True, 1, 0)
