"""Pure functions of the metrics API: steps, aggregation, counter rates across resets,
correlation, dependency matching, host CPU figures, and parameter parsing."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tracehouse.query.metrics import analysis
from tracehouse.query.metrics.analysis import Candidate, Dependency, MiddlewareInstance, Point
from tracehouse.query.metrics.params import BadParameter, parse_attrs, parse_step, parse_time, window


def cumulative(values: list[float], *, every_s: float = 10.0, t0: float = 1000.0, start_s: float = 1.0) -> list[Point]:
    return [Point(t0 + i * every_s, v, start_s) for i, v in enumerate(values)]


def test_counter_increases_count_a_reset_as_starting_from_zero() -> None:
    points = cumulative([100, 110, 120, 130, 5, 15, 25])
    increases = [p.value for p in analysis.counter_increases(points)]
    assert increases == [10, 10, 10, 5, 10, 10]


def test_a_restarted_scraper_is_not_a_reset() -> None:
    """The middleware agent restarts (new start time) while Redis' counter carries on: no spike."""
    points = [Point(1000, 5e9, 1.0), Point(1010, 5e9 + 10, 1.0), Point(1020, 5e9 + 20, 1015.0)]
    assert [p.value for p in analysis.counter_increases(points)] == [10, 10]


def test_delta_points_are_increases() -> None:
    points = [Point(1000, 3), Point(1010, 4), Point(1020, 0)]
    assert [p.value for p in analysis.counter_increases(points, temporality=analysis.TEMPORALITY_DELTA)] == [3, 4, 0]
    assert analysis.rate_per_step(points, 10.0, temporality=analysis.TEMPORALITY_DELTA) == {1000: 0.3, 1010: 0.4,
                                                                                            1020: 0.0}


def test_rate_per_step_across_a_reset() -> None:
    points = cumulative([100, 110, 120, 130, 5, 15, 25], t0=1000.0)
    rates = analysis.rate_per_step(points, 10.0)
    assert rates == {1010.0: 1.0, 1020.0: 1.0, 1030.0: 1.0, 1040.0: 0.5, 1050.0: 1.0, 1060.0: 1.0}
    # Increases land in the step of their later point and are divided by the time they cover:
    # 6/s throughout, although the first step holds only five of its six intervals.
    per_minute = analysis.rate_per_step(cumulative([0, 60, 120, 180, 240, 300, 360], t0=1200.0), 60.0)
    assert per_minute == {1200.0: 6.0, 1260.0: 6.0}
    # A scrape interval longer than the step: the rate still is the true one.
    assert analysis.rate_per_step(cumulative([0, 300, 600], every_s=30.0, t0=1200.0), 10.0) == {1230.0: 10.0,
                                                                                                 1260.0: 10.0}
    assert analysis.rate_per_step(cumulative([7]), 10.0) == {}


def test_unsorted_and_non_finite_points_are_handled() -> None:
    points = [Point(1020, 30), Point(1000, 10), Point(1010, float("nan")), Point(1030, 40)]
    assert [p.value for p in analysis.counter_increases(points)] == [20, 10]


def test_latest_rate() -> None:
    assert analysis.latest_rate(cumulative([0, 100, 300])) == 20.0
    assert analysis.latest_rate(cumulative([500, 40])) == 4.0  # reset: 40 since the restart
    assert analysis.latest_rate(cumulative([1])) is None


def test_aggregations_per_step() -> None:
    points = [Point(1000 + i, float(i)) for i in range(20)]  # steps of 10 s: 0..9 and 10..19
    assert analysis.aggregate_per_step(points, 10, "avg") == {1000: 4.5, 1010: 14.5}
    assert analysis.aggregate_per_step(points, 10, "max") == {1000: 9, 1010: 19}
    assert analysis.aggregate_per_step(points, 10, "min") == {1000: 0, 1010: 10}
    assert analysis.aggregate_per_step(points, 10, "sum") == {1000: 45, 1010: 145}
    values = [random.Random(3).random() for _ in range(200)]
    p99 = analysis.aggregate_per_step([Point(1000, v) for v in values], 60, "p99")[960]
    assert p99 == pytest.approx(float(np.quantile(values, 0.99)))


def test_step_starts_are_aligned_to_the_step() -> None:
    assert analysis.step_starts(1005, 1040, 10) == [1000, 1010, 1020, 1030]
    assert analysis.align({1000: 1.0, 1020: 3.0}, [1000, 1010, 1020]) == [1.0, None, 3.0]


