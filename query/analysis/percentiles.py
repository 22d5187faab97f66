"""Percentiles and log-spaced latency histograms.

The rollups keep durations in two forms: a DDSketch (ClickHouse `quantileDD` with relative
accuracy `SKETCH_RELATIVE_ACCURACY`, so every reported percentile is within 1% of a duration at
that rank) and a histogram whose bucket b covers [2^(b/BUCKETS_PER_OCTAVE), 2^((b+1)/BUCKETS_PER_OCTAVE)) ms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SKETCH_RELATIVE_ACCURACY = 0.01
BUCKETS_PER_OCTAVE = 4
MIN_DURATION_MS = 0.001  # durations below 1 µs share the lowest bucket


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of ascending values by linear interpolation between closest ranks,
    the same definition as numpy's default."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    position = q * (len(sorted_values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return float(sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * fraction)


def bucket_of(duration_ms: float) -> int:
    """The histogram bucket of a duration, as the rollup's SQL computes it."""
    return math.floor(math.log2(max(duration_ms, MIN_DURATION_MS)) * BUCKETS_PER_OCTAVE)


def bucket_bounds_ms(bucket: int) -> tuple[float, float]:
    return 2.0 ** (bucket / BUCKETS_PER_OCTAVE), 2.0 ** ((bucket + 1) / BUCKETS_PER_OCTAVE)


@dataclass(frozen=True)
class HistogramBucket:
    lower_ms: float
    upper_ms: float
    count: int


def histogram(bucket_counts: Mapping[int, int] | Iterable[tuple[int, int]]) -> list[HistogramBucket]:
    """Buckets from the lowest to the highest non-empty one, empty ones in between included, so a
    chart shows gaps; durations are log-spaced (4 buckets per doubling)."""
    counts: dict[int, int] = {}
    items = bucket_counts.items() if isinstance(bucket_counts, Mapping) else bucket_counts
    for bucket, count in items:
        counts[int(bucket)] = counts.get(int(bucket), 0) + int(count)
    counts = {b: c for b, c in counts.items() if c > 0}
    if not counts:
        return []
    out = []
    for bucket in range(min(counts), max(counts) + 1):
        lower, upper = bucket_bounds_ms(bucket)
        out.append(HistogramBucket(round(lower, 6), round(upper, 6), counts.get(bucket, 0)))
    return out


def quantile_from_histogram(buckets: Sequence[HistogramBucket], q: float) -> float:
    """The q-quantile estimated from a histogram (geometric interpolation inside a bucket)."""
    total = sum(b.count for b in buckets)
    if total == 0:
        raise ValueError("quantile of an empty histogram")
    rank = q * total
    seen = 0
    for bucket in buckets:
        if bucket.count and seen + bucket.count >= rank:
            fraction = (rank - seen) / bucket.count
            return bucket.lower_ms * (bucket.upper_ms / bucket.lower_ms) ** fraction
        seen += bucket.count
    return buckets[-1].upper_ms


def error_rate(errors: int, calls: int) -> float:
    return round(errors / calls, 6) if calls else 0.0


def ms(value: float | None, digits: int = 3) -> float | None:
    """A duration in ms rounded for JSON; None stays None, NaN becomes None."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return None
    return round(float(value), digits)
