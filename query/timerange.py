"""Request time windows: `start` and `end` as RFC 3339 or Unix milliseconds, default the last hour."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DIGITS = re.compile(r"^-?\d+(\.\d+)?$")
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2262, 1, 1, tzinfo=UTC)  # DateTime64(9) ends in 2262


class BadParameter(ValueError):
    """A request parameter that cannot be used; answered with 400 naming `parameter`."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def parse_time(parameter: str, raw: str) -> datetime:
    """RFC 3339 (a timezone-less value is UTC) or Unix milliseconds, as an aware UTC datetime."""
    text = raw.strip()
    try:
        if _DIGITS.match(text):
            value = datetime.fromtimestamp(float(text) / 1000.0, tz=UTC)
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise BadParameter(parameter, f"{raw!r} is neither RFC 3339 nor Unix milliseconds") from None
    if not MIN_TIME <= value < MAX_TIME:
        raise BadParameter(parameter, f"{raw!r} is outside 1970..2262")
    return value


@dataclass(frozen=True)
class TimeWindow:
    start: datetime
    end: datetime

    @property
    def start_ns(self) -> int:
        return to_ns(self.start)

    @property
    def end_ns(self) -> int:
        return to_ns(self.end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def start_minute(self) -> datetime:
        return self.start.replace(second=0, microsecond=0)


def to_ns(value: datetime) -> int:
    delta = value - MIN_TIME
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(value_ns: int) -> datetime:
    return MIN_TIME + timedelta(microseconds=value_ns // 1_000)


def window(start: str | None, end: str | None, *, default_s: int, now: datetime | None = None) -> TimeWindow:
    """The window a request asks for; `end` defaults to now and `start` to `default_s` before `end`."""
    end_at = parse_time("end", end) if end else (now or datetime.now(tz=UTC))
    start_at = parse_time("start", start) if start else end_at - timedelta(seconds=default_s)
    if start_at >= end_at:
        raise BadParameter("start", "must be before end")
    return TimeWindow(start_at, end_at)
