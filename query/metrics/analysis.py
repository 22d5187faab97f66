"""Pure functions over metric points: step alignment, aggregation, counter rates across resets,
correlation and ranking, matching a service's dependencies to middleware instances, host figures.

No database here; the readers hand over plain tuples and dicts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

AGGREGATIONS = ("avg", "max", "min", "sum", "rate", "p99")

# AggregationTemporality in the exporter's otel_metrics_sum table (the OTLP enum).
TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2


@dataclass(frozen=True)
class Point:
    """One stored data point: time (Unix seconds), value, and the series' start time (Unix
    seconds, 0 when unknown), which changes when the reporting process restarts."""

    t_s: float
    value: float
    start_s: float = 0.0


def step_starts(start_s: float, end_s: float, step_s: float) -> list[float]:
    """The aligned step starts covering [start_s, end_s): multiples of step_s since the epoch."""
    first = math.floor(start_s / step_s) * step_s
    out = []
    t = first
    while t < end_s:
        out.append(t)
        t += step_s
    return out


def step_of(t_s: float, step_s: float) -> float:
    return math.floor(t_s / step_s) * step_s


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default 'linear' method)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantile of no values")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def aggregate(values: Sequence[float], agg: str) -> float:
    if agg == "avg":
        return sum(values) / len(values)
    if agg == "max":
        return max(values)
    if agg == "min":
        return min(values)
    if agg == "sum":
        return sum(values)
    if agg == "p99":
        return quantile(values, 0.99)
    raise ValueError(f"unknown aggregation {agg!r}")


def aggregate_per_step(points: Iterable[Point], step_s: float, agg: str) -> dict[float, float]:
    """Every point falls in the step that contains its time; each step's values are aggregated."""
    buckets: dict[float, list[float]] = defaultdict(list)
    for point in points:
        if math.isfinite(point.value):
            buckets[step_of(point.t_s, step_s)].append(point.value)
    return {step: aggregate(values, agg) for step, values in buckets.items()}


@dataclass(frozen=True)
class Increase:
    """How much a counter grew up to `t_s`, over the `elapsed_s` since the point before."""

    t_s: float
    value: float
    elapsed_s: float


def counter_increases(points: Sequence[Point], *, temporality: int = TEMPORALITY_CUMULATIVE) -> list[Increase]:
    """The increase each point adds over the one before it, for a monotonic counter.

    Cumulative points: the difference to the previous point; when the value went down, the
    counter was reset (the process or the server restarted), so the whole new value is the
    increase since the reset (as Prometheus' `rate()` treats resets). A new start time alone is
    not taken as a reset: a scraper that restarts gets a new start time while the server's
    counter it reports carries on, and counting all of it again would show a false spike.
    The first point has no predecessor and adds nothing (readers fetch one step more than they
    answer for, so that the first step has one). Delta points already are increases; their
    elapsed time is the time since their start time (0 when unknown).
    """
    ordered = sorted((p for p in points if math.isfinite(p.value)), key=lambda p: p.t_s)
    if temporality == TEMPORALITY_DELTA:
        return [Increase(p.t_s, max(p.value, 0.0), max(p.t_s - p.start_s, 0.0) if p.start_s else 0.0)
                for p in ordered]
    out: list[Increase] = []
    for previous, point in zip(ordered, ordered[1:], strict=False):
        increase = point.value if point.value < previous.value else point.value - previous.value
        out.append(Increase(point.t_s, increase, point.t_s - previous.t_s))
    return out


def rate_per_step(points: Sequence[Point], step_s: float, *,
                  temporality: int = TEMPORALITY_CUMULATIVE) -> dict[float, float]:
    """Per-second rate of a monotonic counter in each step: the increases whose later point falls
    in the step, divided by the time they cover (so a step that holds the first points of a
    series, or a scrape interval longer than the step, still gives the true rate). Delta points
    without a known start time are divided by the step length."""
    totals: dict[float, float] = defaultdict(float)
    covered: dict[float, float] = defaultdict(float)
    for increase in counter_increases(points, temporality=temporality):
        step = step_of(increase.t_s, step_s)
        totals[step] += increase.value
        covered[step] += increase.elapsed_s if increase.elapsed_s > 0 else step_s
    return {step: total / covered[step] for step, total in totals.items() if covered[step] > 0}


