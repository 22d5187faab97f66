"""The alert evaluator as a component of the query process: `start()`, `shutdown()`.

Each replica runs one evaluator thread. Every `evaluation_interval_s` it tries to take or renew the
lease (lease.py); the holder evaluates every enabled rule and hands notifications to the notifier.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tracehouse import storage
from tracehouse.query.alerts import rules_file
from tracehouse.query.alerts.evaluator import PassReport, evaluate_all
from tracehouse.query.alerts.lease import Lease
from tracehouse.query.alerts.notifier import Notifier
from tracehouse.query.alerts.repository import AlertRepository, now_ms
from tracehouse.query.alerts.settings import AlertSettings

log = logging.getLogger("tracehouse.alerts")


class AlertMetrics:
    """The evaluator's own metrics in a registry of its own (Prometheus text from `render()`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.passes = Counter("tracehouse_alert_evaluation_passes", "Evaluation passes run by this replica",
                              registry=r)
        self.pass_seconds = Histogram("tracehouse_alert_evaluation_duration_seconds", "Duration of a pass",
                                      registry=r, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.transitions = Counter("tracehouse_alert_transitions", "State transitions recorded", registry=r)
        self.rule_errors = Counter("tracehouse_alert_rule_errors", "Rules that could not be evaluated", registry=r)
        self.notifications = Counter("tracehouse_alert_notifications", "Notifications per channel by outcome",
                                     ["outcome"], registry=r)
        self.leader = Gauge("tracehouse_alert_evaluator_leader", "1 while this replica holds the evaluator lease",
                            registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class EvaluatorStatus:
    replica_id: str
    running: bool = False
    leader: bool = False
    passes: int = 0  # evaluation passes this replica ran
    last_pass_ms: int = 0
    last_pass_duration_ms: float = 0.0
    last_error: str = ""
    rules_evaluated: int = 0
    notifications_sent: int = 0
    notifications_failed: int = 0


class AlertService:
    def __init__(self, dsn: str, settings: AlertSettings, *, database: str | None = None) -> None:
        storage.validate_dsn(dsn)
        self.dsn = dsn
        self.database = database
        self.settings = settings
        self.status = EvaluatorStatus(settings.replica_id)
        self.metrics = AlertMetrics()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notifier: Notifier | None = None
        self._client: Client | None = None
        self._lease: Lease | None = None
        self._lock = threading.Lock()  # one evaluation pass at a time (thread or evaluate_now)
        self._started = False
        self._shut_down = False
        self._pending_rules: rules_file.RulesFile | None = None

    def _apply_rules_file(self, repository: AlertRepository) -> None:
        parsed = self._pending_rules
        if parsed is None:
            return
        written, removed = rules_file.apply(repository, parsed)
        self._pending_rules = None
        log.info("rules file %s: %d rules, %d channels (%d rules written, %d removed)",
                 self.settings.rules_file, len(parsed.rules), len(parsed.channels), written, removed)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Applies the rules file (a bad file raises ConfigError here) and starts the evaluator
        thread, unless `alerts_enabled` is false. Calling it twice does nothing more."""
        if self._started:
            return
        self._started = True
        if self.settings.rules_file:
            self._pending_rules = rules_file.parse(self.settings.rules_file)  # a bad file fails here
            try:
                client = self._connect()
                try:
                    self._apply_rules_file(AlertRepository(client))
                finally:
                    client.close()
            except Exception as exc:  # noqa: BLE001 - the store may be down: the evaluator retries
                log.warning("rules file %s not applied yet (%s); the evaluator will retry",
                            self.settings.rules_file, exc)
        if not self.settings.alerts_enabled:
            log.info("alert evaluation is disabled (alerts_enabled = false)")
            return
        self._notifier = Notifier(self.settings)
        self._thread = threading.Thread(target=self._run, name="tracehouse-alert-evaluator", daemon=True)
        self.status.running = True
        self._thread.start()

    def shutdown(self) -> None:
        """Stops the evaluator, waits for deliveries in progress (bounded), records their outcomes,
        and gives up the lease so another replica takes over at once. Safe to call repeatedly or
        without start()."""
        if self._shut_down:
            return
        self._shut_down = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(30.0, self.settings.evaluation_interval_s * 2))
        if self._notifier is not None:
            self._notifier.shutdown(timeout_s=self.settings.webhook_timeout_s + 1)
        with self._lock:
            if self._client is not None:
                try:
                    self._record_outcomes(AlertRepository(self._client))
                    if self._lease is not None:
                        self._lease.release()
                except Exception as exc:  # noqa: BLE001 - shutting down: log and go on
                    log.warning("alert evaluator shutdown: %s", exc)
                self._client.close()
                self._client = None
        self.status.running = False
        self.status.leader = False
        self.metrics.leader.set(0)

    # -- evaluation ------------------------------------------------------------------------
    def _connect(self) -> Client:
        return storage.connect(self.dsn, database=self.database)

    def _run(self) -> None:
        interval_s = self.settings.evaluation_interval_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.evaluate_now()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive store outages
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("alert evaluation failed: %s", exc)
                self._reset_client()
            elapsed = time.monotonic() - started
            self._stop.wait(max(0.0, interval_s - elapsed))
        self.status.running = False

    def _reset_client(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):  # it was failing anyway
                    self._client.close()
            self._client = None
            self._lease = None

    def evaluate_now(self) -> PassReport | None:
        """One pass: take or renew the lease and, when held, evaluate every rule. Returns the
        pass's report, or None when another replica holds the lease."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
                self._lease = Lease(self._client, self.settings.replica_id,
                                    ttl_s=self.settings.effective_lease_ttl_s, settle_s=self.settings.lease_settle_s)
            client, lease = self._client, self._lease
            assert lease is not None
            repository = AlertRepository(client)
            self._apply_rules_file(repository)
            self._record_outcomes(repository)
            leader = lease.try_acquire()
            if leader != self.status.leader:
                log.info("alert evaluator lease %s by %s", "taken" if leader else "lost", self.settings.replica_id)
            self.status.leader = leader
            self.metrics.leader.set(1 if leader else 0)
            if not leader:
                return None
            started = time.monotonic()
            report = evaluate_all(client, repository, now_ms=now_ms(), replica_id=self.settings.replica_id,
                                  default_repeat_interval_s=self.settings.repeat_interval_s,
                                  still_leader=lambda: lease.still_held(margin_s=min(1.0, lease.settle_s * 2)))
            channels = {c.name: c.body for c in repository.list_channels()} if report.notifications else {}
            for channel_name, notification in report.notifications:
                if self._notifier is None:
                    break
                self._notifier.submit(channel_name, channels.get(channel_name), notification)
            self.status.passes += 1
            self.metrics.passes.inc()
            self.metrics.pass_seconds.observe(time.monotonic() - started)
            self.metrics.transitions.inc(report.transitions)
            self.metrics.rule_errors.inc(len(report.errors))
            self.status.last_pass_ms = now_ms()
            self.status.last_pass_duration_ms = (time.monotonic() - started) * 1000
            self.status.rules_evaluated = report.rules
            self.status.last_error = "; ".join(f"{k}: {v}" for k, v in report.errors.items())
            return report

    def _record_outcomes(self, repository: AlertRepository) -> None:
        if self._notifier is None:
            return
        rows = self._notifier.drain()
        if rows:
            repository.record_notifications(rows)
            self.status.notifications_sent += sum(1 for r in rows if r.ok)
            self.status.notifications_failed += sum(1 for r in rows if not r.ok)
            for row in rows:
                self.metrics.notifications.labels(outcome="sent" if row.ok else "failed").inc()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Waits until no notification is in flight, then writes their outcomes (for tests and shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._notifier is not None and self._notifier.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            if self._client is not None:
                self._record_outcomes(AlertRepository(self._client))

    def describe(self) -> dict[str, Any]:
        s = self.status
        return {"replica_id": s.replica_id, "running": s.running, "leader": s.leader, "passes": s.passes,
                "last_pass_ms": s.last_pass_ms, "last_pass_duration_ms": round(s.last_pass_duration_ms, 3),
                "last_error": s.last_error, "rules_evaluated": s.rules_evaluated,
                "notifications_sent": s.notifications_sent, "notifications_failed": s.notifications_failed,
                "evaluation_interval_s": self.settings.evaluation_interval_s,
                "in_flight": self._notifier.in_flight if self._notifier else 0}