def test_combine_sums_rates_of_several_series() -> None:
    assert analysis.combine([{0: 1.0, 10: 2.0}, {10: 3.0}], "sum") == {0: 1.0, 10: 5.0}
    assert analysis.combine([{0: 1.0}, {0: 3.0}], "avg") == {0: 2.0}


def test_pearson_and_spearman_agree_with_numpy() -> None:
    rng = random.Random(7)
    x = [rng.gauss(0, 1) for _ in range(50)]
    y = [a * 2 + rng.gauss(0, 0.5) for a in x]
    assert analysis.pearson(x, y) == pytest.approx(float(np.corrcoef(x, y)[0, 1]))
    rank_x = analysis.ranks(x)
    rank_y = analysis.ranks(y)
    assert analysis.spearman(x, y) == pytest.approx(float(np.corrcoef(rank_x, rank_y)[0, 1]))
    # monotonic but not linear: Spearman sees a perfect relation
    cubic = [a ** 3 for a in x]
    assert analysis.spearman(x, cubic) == pytest.approx(1.0)
    assert analysis.pearson(x, cubic) < 0.99


def test_ranks_share_ties() -> None:
    assert analysis.ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]


def test_correlation_skips_missing_steps_and_flat_series() -> None:
    x = [1.0, 2.0, None, 4.0, 5.0]
    y = [2.0, 4.0, 100.0, 8.0, None]
    assert analysis.pearson(x, y) == pytest.approx(1.0)
    assert analysis.pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) is None
    assert analysis.spearman([1.0, 2.0], [1.0, 2.0]) is None  # too few steps to tell


def test_ranking_puts_the_series_that_moves_with_p99_first() -> None:
    rng = random.Random(11)
    load = [0.1] * 20 + [0.9] * 10 + [0.1] * 20
    p99 = [20 + 200 * v + rng.gauss(0, 5) for v in load]
    cpu = [v + rng.gauss(0, 0.03) for v in load]
    idle = [1 - v + rng.gauss(0, 0.03) for v in load]
    memory = [0.5 + rng.gauss(0, 0.02) for _ in load]
    flat = [3.0] * len(load)
    ranked = analysis.rank_by_correlation(p99, [Candidate("memory", memory), Candidate("flat", flat),
                                                Candidate("idle", idle), Candidate("cpu", cpu)])
    assert [c.key for c in ranked][:2] in (["cpu", "idle"], ["idle", "cpu"])
    assert ranked[-1].key == "flat" and ranked[-1].spearman is None
    by_key = {c.key: c for c in ranked}
    assert by_key["cpu"].pearson is not None and by_key["cpu"].pearson > 0.9
    assert by_key["idle"].pearson is not None and by_key["idle"].pearson < -0.9  # moves against p99
    assert by_key["cpu"].score > 0.9
    assert by_key["memory"].score < 0.4


@pytest.mark.parametrize(("dependency", "instance", "expected"), [
    (Dependency("redis", "localhost", 6379), MiddlewareInstance("cache", "redis", "127.0.0.1", 6379), True),
    (Dependency("redis", "localhost", None), MiddlewareInstance("cache", "redis", "127.0.0.1", 6379), True),
    (Dependency("redis", "localhost", 6380), MiddlewareInstance("cache", "redis", "127.0.0.1", 6379), False),
    (Dependency("mysql", "db.internal", 3306), MiddlewareInstance("orders", "mysql", "DB.internal", 3306), True),
    (Dependency("mariadb", "db.internal", 3306), MiddlewareInstance("orders", "mysql", "db.internal", 3306), True),
    (Dependency("postgresql", "db.internal", 5432), MiddlewareInstance("orders", "mysql", "db.internal", 5432), False),
    (Dependency("postgresql", "", None, peer_service="billing-db"),
     MiddlewareInstance("billing-db", "postgresql", "10.0.0.9", 5432), True),
    (Dependency("postgresql", "", None), MiddlewareInstance("billing-db", "postgresql", "10.0.0.9", 5432), False),
    (Dependency("postgresql", "10.0.0.9", 5432),
     MiddlewareInstance("billing-db", "postgresql", "db.internal", 5432, aliases=("10.0.0.9",)), True),
])
def test_dependencies_match_middleware_by_system_address_port_or_peer_service(
        dependency: Dependency, instance: MiddlewareInstance, expected: bool) -> None:
    assert analysis.matches(dependency, instance) is expected