def combine(per_series: Sequence[Mapping[float, float]], how: str) -> dict[float, float]:
    """Steps of several series of one group combined: `sum` (rates, sums) or an aggregation."""
    buckets: dict[float, list[float]] = defaultdict(list)
    for series in per_series:
        for step, value in series.items():
            buckets[step].append(value)
    return {step: aggregate(values, how) for step, values in buckets.items()}


def align(series: Mapping[float, float], steps: Sequence[float]) -> list[float | None]:
    return [series.get(step) for step in steps]


# --------------------------------------------------------------------------------------------
# Correlation
# --------------------------------------------------------------------------------------------

def _pairs(x: Sequence[float | None], y: Sequence[float | None]) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for a, b in zip(x, y, strict=False):
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            xs.append(float(a))
            ys.append(float(b))
    return xs, ys


def pearson(x: Sequence[float | None], y: Sequence[float | None], *, min_pairs: int = 3) -> float | None:
    """Pearson's r over the steps where both have a value; None with too few steps or no variance."""
    xs, ys = _pairs(x, y)
    n = len(xs)
    if n < min_pairs:
        return None
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    dx = [a - mean_x for a in xs]
    dy = [b - mean_y for b in ys]
    sxx = sum(a * a for a in dx)
    syy = sum(b * b for b in dy)
    # Relative tolerance: a series that only wobbles in its last bits has no variance.
    if sxx <= 1e-12 * max(1.0, mean_x * mean_x) * n or syy <= 1e-12 * max(1.0, mean_y * mean_y) * n:
        return None
    r = sum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        average = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = average
        i = j + 1
    return out


def spearman(x: Sequence[float | None], y: Sequence[float | None], *, min_pairs: int = 3) -> float | None:
    """Spearman's rho: Pearson's r of the ranks, over the steps where both have a value."""
    xs, ys = _pairs(x, y)
    if len(xs) < min_pairs:
        return None
    return pearson(ranks(xs), ranks(ys), min_pairs=min_pairs)


@dataclass
class Candidate:
    key: str
    values: list[float | None]
    spearman: float | None = None
    pearson: float | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """How strongly the series moves with the target, either way: the larger of |Spearman| and
        |Pearson| (0 when neither can be told). Spearman catches monotonic but non-linear relations
        and shrugs off outliers; Pearson catches a regime change (a burn that lifts both for a
        while), where the noise inside each regime scrambles the ranks."""
        return max(abs(self.spearman or 0.0), abs(self.pearson or 0.0))


def rank_by_correlation(target: Sequence[float | None], candidates: Iterable[Candidate],
                        *, min_pairs: int = 3) -> list[Candidate]:
    """The candidates scored against `target` (see `Candidate.score`) and ordered strongest first;
    series that cannot be scored come last in their given order."""
    scored = []
    for candidate in candidates:
        candidate.spearman = spearman(target, candidate.values, min_pairs=min_pairs)
        candidate.pearson = pearson(target, candidate.values, min_pairs=min_pairs)
        scored.append(candidate)
    return sorted(scored, key=lambda c: -c.score)


# --------------------------------------------------------------------------------------------
# Dependencies to middleware instances
# --------------------------------------------------------------------------------------------

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost", "[::1]"}
_SYSTEM_ALIASES = {"mariadb": "mysql", "postgres": "postgresql", "pg": "postgresql"}
DEFAULT_PORTS = {"redis": 6379, "mysql": 3306, "postgresql": 5432, "rabbitmq": 5672}


def normal_host(address: str) -> str:
    text = address.strip().lower().rstrip(".")
    if text in _LOOPBACK or text.startswith("127."):
        return "loopback"
    return text


def normal_system(system: str) -> str:
    text = system.strip().lower()
    return _SYSTEM_ALIASES.get(text, text)


