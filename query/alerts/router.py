"""`/api/v1/alerts/...`: rules, channels, silences, current alerts, history, deliveries, rule tests.

Routes take a store client (`Store`) and, when the app runs the evaluator, the `AlertService` on
`app.state.alerts` (for its settings and status).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from tracehouse.query.alerts.channels import LOG_CHANNEL, Notification, body_for, payload
from tracehouse.query.alerts.evaluator import evaluate_rule, notification_for
from tracehouse.query.alerts.models import (
    AlertOut,
    ChannelBody,
    ChannelIn,
    ChannelOut,
    ChannelTestResult,
    HistoryEntry,
    NotificationRecord,
    RuleBody,
    RuleIn,
    RuleOut,
    RuleTestResult,
    SeriesStateOut,
    SilenceIn,
    SilenceOut,
    WouldNotify,
)
from tracehouse.query.alerts.notifier import Notifier
from tracehouse.query.alerts.repository import (
    AlertRepository,
    NotificationRow,
    StoredRule,
    from_ms,
    now_ms,
    to_ms,
)
from tracehouse.query.alerts.rules_file import slug
from tracehouse.query.alerts.settings import AlertSettings
from tracehouse.query.alerts.state import SEVERITY_ORDER, StateName, worst_state
from tracehouse.query.store import Store


class ErrorOut(BaseModel):
    detail: str


def _answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {400: "a query parameter is malformed", 404: "no such rule or channel",
               409: "the id or name is taken, or the channel is in use"}
    return {code: {"model": ErrorOut, "description": meaning[code]} for code in codes}


router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"],
                   responses={503: {"model": ErrorOut, "description": "the store is unavailable"}})

SECRET_MASK = "********"
_ID_PATH = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def get_repository(client: Store) -> AlertRepository:
    return AlertRepository(client)


Repository = Annotated[AlertRepository, Depends(get_repository)]


def get_settings(request: Request) -> AlertSettings:
    service = getattr(request.app.state, "alerts", None)
    settings = getattr(service, "settings", None)
    if isinstance(settings, AlertSettings):
        return settings
    cached = getattr(request.app.state, "_alert_settings", None)
    if cached is None:
        cached = AlertSettings()
        request.app.state._alert_settings = cached
    return cached


Settings = Annotated[AlertSettings, Depends(get_settings)]


def parse_time(name: str, raw: str | None, default_ms: int) -> int:
    """RFC 3339 or Unix milliseconds; 400 naming the parameter otherwise."""
    if raw is None or raw == "":
        return default_ms
    if re.fullmatch(r"\d{1,16}", raw):
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name} must be RFC 3339 or Unix milliseconds, not {raw!r}") from None
    return to_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _unknown_channels(repository: AlertRepository, rule: RuleBody) -> None:
    known = {c.name for c in repository.list_channels()} | {LOG_CHANNEL}
    errors = [{"type": "value_error", "loc": ("body", "channels", index),
               "msg": f"Value error, channel {name!r} does not exist (create it under /api/v1/alerts/channels)",
               "input": name}
              for index, name in enumerate(rule.channels) if name not in known]
    if errors:
        raise RequestValidationError(errors)


def _rule_out(rule: StoredRule, states: list[StateName], silenced_until_ms: int | None) -> RuleOut:
    return RuleOut(**rule.body.model_dump(), id=rule.id, source="file" if rule.source == "file" else "api",
                   updated_at=from_ms(rule.updated_ms) if rule.updated_ms else None,
                   state=worst_state(states) if rule.body.enabled else "ok",
                   silenced_until=from_ms(silenced_until_ms) if silenced_until_ms else None)


def _rules_out(repository: AlertRepository, rule_id: str = "") -> list[RuleOut]:
    rules = repository.list_rules(rule_id)
    states: dict[str, list[StateName]] = {}
    for (rid, _), state in repository.load_states(rule_id).items():
        states.setdefault(rid, []).append(state.state)
    silences = repository.active_silences()
    return [_rule_out(r, states.get(r.id, []), silences[r.id].until_ms if r.id in silences else None)
            for r in rules]


def _new_rule_id(repository: AlertRepository, name: str) -> str:
    base = slug(name)[:56]
    if repository.get_rule(base) is None:
        return base
    return f"{base}-{uuid.uuid4().hex[:6]}"


# -- rules ---------------------------------------------------------------------------------
@router.get("/rules", response_model=list[RuleOut], summary="Every rule with its current state")
def list_rules(repository: Repository) -> list[RuleOut]:
    return _rules_out(repository)


@router.post("/rules", response_model=RuleOut, status_code=status.HTTP_201_CREATED, summary="Create a rule",
             responses=_answers(409))
def create_rule(rule: RuleIn, repository: Repository, response: Response) -> RuleOut:
    _unknown_channels(repository, rule)
    if rule.id is not None and repository.get_rule(rule.id) is not None:
        raise HTTPException(409, f"a rule with id {rule.id!r} exists; PUT /api/v1/alerts/rules/{rule.id} changes it")
    rule_id = rule.id or _new_rule_id(repository, rule.name)
    stored = repository.put_rule(rule_id, RuleBody.model_validate(rule.model_dump(exclude={"id"})))
    response.headers["Location"] = f"/api/v1/alerts/rules/{rule_id}"
    return _rule_out(stored, [], None)


@router.get("/rules/{rule_id}", response_model=RuleOut, summary="One rule", responses=_answers(404))
def get_rule(rule_id: str, repository: Repository) -> RuleOut:
    found = _rules_out(repository, rule_id)
    if not found:
        raise HTTPException(404, f"no rule {rule_id!r}")
    return found[0]


@router.put("/rules/{rule_id}", response_model=RuleOut, summary="Replace a rule (or create it with this id)")
def put_rule(rule_id: str, rule: RuleBody, repository: Repository) -> RuleOut:
    _check_id("rule_id", rule_id)
    _unknown_channels(repository, rule)
    repository.put_rule(rule_id, rule)
    return _rules_out(repository, rule_id)[0]


def _check_id(name: str, value: str) -> None:
    if not re.match(_ID_PATH, value):
        raise RequestValidationError([{"type": "value_error", "loc": ("path", name),
                                       "msg": "Value error, must be letters, digits, _ . - (at most 64, starting "
                                              "with a letter or digit)", "input": value}])


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a rule",
               responses=_answers(404))
def delete_rule(rule_id: str, repository: Repository) -> Response:
    if not repository.delete_rule(rule_id):
        raise HTTPException(404, f"no rule {rule_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/rules/{rule_id}/series", response_model=list[SeriesStateOut],
            summary="Every series of a rule with its state and last value", responses=_answers(404))
def rule_series(rule_id: str, repository: Repository) -> list[SeriesStateOut]:
    if repository.get_rule(rule_id) is None:
        raise HTTPException(404, f"no rule {rule_id!r}")

    def at(epoch_ms: int) -> datetime | None:
        return from_ms(epoch_ms) if epoch_ms else None

    return [SeriesStateOut(series=s.series, labels=s.labels, state=s.state, value=s.value,
                           active_since=at(s.active_since_ms), fired_at=at(s.fired_at_ms),
                           resolved_at=at(s.resolved_at_ms), evaluated_at=at(s.evaluated_at_ms))
            for s in repository.load_states(rule_id).values()]


def _test(repository: AlertRepository, rule: StoredRule, settings: AlertSettings) -> RuleTestResult:
    at_ms = now_ms()
    previous = {series: state for (_, series), state in repository.load_states(rule.id).items()}
    silenced = rule.id in repository.active_silences(at_ms)
    evaluation = evaluate_rule(repository.client, rule, previous, now_ms=at_ms, silenced=silenced,
                               default_repeat_interval_s=settings.repeat_interval_s)
    channels = {c.name: c.body for c in repository.list_channels()}
    would: list[WouldNotify] = []
    for notification in evaluation.notifications:
        for name in evaluation.channels:
            channel = channels.get(name)
            body = body_for(channel, notification) if channel is not None else payload(notification)
            would.append(WouldNotify(channel=name, kind=notification.kind, series=notification.series, payload=body))
    series = [{"series": o.series.key, "labels": dict(o.series.labels), "value": o.series.value,
               "state": o.step.state.state, "previous_state": o.step.previous, "details": dict(o.series.details)}
              for o in evaluation.outcomes]
    worst = max(evaluation.outcomes, key=lambda o: (SEVERITY_ORDER[o.step.state.state], o.series.value or 0.0),
                default=None)
    state = worst_state([o.step.state.state for o in evaluation.outcomes])
    preview: list[WouldNotify] = []
    if worst is not None:
        sample = notification_for(rule, worst, "test")
        for name in evaluation.channels:
            channel = channels.get(name)
            body = body_for(channel, sample) if channel is not None else payload(sample)
            preview.append(WouldNotify(channel=name, kind="test", series=sample.series, payload=body))
    return RuleTestResult(value=worst.series.value if worst else None,
                          state="ok" if state == "resolved" else state,
                          would_notify=would, preview=preview, series=series, error=evaluation.error)


@router.post("/rules/{rule_id}/test", response_model=RuleTestResult,
             summary="Evaluate a stored rule now: its value, the state it would be in, what would be sent",
             responses=_answers(404))
def test_rule(rule_id: str, repository: Repository, settings: Settings) -> RuleTestResult:
    rule = repository.get_rule(rule_id)
    if rule is None:
        raise HTTPException(404, f"no rule {rule_id!r}")
    return _test(repository, rule, settings)


@router.post("/test", response_model=RuleTestResult,
             summary="Evaluate a draft rule (not stored) as if it were new")
def test_draft(rule: RuleBody, repository: Repository, settings: Settings) -> RuleTestResult:
    _unknown_channels(repository, rule)
    return _test(repository, StoredRule(f"draft-{uuid.uuid4().hex[:8]}", rule, "api", 0), settings)


# -- silences ------------------------------------------------------------------------------
@router.put("/rules/{rule_id}/silence", response_model=SilenceOut, summary="Mute a rule's notifications until a time",
            responses=_answers(404))
def silence_rule(rule_id: str, silence: SilenceIn, repository: Repository) -> SilenceOut:
    if repository.get_rule(rule_id) is None:
        raise HTTPException(404, f"no rule {rule_id!r}")
    until_ms = to_ms(silence.until)
    repository.set_silence(rule_id, until_ms, silence.comment)
    return SilenceOut(rule_id=rule_id, until=from_ms(until_ms), comment=silence.comment, active=until_ms > now_ms())


@router.delete("/rules/{rule_id}/silence", status_code=status.HTTP_204_NO_CONTENT, summary="End a silence")
def unsilence_rule(rule_id: str, repository: Repository) -> Response:
    repository.clear_silence(rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/silences", response_model=list[SilenceOut], summary="Silences in effect")
def list_silences(repository: Repository) -> list[SilenceOut]:
    return [SilenceOut(rule_id=s.rule_id, until=from_ms(s.until_ms), comment=s.comment, active=True)
            for s in repository.active_silences().values()]


# -- alerts, history, deliveries -----------------------------------------------------------
@router.get("", response_model=list[AlertOut], summary="Pending and firing alerts now")
def active_alerts(repository: Repository,
                  state: Annotated[str | None, Query(pattern="^(pending|firing)$")] = None) -> list[AlertOut]:
    rules = {r.id: r for r in repository.list_rules() if r.body.enabled}
    silences = repository.active_silences()
    found = []
    for (rule_id, _), s in repository.load_states().items():
        rule = rules.get(rule_id)
        if rule is None or s.state not in ("pending", "firing") or (state and s.state != state):
            continue
        body = rule.body
        found.append(AlertOut(rule_id=rule_id, rule_name=body.name, severity=body.severity, signal=body.signal,
                              series=s.series, labels={**body.labels, **s.labels}, state=s.state, value=s.value,
                              op=body.op, threshold=body.threshold,
                              active_since=from_ms(s.active_since_ms) if s.active_since_ms else None,
                              fired_at=from_ms(s.fired_at_ms) if s.fired_at_ms else None,
                              silenced=rule_id in silences))
    found.sort(key=lambda a: (a.state != "firing", ["critical", "warning", "info"].index(a.severity), a.rule_name))
    return found


@router.get("/history", response_model=list[HistoryEntry], summary="State transitions, newest first",
            responses=_answers(400))
def history(repository: Repository, rule_id: str = "", start: str | None = None, end: str | None = None,
            limit: Annotated[int, Query(ge=1, le=10000)] = 200) -> list[HistoryEntry]:
    end_ms = parse_time("end", end, now_ms() + 60_000)
    start_ms = parse_time("start", start, 0)
    if start_ms > end_ms:
        raise HTTPException(400, "start must not be after end")
    return [HistoryEntry(at=from_ms(h.at_ms), rule_id=h.rule_id, rule_name=h.rule_name, series=h.series,
                         labels=h.labels, from_state=_state(h.from_state), to_state=_state(h.to_state),
                         value=h.value, threshold=h.threshold, severity=h.severity, silenced=h.silenced)
            for h in repository.history(rule_id=rule_id, start_ms=start_ms, end_ms=end_ms, limit=limit)]


def _state(name: str) -> StateName:
    return name if name in ("ok", "pending", "firing", "resolved") else "ok"


@router.get("/notifications", response_model=list[NotificationRecord],
            summary="Delivery outcomes per channel, newest first", responses=_answers(400))
def notifications(repository: Repository, rule_id: str = "", start: str | None = None, end: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=10000)] = 200) -> list[NotificationRecord]:
    end_ms = parse_time("end", end, now_ms() + 60_000)
    start_ms = parse_time("start", start, 0)
    return [NotificationRecord(at=from_ms(n.at_ms), delivery_id=n.delivery_id, rule_id=n.rule_id,
                               rule_name=n.rule_name, series=n.series, kind=n.kind,
                               channel=n.channel, ok=n.ok, attempts=n.attempts, status_code=n.status_code,
                               error=n.error)
            for n in repository.notifications(rule_id=rule_id, start_ms=start_ms, end_ms=end_ms, limit=limit)]


@router.get("/status", summary="The evaluator of this replica: lease, passes, last error")
def evaluator_status(request: Request) -> dict[str, Any]:
    service = getattr(request.app.state, "alerts", None)
    if service is None:
        return {"running": False, "leader": False, "passes": 0}
    described: dict[str, Any] = service.describe()
    return described


# -- channels ------------------------------------------------------------------------------
def _channel_out(name: str, body: ChannelBody, source: str) -> ChannelOut:
    data = body.model_dump()
    data["secret"] = SECRET_MASK if body.secret else None
    return ChannelOut(**data, name=name, source=source if source in ("api", "file") else "api",
                      has_secret=bool(body.secret))


@router.get("/channels", response_model=list[ChannelOut], summary="Notification channels (secrets masked)")
def list_channels(repository: Repository) -> list[ChannelOut]:
    found = [_channel_out(c.name, c.body, c.source) for c in repository.list_channels()]
    if not any(c.name == LOG_CHANNEL for c in found):
        found.insert(0, ChannelOut(name=LOG_CHANNEL, type="log", source="builtin"))
    return found


def _keep_secret(repository: AlertRepository, name: str, body: ChannelBody) -> ChannelBody:
    if body.secret == SECRET_MASK:
        old = repository.get_channel(name)
        return body.model_copy(update={"secret": old.body.secret if old else None})
    return body


@router.post("/channels", response_model=ChannelOut, status_code=status.HTTP_201_CREATED, summary="Create a channel",
             responses=_answers(409))
def create_channel(channel: ChannelIn, repository: Repository) -> ChannelOut:
    if repository.get_channel(channel.name) is not None:
        raise HTTPException(409, f"a channel named {channel.name!r} exists")
    body = ChannelBody.model_validate(channel.model_dump(exclude={"name"}))
    stored = repository.put_channel(channel.name, body)
    return _channel_out(stored.name, stored.body, stored.source)


@router.get("/channels/{name}", response_model=ChannelOut, summary="One channel", responses=_answers(404))
def get_channel(name: str, repository: Repository) -> ChannelOut:
    found = repository.get_channel(name)
    if found is None:
        if name == LOG_CHANNEL:
            return ChannelOut(name=LOG_CHANNEL, type="log", source="builtin")
        raise HTTPException(404, f"no channel {name!r}")
    return _channel_out(found.name, found.body, found.source)


@router.put("/channels/{name}", response_model=ChannelOut,
            summary="Replace a channel (a secret of ******** keeps the stored one)")
def put_channel(name: str, channel: ChannelBody, repository: Repository) -> ChannelOut:
    _check_id("name", name)
    stored = repository.put_channel(name, _keep_secret(repository, name, channel))
    return _channel_out(stored.name, stored.body, stored.source)


@router.delete("/channels/{name}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a channel no rule uses", responses=_answers(404, 409))
def delete_channel(name: str, repository: Repository) -> Response:
    users = [r.id for r in repository.list_rules() if name in r.body.channels]
    if users:
        raise HTTPException(409, f"channel {name!r} is used by rules {users}")
    if not repository.delete_channel(name):
        raise HTTPException(404, f"no channel {name!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/channels/{name}/test", response_model=ChannelTestResult, responses=_answers(404),
             summary="Send a test notification to a channel now (one attempt) and report the outcome")
def test_channel(name: str, repository: Repository, settings: Settings) -> ChannelTestResult:
    stored = repository.get_channel(name)
    if stored is None and name != LOG_CHANNEL:
        raise HTTPException(404, f"no channel {name!r}")
    at_ms = now_ms()
    notification = Notification(
        kind="test", delivery_id=uuid.uuid4().hex, rule_id="", rule_name="channel test",
        description="a test notification from TraceHouse", severity="info", signal="test", op=">", threshold=0.0,
        rule_labels={}, target={}, series="", series_labels={}, value=None, active_since_ms=at_ms,
        fired_at_ms=at_ms, resolved_at_ms=0, at_ms=at_ms)
    notifier = Notifier(dataclasses.replace(settings, webhook_max_attempts=1, delivery_workers=1, rules_file=None))
    try:
        result = notifier.deliver(name, stored.body if stored else None, notification)
    finally:
        notifier.shutdown(timeout_s=0)
    repository.record_notifications([NotificationRow(
        at_ms=now_ms(), delivery_id=notification.delivery_id, rule_id="", rule_name="channel test", series="",
        kind="test", channel=name, ok=result.ok, attempts=result.attempts, status_code=result.status_code,
        error=result.error)])
    return ChannelTestResult(delivery_id=notification.delivery_id, ok=result.ok, attempts=result.attempts,
                             status_code=result.status_code, error=result.error)
