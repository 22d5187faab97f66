"""The time range and auto-refresh shared by every page, read from and written back to the URL.

`?range=1h` means "the hour up to now" each time the page loads (the view a URL reproduces is
relative, as in Grafana); `?range=custom&start=...&end=...` is a fixed window. Bad input never
fails a page: it falls back to the default range and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

PRESETS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
}
PRESET_LABELS: dict[str, str] = {"15m": "15 min", "1h": "1 h", "6h": "6 h", "24h": "24 h", "custom": "custom"}
DEFAULT_RANGE = "1h"
REFRESH_CHOICES_S: tuple[int, ...] = (10, 30, 60, 300)
MAX_CUSTOM_SPAN = timedelta(days=31)


@dataclass(frozen=True)
class TimeRange:
    preset: str  # one of PRESETS or "custom"
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    refresh_s: int  # 0: auto-refresh off
    warning: str | None = None  # why the requested range was not used

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()

    def api_params(self) -> dict[str, str]:
        """`start` and `end` as the API takes them (Unix milliseconds)."""
        return {"start": str(self.start_ms), "end": str(self.end_ms)}

    def url_params(self) -> dict[str, str]:
        """The query parameters that reproduce this range in a page URL."""
        params = {"range": self.preset}
        if self.preset == "custom":
            params["start"] = format_input(self.start)
            params["end"] = format_input(self.end)
        if self.refresh_s:
            params["refresh"] = str(self.refresh_s)
        return params

    def describe(self) -> str:
        if self.preset == "custom":
            return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC"
        return f"last {PRESET_LABELS[self.preset]}"


def format_input(moment: datetime) -> str:
    """The value of an `<input type="datetime-local">` (UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_moment(text: str) -> datetime:
    """RFC 3339 / ISO 8601 (naive means UTC) or Unix milliseconds."""
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_time_range(range_name: str | None, start: str | None, end: str | None,
                     refresh: str | None, *, now: datetime) -> TimeRange:
    """The page's time range from its query parameters; never raises."""
    refresh_s = _parse_refresh(refresh)
    name = (range_name or "").strip() or DEFAULT_RANGE
    if name == "custom" or (not range_name and (start or end)):
        try:
            start_at = parse_moment(start or "")
            end_at = parse_moment(end) if end else now
        except ValueError:
            return _preset(DEFAULT_RANGE, now, refresh_s,
                           warning=f"Could not read the custom range start={start!r} end={end!r}; "
                                   "use YYYY-MM-DDTHH:MM (UTC). Showing the last hour.")
        if end_at <= start_at:
            return _preset(DEFAULT_RANGE, now, refresh_s,
                           warning="The custom range ends before it starts; showing the last hour.")
        if end_at - start_at > MAX_CUSTOM_SPAN:
            start_at = end_at - MAX_CUSTOM_SPAN
        return TimeRange("custom", start_at, end_at, refresh_s)
    if name not in PRESETS:
        return _preset(DEFAULT_RANGE, now, refresh_s,
                       warning=f"Unknown range {name!r}; choose one of {', '.join(PRESET_LABELS)}. "
                               "Showing the last hour.")
    return _preset(name, now, refresh_s)


def _preset(name: str, now: datetime, refresh_s: int, warning: str | None = None) -> TimeRange:
    end_at = now.astimezone(UTC)
    return TimeRange(name, end_at - PRESETS[name], end_at, refresh_s, warning)


def _parse_refresh(refresh: str | None) -> int:
    if not refresh:
        return 0
    try:
        seconds = int(refresh)
    except ValueError:
        return 0
    return seconds if seconds in REFRESH_CHOICES_S else (min(REFRESH_CHOICES_S, key=lambda c: abs(c - seconds))
                                                         if seconds > 0 else 0)


def page_url(path: str, time_range: TimeRange | None = None, **params: str | int | float | None) -> str:
    """A page URL keeping the time range; `None`/empty parameters are left out."""
    query: dict[str, str] = dict(time_range.url_params()) if time_range else {}
    for key, value in params.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    return path + ("?" + urlencode(query) if query else "")