@dataclass(frozen=True)
class Dependency:
    """What a service's CLIENT/PRODUCER spans say about a database or broker it calls."""

    system: str  # db.system or messaging.system
    address: str = ""
    port: int | None = None
    peer_service: str = ""
    db_name: str = ""
    calls: int = 0
    node: str = ""  # the dependency graph's node id


@dataclass(frozen=True)
class MiddlewareInstance:
    """A middleware instance as its metrics' resource names it."""

    service_name: str
    system: str  # db.system / messaging.system of its clients, or the receiver's system
    address: str
    port: int | None
    aliases: tuple[str, ...] = ()  # the addresses its configured host resolved to


def matches(dependency: Dependency, instance: MiddlewareInstance) -> bool:
    """A dependency is this instance when the spans name it as peer.service, or name the same
    system at the same address (or one its host name resolved to) and port (loopback spellings
    are one; a missing port is the system's default)."""
    if dependency.peer_service and dependency.peer_service == instance.service_name:
        return True
    if normal_system(dependency.system) != normal_system(instance.system):
        return False
    if not dependency.address:
        return False
    if normal_host(dependency.address) not in {normal_host(a) for a in (instance.address, *instance.aliases)}:
        return False
    default = DEFAULT_PORTS.get(normal_system(dependency.system))
    dependency_port = dependency.port if dependency.port is not None else default
    instance_port = instance.port if instance.port is not None else default
    return dependency_port == instance_port


# Point attributes that name a database (Redis' numbered `db` is left alone: spans rarely name it).
DATABASE_ATTRIBUTES = ("postgresql.database.name", "db.name")


def relevant_middleware_series(metric: str, labels: Mapping[str, str], values: Sequence[float | None],
                               databases: Iterable[str]) -> bool:
    """Whether a middleware series belongs next to a service: not `up` while it stayed up, and
    for per-database series only the databases the service's spans name (when they name any)."""
    if metric == "up":
        return any(v is not None and v < 1 for v in values)
    wanted = {d for d in databases if d}
    if not wanted:
        return True
    for key in DATABASE_ATTRIBUTES:
        if key in labels:
            return labels[key] in wanted
    return True


def match_dependencies(dependencies: Iterable[Dependency],
                       instances: Iterable[MiddlewareInstance]) -> list[tuple[Dependency, MiddlewareInstance | None]]:
    pool = list(instances)
    out: list[tuple[Dependency, MiddlewareInstance | None]] = []
    for dependency in dependencies:
        found = next((instance for instance in pool if matches(dependency, instance)), None)
        out.append((dependency, found))
    return out


# --------------------------------------------------------------------------------------------
# Host figures
# --------------------------------------------------------------------------------------------

def cpu_busy(mode_shares: Mapping[str, float]) -> float | None:
    """Busy share of the CPU from `system.cpu.utilization` by `cpu.mode` (0..1): everything but
    idle and iowait, as psutil counts busy time. Percent values (over 1) are scaled down."""
    if not mode_shares:
        return None
    scale = 100.0 if sum(mode_shares.values()) > 1.5 else 1.0
    if "idle" in mode_shares:
        waiting = mode_shares.get("idle", 0.0) + mode_shares.get("iowait", 0.0) + mode_shares.get("wait", 0.0)
        return min(1.0, max(0.0, 1.0 - waiting / scale))
    if len(mode_shares) == 1:  # a total without modes
        return min(1.0, max(0.0, next(iter(mode_shares.values())) / scale))
    busy = sum(v for k, v in mode_shares.items() if k not in ("idle", "iowait", "wait"))
    return min(1.0, max(0.0, busy / scale))


def latest_rate(points: Sequence[Point]) -> float | None:
    """Per-second rate of a cumulative counter between its last two points (a reset counts the new
    value as the increase); None with fewer than two points."""
    ordered = sorted((p for p in points if math.isfinite(p.value)), key=lambda p: p.t_s)
    if len(ordered) < 2:
        return None
    previous, last = ordered[-2], ordered[-1]
    elapsed_s = last.t_s - previous.t_s
    if elapsed_s <= 0:
        return None
    increases = counter_increases([previous, last])
    return increases[0].value / elapsed_s if increases else None


