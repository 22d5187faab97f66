"""Reading API JSON into plain values: lists of rows, numbers, times; and formatting them for people.

The API documents field names (issue: query service); these helpers accept the documented names
first and a few obvious spellings after, so a page shows what it can instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

_LIST_KEYS = ("items", "rows", "data", "results")


def rows(data: Any, *keys: str) -> list[dict[str, Any]]:
    """The list of objects in an API answer: the answer itself, or the first of `keys` it has."""
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if isinstance(data, Mapping):
        for key in (*keys, *_LIST_KEYS):
            value = data.get(key)
            if isinstance(value, list):
                return [r for r in value if isinstance(r, dict)]
    return []


def first(row: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if key in row and row[key] is not None:
            return row[key]
    return default


def num(row: Mapping[str, Any], *keys: str, default: float | None = None) -> float | None:
    """The first of `keys` that holds a finite number (numbers may arrive as strings)."""
    for key in keys:
        value = row.get(key)
        if value is None or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            return number
    return default


def text(row: Mapping[str, Any], *keys: str, default: str = "") -> str:
    value = first(row, *keys)
    return default if value is None else str(value)


def str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and v != ""]
    return [str(value)]


def to_datetime(value: Any) -> datetime | None:
    """RFC 3339 text, or a Unix time in s / ms / µs / ns (guessed from its size)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = float(value)
        magnitude = abs(number)
        if magnitude >= 1e17:
            seconds = number / 1e9
        elif magnitude >= 1e14:
            seconds = number / 1e6
        elif magnitude >= 1e11:
            seconds = number / 1e3
        else:
            seconds = number
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        candidate = value.strip()
        if candidate.endswith("Z"):
            candidate = candidate[:-1] + "+00:00"
        # Python before 3.11 rejects nanosecond fractions; trim to microseconds.
        if "." in candidate:
            head, _, tail = candidate.partition(".")
            digits = ""
            rest = tail
            while rest and rest[0].isdigit():
                digits, rest = digits + rest[0], rest[1:]
            candidate = f"{head}.{digits[:6]}{rest}" if digits else head + rest
        try:
            parsed = datetime.fromisoformat(candidate.replace(" ", "T", 1))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def to_ns(value: Any) -> int | None:
    """A moment as Unix nanoseconds (integers are taken as ns when big enough)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1e17:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) >= 18:
        return int(value)
    moment = to_datetime(value)
    if moment is None:
        return None
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 60_000:
        return f"{value / 60_000:.1f} min"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value * 1000:.0f} µs"


def fmt_pct(rate: float | None) -> str:
    """A 0..1 rate as a percentage."""
    if rate is None:
        return "–"
    percent = rate * 100
    if percent == 0:
        return "0%"
    if percent < 0.1:
        return "<0.1%"
    return f"{percent:.1f}%"


def fmt_count(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.1f}k"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.1f}"


def fmt_time(value: Any) -> str:
    moment = to_datetime(value)
    return "–" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def error_rate(row: Mapping[str, Any]) -> float | None:
    """`error_rate` (0..1), or errors / calls."""
    rate = num(row, "error_rate")
    if rate is not None:
        return rate / 100 if rate > 1 else rate
    errors = num(row, "errors", "error_count")
    calls = num(row, "calls", "count", "span_count")
    if errors is None or not calls:
        return None
    return errors / calls


def fmt_bytes(value: float | None, suffix: str = "") -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}{suffix}" if unit == "B" else f"{size:.1f} {unit}{suffix}"
        size /= 1024
    return f"{size:.1f} TiB{suffix}"


def fmt_num(value: Any) -> str:
    """A number without a needless `.0`; anything else as text."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(value)
    return str(int(number)) if number == int(number) and abs(number) < 1e15 else f"{number:.6g}"


def latest_by_label(data: Any, label: str) -> dict[str, tuple[float, datetime]]:
    """From a metrics query answer (series of `labels`, `timestamps`, `values`): each `label` value's
    last non-null value and its time."""
    latest: dict[str, tuple[float, datetime]] = {}
    for series in rows(data, "series"):
        labels = series.get("labels") if isinstance(series.get("labels"), Mapping) else {}
        assert isinstance(labels, Mapping)
        key = str(labels.get(label, ""))
        times = series.get("timestamps") if isinstance(series.get("timestamps"), list) else []
        values = series.get("values") if isinstance(series.get("values"), list) else []
        assert isinstance(times, list) and isinstance(values, list)
        for raw_time, value in zip(times, values, strict=False):
            moment = to_datetime(raw_time)
            number = num({"v": value}, "v")
            if moment is None or number is None:
                continue
            if key not in latest or moment >= latest[key][1]:
                latest[key] = (number, moment)
    return latest