def test_cpu_busy_from_modes() -> None:
    assert analysis.cpu_busy({"user": 0.5, "system": 0.2, "idle": 0.25, "iowait": 0.05}) == pytest.approx(0.7)
    assert analysis.cpu_busy({"user": 50.0, "system": 20.0, "idle": 30.0}) == pytest.approx(0.7)
    assert analysis.cpu_busy({"user": 0.4, "system": 0.1}) == pytest.approx(0.5)
    assert analysis.cpu_busy({"total": 0.3}) == pytest.approx(0.3)
    assert analysis.cpu_busy({}) is None


def test_parameters() -> None:
    assert parse_time("start", "1700000000000").timestamp() == 1_700_000_000
    assert parse_time("start", "2026-01-02T03:04:05Z").timestamp() == 1767323045
    with pytest.raises(BadParameter, match="start"):
        parse_time("start", "yesterday")
    with pytest.raises(BadParameter, match="before end"):
        window("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", default_s=60)
    assert parse_step("30s", 3600) == 30
    assert parse_step("5m", 3600) == 300
    assert parse_step("90", 3600) == 90
    assert parse_step(None, 3600) == 30  # about 120 steps
    with pytest.raises(BadParameter, match="step"):
        parse_step("fast", 3600)
    with pytest.raises(BadParameter, match="more than"):
        parse_step("1s", 86400 * 7)
    assert parse_attrs(["db:0", "url:http://x"]) == [("db", "0"), ("url", "http://x")]
    with pytest.raises(BadParameter, match="key:value"):
        parse_attrs(["novalue"])


def test_bucket_quantile_interpolates_inside_the_bucket() -> None:
    bounds = (10.0, 20.0, 50.0)
    # 100 observations: 50 in (0,10], 40 in (10,20], 10 in (20,50], none above
    assert analysis.bucket_quantile(0.5, bounds, (50, 40, 10, 0)) == pytest.approx(10.0)
    assert analysis.bucket_quantile(0.7, bounds, (50, 40, 10, 0)) == pytest.approx(15.0)
    assert analysis.bucket_quantile(0.99, bounds, (50, 40, 10, 0)) == pytest.approx(47.0)
    assert analysis.bucket_quantile(0.99, bounds, (0, 0, 0, 5)) == 50.0  # above the last bound
    assert analysis.bucket_quantile(0.99, bounds, (0, 0, 0, 0)) is None


def test_bucket_quantile_is_close_to_numpy_on_fine_buckets() -> None:
    rng = random.Random(9)
    values = [rng.lognormvariate(3, 0.5) for _ in range(20_000)]
    bounds = tuple(float(b) for b in range(1, 400))
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
    expected = float(np.quantile(values, 0.99))
    assert analysis.bucket_quantile(0.99, bounds, counts) == pytest.approx(expected, abs=1.0)  # one bucket wide


def test_histogram_deltas_and_steps_across_a_reset() -> None:
    bounds = (10.0, 100.0)

    def h(t: float, counts: tuple[float, ...], total: float) -> analysis.HistogramPoint:
        return analysis.HistogramPoint(t, sum(counts), total, counts, bounds)

    points = [h(1000, (10, 0, 0), 50), h(1010, (20, 10, 0), 650), h(1020, (2, 0, 0), 10)]  # restarted
    deltas = analysis.histogram_deltas(points)
    assert [d.counts for d in deltas] == [[10, 10, 0], [2, 0, 0]]
    assert [d.total for d in deltas] == [600, 10]
    assert analysis.histogram_per_step([points], 10, "avg") == {1010: 30.0, 1020: 5.0}
    assert analysis.histogram_per_step([points], 10, "rate") == {1010: 2.0, 1020: 0.2}
    assert analysis.histogram_per_step([points], 10, "p99") == {1010: pytest.approx(98.2), 1020: pytest.approx(9.9)}
    # two series of one group merge their buckets
    other = [h(1000, (0, 0, 0), 0), h(1010, (0, 0, 10), 5000)]
    merged = analysis.histogram_per_step([points, other], 20, "p99")
    assert merged == {1000: 100.0, 1020: pytest.approx(9.9)}


def test_middleware_series_next_to_a_service() -> None:
    assert analysis.relevant_middleware_series("up", {}, [1, 1], []) is False
    assert analysis.relevant_middleware_series("up", {}, [1, 0, 1], []) is True
    labels = {"postgresql.database.name": "orders"}
    assert analysis.relevant_middleware_series("postgresql.commits", labels, [1.0], ["orders"]) is True
    assert analysis.relevant_middleware_series("postgresql.commits", labels, [1.0], ["billing"]) is False
    assert analysis.relevant_middleware_series("postgresql.commits", labels, [1.0], [""]) is True  # unnamed
    assert analysis.relevant_middleware_series("postgresql.backends", {"state": "active"}, [1.0], ["x"]) is True
