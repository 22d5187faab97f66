"""Sends notifications off the evaluation loop: a small thread pool, one task per (channel,
notification); outcomes are queued and written to the delivery log by the evaluator's thread."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from tracehouse.query.alerts.channels import (
    LOG_CHANNEL,
    DeliveryResult,
    EmailSender,
    Notification,
    WebhookSender,
    send_to_log,
)
from tracehouse.query.alerts.models import ChannelBody
from tracehouse.query.alerts.repository import NotificationRow, now_ms
from tracehouse.query.alerts.settings import AlertSettings

log = logging.getLogger("tracehouse.alerts")


class Notifier:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=settings.delivery_workers,
                                        thread_name_prefix="tracehouse-alert-send")
        self._webhook = WebhookSender(settings, self._stop)
        self._email = EmailSender(settings, self._stop)
        self._outcomes: queue.SimpleQueue[NotificationRow] = queue.SimpleQueue()
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._closed = False

    def deliver(self, channel_name: str, channel: ChannelBody | None, notification: Notification) -> DeliveryResult:
        """Sends one notification to one channel, synchronously (with the channel's retries)."""
        if channel_name == LOG_CHANNEL and channel is None:
            return send_to_log(notification)
        if channel is None:
            return DeliveryResult(False, 0, 0, f"channel {channel_name!r} does not exist")
        if not channel.enabled:
            return DeliveryResult(False, 0, 0, f"channel {channel_name!r} is disabled")
        if channel.type == "webhook":
            return self._webhook.send(channel, notification)
        if channel.type == "email":
            return self._email.send(channel, notification)
        return send_to_log(notification)

    def submit(self, channel_name: str, channel: ChannelBody | None, notification: Notification) -> None:
        with self._lock:
            if self._closed:
                log.warning("alert %s to %s dropped: shutting down", notification.kind, channel_name)
                return
            future = self._pool.submit(self._run, channel_name, channel, notification)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _run(self, channel_name: str, channel: ChannelBody | None, notification: Notification) -> None:
        try:
            result = self.deliver(channel_name, channel, notification)
        except Exception as exc:  # noqa: BLE001 - a sender bug must not kill the worker
            log.exception("alert delivery to %s failed", channel_name)
            result = DeliveryResult(False, 1, 0, f"{type(exc).__name__}: {exc}")
        if not result.ok:
            log.warning("alert %s of %r to channel %s failed after %d attempt(s): %s", notification.kind,
                        notification.rule_name, channel_name, result.attempts, result.error)
        self._outcomes.put(NotificationRow(
            at_ms=now_ms(), delivery_id=notification.delivery_id, rule_id=notification.rule_id,
            rule_name=notification.rule_name, series=notification.series, kind=notification.kind,
            channel=channel_name, ok=result.ok, attempts=result.attempts, status_code=result.status_code,
            error=result.error))

    def drain(self) -> list[NotificationRow]:
        """Delivery outcomes recorded since the last call."""
        rows = []
        while True:
            try:
                rows.append(self._outcomes.get_nowait())
            except queue.Empty:
                return rows

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stops retry waits, lets running attempts finish (bounded by `timeout_s`), closes clients."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending)
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for future in pending:
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001,S112 - timeouts and failures are already logged
                continue
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._webhook.close()