# --------------------------------------------------------------------------------------------
# Histograms
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistogramPoint:
    """One explicit-bucket histogram data point: `counts` has one more entry than `bounds`
    (the last bucket is everything above the last bound)."""

    t_s: float
    count: float
    total: float  # the sum of the observations
    counts: tuple[float, ...]
    bounds: tuple[float, ...]


@dataclass
class HistogramDelta:
    t_s: float
    elapsed_s: float
    count: float
    total: float
    counts: list[float]
    bounds: tuple[float, ...]


def histogram_deltas(points: Sequence[HistogramPoint], *,
                     temporality: int = TEMPORALITY_CUMULATIVE) -> list[HistogramDelta]:
    """What each point adds over the one before it (cumulative), or the points themselves (delta).
    A falling count, or changed bucket bounds, starts again from the new point, as for counters."""
    ordered = sorted(points, key=lambda p: p.t_s)
    if temporality == TEMPORALITY_DELTA:
        return [HistogramDelta(p.t_s, 0.0, p.count, p.total, list(p.counts), p.bounds) for p in ordered]
    out = []
    for previous, point in zip(ordered, ordered[1:], strict=False):
        if point.count < previous.count or point.bounds != previous.bounds or len(point.counts) != len(previous.counts):
            delta = HistogramDelta(point.t_s, point.t_s - previous.t_s, point.count, point.total,
                                   list(point.counts), point.bounds)
        else:
            delta = HistogramDelta(point.t_s, point.t_s - previous.t_s, point.count - previous.count,
                                   point.total - previous.total,
                                   [max(0.0, a - b) for a, b in zip(point.counts, previous.counts, strict=True)],
                                   point.bounds)
        out.append(delta)
    return out


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The q-quantile of bucketed observations, interpolating linearly inside the bucket (as
    Prometheus' histogram_quantile does); observations above the last bound count as the last
    bound. None when there are no observations."""
    total = sum(counts)
    if total <= 0 or not counts:
        return None
    rank = q * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            if index >= len(bounds):  # the overflow bucket: no upper bound to interpolate to
                return float(bounds[-1]) if bounds else None
            upper = float(bounds[index])
            lower = float(bounds[index - 1]) if index > 0 else min(0.0, upper)
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(bounds[-1]) if bounds else None


def histogram_per_step(series: Sequence[Sequence[HistogramPoint]], step_s: float, agg: str, *,
                       temporalities: Sequence[int] | None = None) -> dict[float, float]:
    """Several histogram series of one group, per step: `p99` (and `p50`, `p95`) from the merged
    buckets, `avg` = sum / count, `sum` of the observations, `rate` = observations per second."""
    merged: dict[float, HistogramDelta] = {}
    covered: dict[float, float] = defaultdict(float)
    for index, points in enumerate(series):
        temporality = temporalities[index] if temporalities else TEMPORALITY_CUMULATIVE
        for delta in histogram_deltas(points, temporality=temporality):
            step = step_of(delta.t_s, step_s)
            covered[step] += delta.elapsed_s if delta.elapsed_s > 0 else step_s
            found = merged.get(step)
            if found is None:
                merged[step] = HistogramDelta(step, 0.0, delta.count, delta.total, list(delta.counts), delta.bounds)
            elif found.bounds == delta.bounds and len(found.counts) == len(delta.counts):
                found.count += delta.count
                found.total += delta.total
                found.counts = [a + b for a, b in zip(found.counts, delta.counts, strict=True)]
            # buckets with other bounds cannot be merged bucket by bucket: left out of the step
    out: dict[float, float] = {}
    quantiles = {"p99": 0.99, "p95": 0.95, "p50": 0.5}
    for step, delta in merged.items():
        value: float | None
        if agg in quantiles:
            value = bucket_quantile(quantiles[agg], delta.bounds, delta.counts)
        elif agg == "avg":
            value = delta.total / delta.count if delta.count > 0 else None
        elif agg == "sum":
            value = delta.total
        elif agg == "rate":
            value = delta.count / covered[step] if covered[step] > 0 else None
        else:
            raise ValueError(f"aggregation {agg!r} does not apply to histograms")
        if value is not None:
            out[step] = value
    return out
