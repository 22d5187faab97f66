"""Rules, channels, silences, state, history and delivery records in ClickHouse.

ClickHouse has no UPDATE in the transactional sense, so every change is a new row with a higher
`version`, and readers take the newest row per key (`ORDER BY version DESC LIMIT 1 BY key`), which
is right before and after ReplacingMergeTree merges the old rows away.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from pydantic import ValidationError

from tracehouse.query.alerts.models import ChannelBody, RuleBody
from tracehouse.query.alerts.state import SeriesState

RULES_TABLE = "tracehouse_alert_rules"
CHANNELS_TABLE = "tracehouse_alert_channels"
SILENCES_TABLE = "tracehouse_alert_silences"
STATE_TABLE = "tracehouse_alert_state"
HISTORY_TABLE = "tracehouse_alert_history"
NOTIFICATIONS_TABLE = "tracehouse_alert_notifications"

LIST_RULES_SQL = """
SELECT id, body, source, toUnixTimestamp64Milli(updated_at) AS updated_ms
FROM (SELECT * FROM tracehouse_alert_rules ORDER BY version DESC LIMIT 1 BY id)
WHERE deleted = 0 AND ({id:String} = '' OR id = {id:String})
ORDER BY id
"""

LIST_CHANNELS_SQL = """
SELECT name, body, source
FROM (SELECT * FROM tracehouse_alert_channels ORDER BY version DESC LIMIT 1 BY name)
WHERE deleted = 0 AND ({name:String} = '' OR name = {name:String})
ORDER BY name
"""

LIST_SILENCES_SQL = """
SELECT rule_id, toUnixTimestamp64Milli(until) AS until_ms, comment
FROM (SELECT * FROM tracehouse_alert_silences ORDER BY version DESC LIMIT 1 BY rule_id)
WHERE toUnixTimestamp64Milli(until) > {now_ms:Int64}
ORDER BY rule_id
"""

LIST_STATE_SQL = """
SELECT rule_id, series, labels, state, value, active_since_ms, fired_at_ms, resolved_at_ms,
       last_notified_ms, evaluated_at_ms, version
FROM (SELECT * FROM tracehouse_alert_state ORDER BY version DESC LIMIT 1 BY rule_id, series)
WHERE ({rule_id:String} = '' OR rule_id = {rule_id:String})
ORDER BY rule_id, series
"""

LIST_HISTORY_SQL = """
SELECT toUnixTimestamp64Milli(at) AS at_ms, rule_id, rule_name, series, labels, from_state, to_state,
       value, threshold, severity, silenced
FROM tracehouse_alert_history
WHERE ({rule_id:String} = '' OR rule_id = {rule_id:String})
  AND at >= fromUnixTimestamp64Milli({start_ms:Int64}) AND at < fromUnixTimestamp64Milli({end_ms:Int64})
ORDER BY at DESC, series
LIMIT {limit:UInt32}
"""

LIST_NOTIFICATIONS_SQL = """
SELECT toUnixTimestamp64Milli(at) AS at_ms, delivery_id, rule_id, rule_name, series, kind, channel, ok,
       attempts, status_code, error
FROM tracehouse_alert_notifications
WHERE ({rule_id:String} = '' OR rule_id = {rule_id:String})
  AND at >= fromUnixTimestamp64Milli({start_ms:Int64}) AND at < fromUnixTimestamp64Milli({end_ms:Int64})
