"""One evaluation pass: signal values → state machine → state, history and notifications."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from tracehouse.query.alerts.channels import LOG_CHANNEL, Notification
from tracehouse.query.alerts.models import compare
from tracehouse.query.alerts.repository import AlertRepository, HistoryRow, StoredRule
from tracehouse.query.alerts.signals import Series, evaluate_signal
from tracehouse.query.alerts.state import SeriesState, Step, step

log = logging.getLogger("tracehouse.alerts")


@dataclass(frozen=True)
class SeriesOutcome:
    series: Series
    step: Step


@dataclass
class RuleEvaluation:
    rule: StoredRule
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    error: str | None = None

    @property
    def channels(self) -> list[str]:
        return self.rule.body.channels or [LOG_CHANNEL]


def notification_for(rule: StoredRule, outcome: SeriesOutcome, kind: str) -> Notification:
    body, state = rule.body, outcome.step.state
    return Notification(
        kind=kind, delivery_id=uuid.uuid4().hex, rule_id=rule.id, rule_name=body.name,
        description=body.description, severity=body.severity, signal=body.signal.value, op=body.op,
        threshold=body.threshold, rule_labels=dict(body.labels),
        target=body.target.model_dump(exclude_defaults=True), series=state.series,
        series_labels=dict(state.labels), value=state.value, active_since_ms=state.active_since_ms,
        fired_at_ms=state.fired_at_ms, resolved_at_ms=state.resolved_at_ms, at_ms=state.evaluated_at_ms,
        details=dict(outcome.series.details))


def evaluate_rule(client: Client, rule: StoredRule, previous: Mapping[str, SeriesState], *, now_ms: int,
                  silenced: bool, default_repeat_interval_s: float) -> RuleEvaluation:
    """Evaluates one rule at `now_ms` against its series' previous states (keyed by series).
    Series seen before but absent now count as "condition false" (no data)."""
    result = RuleEvaluation(rule)
    body = rule.body
    repeat_s = body.repeat_interval_s if body.repeat_interval_s is not None else default_repeat_interval_s
    try:
        current = evaluate_signal(client, body, now_ms)
    except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the others
        log.warning("alert rule %s (%s) could not be evaluated: %s", rule.id, body.name, exc)
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    seen = {s.key for s in current}
    gone = [Series(key, dict(state.labels), None) for key, state in sorted(previous.items())
            if key not in seen and state.state in ("pending", "firing")]
    for series in [*current, *gone]:
        before = previous.get(series.key) or SeriesState(rule_id=rule.id, series=series.key)
        condition = series.value is not None and compare(series.value, body.op, body.threshold)
        outcome = SeriesOutcome(series, step(before, condition=condition, value=series.value, now_ms=now_ms,
                                             for_s=body.for_s, repeat_interval_s=repeat_s, silenced=silenced,
                                             labels=dict(series.labels)))
        result.outcomes.append(outcome)
        if outcome.step.notify:
            result.notifications.append(notification_for(rule, outcome, outcome.step.notify))
    return result


@dataclass(frozen=True)
class PassReport:
    rules: int
    series: int
    transitions: int
    notifications: list[tuple[str, Notification]]  # (channel name, notification)
    errors: dict[str, str]


def _history(rule_id: str, rule: StoredRule | None, result: Step, *, now_ms: int, silenced: bool,
             replica_id: str) -> HistoryRow:
    new = result.state
    return HistoryRow(at_ms=now_ms, rule_id=rule_id, rule_name=rule.body.name if rule else "", series=new.series,
                      labels=dict(new.labels), from_state=result.previous, to_state=new.state, value=new.value,
                      threshold=rule.body.threshold if rule else 0.0, severity=rule.body.severity if rule else "",
                      silenced=silenced, replica=replica_id)


def evaluate_all(client: Client, repository: AlertRepository, *, now_ms: int, replica_id: str,
                 default_repeat_interval_s: float, still_leader: Callable[[], bool] | None = None) -> PassReport:
    """Evaluates every enabled rule, stores states and history, and returns what to send.

    Series of a rule that was disabled or deleted while pending or firing resolve at once; a disabled
    rule announces the resolution of what it had announced firing (a deleted one has no channels left)."""
    every_rule = repository.list_rules()
    rules = [r for r in every_rule if r.body.enabled]
    switched_off = {r.id: r for r in every_rule if not r.body.enabled}
    states = repository.load_states()
    silences = repository.active_silences(now_ms)
    by_rule: dict[str, dict[str, SeriesState]] = {}
    for (rule_id, series), state in states.items():
        by_rule.setdefault(rule_id, {})[series] = state
    to_save: list[SeriesState] = []
    history: list[HistoryRow] = []
    sends: list[tuple[str, Notification]] = []
    errors: dict[str, str] = {}
    series_count = 0
    for rule in rules:
        evaluation = evaluate_rule(client, rule, by_rule.get(rule.id, {}), now_ms=now_ms,
                                   silenced=rule.id in silences, default_repeat_interval_s=default_repeat_interval_s)
        if evaluation.error:
            errors[rule.id] = evaluation.error
            continue
        for outcome in evaluation.outcomes:
            series_count += 1
            new = outcome.step.state
            old = by_rule.get(rule.id, {}).get(new.series)
            if old is None and new.state == "ok" and new.value is None:
                continue  # nothing to remember
            to_save.append(new)
            if outcome.step.changed:
                history.append(_history(rule.id, rule, outcome.step, now_ms=now_ms, silenced=rule.id in silences,
                                        replica_id=replica_id))
        for notification in evaluation.notifications:
            sends += [(channel, notification) for channel in evaluation.channels]
    enabled = {r.id for r in rules}
    for rule_id, series_states in sorted(by_rule.items()):
        if rule_id in enabled:
            continue
        stopped = switched_off.get(rule_id)
        for state in series_states.values():
            if state.state not in ("pending", "firing"):
                continue
            result = step(state, condition=False, value=None, now_ms=now_ms, for_s=0, repeat_interval_s=0,
                          silenced=rule_id in silences or stopped is None)
            to_save.append(result.state)
            history.append(_history(rule_id, stopped, result, now_ms=now_ms, silenced=rule_id in silences,
                                    replica_id=replica_id))
            if result.notify and stopped is not None:
                outcome = SeriesOutcome(Series(state.series, dict(state.labels), None), result)
                notification = notification_for(stopped, outcome, result.notify)
                sends += [(channel, notification) for channel in (stopped.body.channels or [LOG_CHANNEL])]
    if still_leader is not None and not still_leader():
        # The lease lapsed during this pass (it took longer than the lease lasts): another replica
        # may be evaluating now, so this pass writes and sends nothing.
        log.warning("alert evaluation pass dropped: the lease lapsed while it ran")
        return PassReport(len(rules), series_count, 0, [], {**errors, "lease": "lapsed during the pass"})
    # State first, then history, then sending: a crash in between loses a notification rather than
    # repeating one, and the next pass does not see the transition again.
    repository.save_states(to_save)
    repository.append_history(history)
    return PassReport(len(rules), series_count, len(history), sends, errors)
