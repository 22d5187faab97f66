"""The per-series state machine, pure: ok → pending → firing → resolved (→ pending/firing again).

One evaluation of one series is `step(previous, condition, ...)`. A notification is asked for on the
transition into firing and into resolved (once each), and every `repeat_interval_s` while firing.
A silenced rule changes state as usual but asks for nothing; a firing that was never announced
(because it began during a silence) is announced once the silence ends, and its resolution is
announced only if its firing was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

StateName = Literal["ok", "pending", "firing", "resolved"]
NotificationKind = Literal["firing", "resolved", "repeat"]
SEVERITY_ORDER: dict[str, int] = {"ok": 0, "resolved": 0, "pending": 1, "firing": 2}


@dataclass(frozen=True)
class SeriesState:
    rule_id: str
    series: str
    labels: dict[str, str] = field(default_factory=dict)
    state: StateName = "ok"
    value: float | None = None
    active_since_ms: int = 0  # when the condition began to hold (pending or firing)
    fired_at_ms: int = 0
    resolved_at_ms: int = 0
    last_notified_ms: int = 0  # the last firing/repeat notification of the current episode
    evaluated_at_ms: int = 0


@dataclass(frozen=True)
class Step:
    state: SeriesState
    previous: StateName
    notify: NotificationKind | None

    @property
    def changed(self) -> bool:
        return self.state.state != self.previous


def step(previous: SeriesState, *, condition: bool, value: float | None, now_ms: int, for_s: float,
         repeat_interval_s: float, silenced: bool, labels: dict[str, str] | None = None) -> Step:
    """The next state of one series after an evaluation at `now_ms`."""
    current = replace(previous, value=value, evaluated_at_ms=now_ms,
                      labels=dict(labels) if labels is not None else previous.labels)
    before = previous.state
    if condition:
        if before in ("ok", "resolved"):
            current = replace(current, state="pending", active_since_ms=now_ms, fired_at_ms=0,
                              resolved_at_ms=0, last_notified_ms=0)
        if current.state == "pending" and now_ms - current.active_since_ms >= for_s * 1000:
            current = replace(current, state="firing", fired_at_ms=now_ms)
        if current.state != "firing" or silenced:
            return Step(current, before, None)
        if current.last_notified_ms < current.fired_at_ms:
            return Step(replace(current, last_notified_ms=now_ms), before, "firing")
        if repeat_interval_s > 0 and now_ms - current.last_notified_ms >= repeat_interval_s * 1000:
            return Step(replace(current, last_notified_ms=now_ms), before, "repeat")
        return Step(current, before, None)
    if before == "pending":
        return Step(replace(current, state="ok", active_since_ms=0), before, None)
    if before == "firing":
        announced = current.last_notified_ms >= current.fired_at_ms > 0
        current = replace(current, state="resolved", resolved_at_ms=now_ms, active_since_ms=0)
        return Step(current, before, "resolved" if announced and not silenced else None)
    return Step(current, before, None)


def worst_state(states: list[StateName]) -> StateName:
    """The rule-level badge: firing over pending over everything else."""
    best: StateName = "ok"
    for state in states:
        if SEVERITY_ORDER[state] > SEVERITY_ORDER[best]:
            best = state
    if best == "ok" and states and all(s == "resolved" for s in states):
        return "resolved"
    return best