ORDER BY at DESC
LIMIT {limit:UInt32}
"""

# The next version of a key must beat the stored one even when this replica's clock is behind the
# clock of the replica that wrote it.
MAX_VERSION_SQL = {
    RULES_TABLE: "SELECT max(version) FROM tracehouse_alert_rules WHERE id = {key:String}",
    CHANNELS_TABLE: "SELECT max(version) FROM tracehouse_alert_channels WHERE name = {key:String}",
    SILENCES_TABLE: "SELECT max(version) FROM tracehouse_alert_silences WHERE rule_id = {key:String}",
}

_RULE_COLUMNS = ["id", "name", "body", "source", "deleted", "version", "updated_at"]
_CHANNEL_COLUMNS = ["name", "body", "source", "deleted", "version", "updated_at"]
_SILENCE_COLUMNS = ["rule_id", "until", "comment", "version", "created_at"]
_STATE_COLUMNS = ["rule_id", "series", "labels", "state", "value", "active_since_ms", "fired_at_ms",
                  "resolved_at_ms", "last_notified_ms", "evaluated_at_ms", "version"]
_HISTORY_COLUMNS = ["at", "rule_id", "rule_name", "series", "labels", "from_state", "to_state", "value",
                    "threshold", "severity", "silenced", "replica"]
_NOTIFICATION_COLUMNS = ["at", "delivery_id", "rule_id", "rule_name", "series", "kind", "channel", "ok",
                         "attempts", "status_code", "error"]

# On a cluster the alert tables are Distributed: insert synchronously, so that the next read (of
# this or another replica) sees the row. A single node ignores the setting.
SYNC_INSERT = {"insert_distributed_sync": 1}

_version_lock = threading.Lock()
_last_version = 0


def next_version() -> int:
    """Nanoseconds since the epoch, strictly increasing within this process."""
    global _last_version
    with _version_lock:
        _last_version = max(time.time_ns(), _last_version + 1)
        return _last_version


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def from_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000.0, tz=UTC)


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class StoredRule:
    id: str
    body: RuleBody
    source: str
    updated_ms: int


@dataclass(frozen=True)
class StoredChannel:
    name: str
    body: ChannelBody
    source: str


@dataclass(frozen=True)
class Silence:
    rule_id: str
    until_ms: int
    comment: str


@dataclass(frozen=True)
class HistoryRow:
    at_ms: int
    rule_id: str
    rule_name: str
    series: str
    labels: dict[str, str]
    from_state: str
    to_state: str
    value: float | None
    threshold: float
    severity: str
    silenced: bool
    replica: str = ""


@dataclass(frozen=True)
class NotificationRow:
    at_ms: int
    delivery_id: str
    rule_id: str
    rule_name: str
    series: str
    kind: str
    channel: str
    ok: bool
    attempts: int
    status_code: int
    error: str


class AlertRepository:
    """Reads and writes the alert tables through one client (not shared between threads)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._state_versions: dict[tuple[str, str], int] = {}

    def _version_after(self, table: str, key: str) -> int:
        rows = self.client.query(MAX_VERSION_SQL[table], parameters={"key": key}).result_rows
        stored = int(rows[0][0] or 0) if rows else 0
        return max(next_version(), stored + 1)

    def _rows(self, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        result = self.client.query(sql, parameters=parameters)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    # -- rules -----------------------------------------------------------------------------
    def list_rules(self, rule_id: str = "") -> list[StoredRule]:
        rules = []
        for row in self._rows(LIST_RULES_SQL, {"id": rule_id}):
            try:
                body = RuleBody.model_validate_json(row["body"])
            except ValidationError:
                continue  # written by an incompatible version; skipped rather than breaking the list
            rules.append(StoredRule(row["id"], body, row["source"], int(row["updated_ms"])))
        return rules

    def get_rule(self, rule_id: str) -> StoredRule | None:
        found = self.list_rules(rule_id)
        return found[0] if found else None

    def put_rule(self, rule_id: str, body: RuleBody, source: str = "api") -> StoredRule:
        now = now_ms()
        self.client.insert(RULES_TABLE, [[rule_id, body.name, body.model_dump_json(), source, 0,
                                          self._version_after(RULES_TABLE, rule_id),
                                          from_ms(now)]],
                           column_names=_RULE_COLUMNS, settings=SYNC_INSERT)
        return StoredRule(rule_id, body, source, now)

    def delete_rule(self, rule_id: str) -> bool:
        existing = self.get_rule(rule_id)
        if existing is None:
            return False
        self.client.insert(RULES_TABLE, [[rule_id, existing.body.name, existing.body.model_dump_json(),
                                          existing.source, 1, self._version_after(RULES_TABLE, rule_id),
                                          from_ms(now_ms())]],
                           column_names=_RULE_COLUMNS, settings=SYNC_INSERT)
        return True

    # -- channels --------------------------------------------------------------------------
    def list_channels(self, name: str = "") -> list[StoredChannel]:
        channels = []
        for row in self._rows(LIST_CHANNELS_SQL, {"name": name}):
            try:
                body = ChannelBody.model_validate_json(row["body"])
            except ValidationError:
                continue
            channels.append(StoredChannel(row["name"], body, row["source"]))
        return channels

    def get_channel(self, name: str) -> StoredChannel | None:
        found = self.list_channels(name)
        return found[0] if found else None

    def put_channel(self, name: str, body: ChannelBody, source: str = "api") -> StoredChannel:
        self.client.insert(CHANNELS_TABLE, [[name, body.model_dump_json(), source, 0,
                                             self._version_after(CHANNELS_TABLE, name),
                                             from_ms(now_ms())]],
                           column_names=_CHANNEL_COLUMNS, settings=SYNC_INSERT)
        return StoredChannel(name, body, source)

    def delete_channel(self, name: str) -> bool:
        existing = self.get_channel(name)
        if existing is None:
            return False
        self.client.insert(CHANNELS_TABLE, [[name, existing.body.model_dump_json(), existing.source, 1,
                                             self._version_after(CHANNELS_TABLE, name), from_ms(now_ms())]],
                           column_names=_CHANNEL_COLUMNS, settings=SYNC_INSERT)
        return True

    # -- silences --------------------------------------------------------------------------
    def active_silences(self, at_ms: int | None = None) -> dict[str, Silence]:
        rows = self._rows(LIST_SILENCES_SQL, {"now_ms": now_ms() if at_ms is None else at_ms})
        return {r["rule_id"]: Silence(r["rule_id"], int(r["until_ms"]), r["comment"]) for r in rows}

    def set_silence(self, rule_id: str, until_ms: int, comment: str = "") -> Silence:
        self.client.insert(SILENCES_TABLE, [[rule_id, from_ms(until_ms), comment,
                                             self._version_after(SILENCES_TABLE, rule_id),
                                             from_ms(now_ms())]],
                           column_names=_SILENCE_COLUMNS, settings=SYNC_INSERT)
        return Silence(rule_id, until_ms, comment)

    def clear_silence(self, rule_id: str) -> None:
        self.set_silence(rule_id, 0, "")

    # -- state -----------------------------------------------------------------------------
    def load_states(self, rule_id: str = "") -> dict[tuple[str, str], SeriesState]:
        states = {}
        for row in self._rows(LIST_STATE_SQL, {"rule_id": rule_id}):
            value = row["value"]
            state = SeriesState(
                rule_id=row["rule_id"], series=row["series"], labels=dict(row["labels"]), state=row["state"],
                value=None if value is None else float(value),
                active_since_ms=int(row["active_since_ms"]), fired_at_ms=int(row["fired_at_ms"]),
                resolved_at_ms=int(row["resolved_at_ms"]), last_notified_ms=int(row["last_notified_ms"]),
                evaluated_at_ms=int(row["evaluated_at_ms"]))
            states[(state.rule_id, state.series)] = state
            self._state_versions[(state.rule_id, state.series)] = int(row["version"])
        return states

    def save_states(self, states: list[SeriesState]) -> None:
        if not states:
            return
        rows = [[s.rule_id, s.series, s.labels, s.state, s.value, s.active_since_ms, s.fired_at_ms,
                 s.resolved_at_ms, s.last_notified_ms, s.evaluated_at_ms,
                 max(next_version(), self._state_versions.get((s.rule_id, s.series), 0) + 1)] for s in states]
        self.client.insert(STATE_TABLE, rows, column_names=_STATE_COLUMNS, settings=SYNC_INSERT)

    # -- history and deliveries ------------------------------------------------------------
    def append_history(self, entries: list[HistoryRow]) -> None:
        if not entries:
            return
        rows = [[from_ms(e.at_ms), e.rule_id, e.rule_name, e.series, e.labels, e.from_state, e.to_state, e.value,
                 e.threshold, e.severity, int(e.silenced), e.replica] for e in entries]
        self.client.insert(HISTORY_TABLE, rows, column_names=_HISTORY_COLUMNS, settings=SYNC_INSERT)

    def history(self, *, rule_id: str = "", start_ms: int = 0, end_ms: int | None = None,
                limit: int = 100) -> list[HistoryRow]:
        rows = self._rows(LIST_HISTORY_SQL, {"rule_id": rule_id, "start_ms": start_ms,
                                             "end_ms": end_ms if end_ms is not None else now_ms() + 60_000,
                                             "limit": limit})
        return [HistoryRow(int(r["at_ms"]), r["rule_id"], r["rule_name"], r["series"], dict(r["labels"]),
                           r["from_state"], r["to_state"], None if r["value"] is None else float(r["value"]),
                           float(r["threshold"]), r["severity"], bool(r["silenced"])) for r in rows]

    def record_notifications(self, records: list[NotificationRow]) -> None:
        if not records:
            return
        rows = [[from_ms(r.at_ms), r.delivery_id, r.rule_id, r.rule_name, r.series, r.kind, r.channel, int(r.ok),
                 r.attempts, r.status_code, r.error[:2000]] for r in records]
        self.client.insert(NOTIFICATIONS_TABLE, rows, column_names=_NOTIFICATION_COLUMNS, settings=SYNC_INSERT)

    def notifications(self, *, rule_id: str = "", start_ms: int = 0, end_ms: int | None = None,
                      limit: int = 100) -> list[NotificationRow]:
        rows = self._rows(LIST_NOTIFICATIONS_SQL, {"rule_id": rule_id, "start_ms": start_ms,
                                                   "end_ms": end_ms if end_ms is not None else now_ms() + 60_000,
                                                   "limit": limit})
        return [NotificationRow(int(r["at_ms"]), r["delivery_id"], r["rule_id"], r["rule_name"], r["series"],
                                r["kind"], r["channel"], bool(r["ok"]), int(r["attempts"]), int(r["status_code"]),
                                r["error"]) for r in rows]

