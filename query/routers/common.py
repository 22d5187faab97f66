"""Small helpers the routers share."""

from __future__ import annotations

from datetime import UTC, datetime

from tracehouse.query.timerange import TimeWindow


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rfc3339_ns(value_ns: int) -> str:
    seconds, nanos = divmod(int(value_ns), 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def window_fields(window: TimeWindow) -> dict[str, str]:
    return {"start": rfc3339(window.start), "end": rfc3339(window.end)}
