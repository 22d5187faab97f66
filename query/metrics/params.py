"""Request parameters of the metrics API: time window (RFC 3339 or Unix milliseconds, the same
convention as the rest of /api/v1), step (`30s`, `5m`, `1h` or plain seconds) and `attr` filters."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_STEPS = 11_000  # as Prometheus: more points than a chart can show is a mistake
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2262, 1, 1, tzinfo=UTC)
_NICE_STEPS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


class BadParameter(ValueError):
    """A request parameter that cannot be used; answered with 400."""


def parse_time(parameter: str, raw: str) -> datetime:
    text = raw.strip()
    try:
        if _NUMBER.match(text):
            value = datetime.fromtimestamp(float(text) / 1000.0, tz=UTC)
        else:
            value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise BadParameter(f"{parameter}: {raw!r} is neither RFC 3339 nor Unix milliseconds") from None
    if not _MIN_TIME <= value < _MAX_TIME:
        raise BadParameter(f"{parameter}: {raw!r} is outside 1970..2262")
    return value


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float

    @property
    def start_ns(self) -> int:
        return int(round(self.start_s * 1e9))

    @property
    def end_ns(self) -> int:
        return int(round(self.end_s * 1e9))

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def window(start: str | None, end: str | None, *, default_s: float, now: datetime | None = None) -> Window:
    end_at = parse_time("end", end) if end else (now or datetime.now(tz=UTC))
    start_at = parse_time("start", start) if start else end_at - timedelta(seconds=default_s)
    if start_at >= end_at:
        raise BadParameter("start: must be before end")
    return Window(start_at.timestamp(), end_at.timestamp())


def parse_step(raw: str | None, span_s: float, *, target_steps: int = 120) -> float:
    """The step in seconds: as given, or a round value giving about `target_steps` points."""
    if raw is None or raw.strip() in ("", "auto"):
        wanted = span_s / target_steps
        return float(next((s for s in _NICE_STEPS_S if s >= wanted), _NICE_STEPS_S[-1]))
    match = _DURATION.match(raw.strip())
    if not match:
        raise BadParameter(f"step: {raw!r} is not a duration such as 30s, 5m, 1h or a number of seconds")
    step_s = float(match.group(1)) * _UNIT_S[match.group(2)]
    if step_s < 1:
        raise BadParameter("step: must be at least 1s")
    if math.ceil(span_s / step_s) > MAX_STEPS:
        raise BadParameter(f"step: {raw} gives more than {MAX_STEPS} points over this range; use a larger step")
    return step_s


def parse_attrs(raw: list[str] | None) -> list[tuple[str, str]]:
    """`key:value` filters (the value may itself contain colons)."""
    out = []
    for item in raw or []:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise BadParameter(f"attr: {item!r} must be key:value")
        out.append((key.strip(), value))
    return out


def iso(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, tz=UTC).isoformat().replace("+00:00", "Z")
