"""Metrics readers: SQL rows -> plain points -> the pure analysis functions -> response models."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from tracehouse.query.metrics import analysis, sql
from tracehouse.query.metrics.models import (
    Correlated,
    CorrelatedSeries,
    DependencyOut,
    Host,
    HostList,
    HostService,
    LatencySeries,
    MetricCatalogue,
    MetricInfo,
    MetricQueryResult,
    MiddlewareList,
    MiddlewareStatus,
    Series,
)
from tracehouse.query.metrics.params import BadParameter, Window, iso

MAX_POINTS = 500_000
RECENT_S = 300
_TABLE_TYPES = {sql.GAUGE: "gauge", sql.HISTOGRAM: "histogram", sql.SUMMARY: "summary",
                sql.EXPONENTIAL_HISTOGRAM: "exponential_histogram"}


class MetricNotFound(LookupError):
    pass


def _rows(client: Client, statement: str, parameters: Mapping[str, Any]) -> list[Sequence[Any]]:
    return list(client.query(statement, parameters=dict(parameters)).result_rows)


def _str_map(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()}


# --- catalogue --------------------------------------------------------------------------------

def catalogue(client: Client, win: Window, *, service: str = "", host: str = "", prefix: str = "") -> MetricCatalogue:
    merged: dict[str, MetricInfo] = {}
    parameters = {"start_ns": win.start_ns, "end_ns": win.end_ns, "service": service, "host": host, "prefix": prefix}
    for table in sql.METRIC_TABLES:
        for name, unit, description, monotonic, services, hosts, points, last_ns in _rows(
                client, sql.CATALOGUE[table], parameters):
            kind = ("counter" if monotonic else "updowncounter") if table == sql.SUM else _TABLE_TYPES[table]
            if name in merged and merged[name].points >= points:  # reported as two kinds: keep the larger
                continue
            merged[name] = MetricInfo(name=name, type=kind, unit=unit, description=description,
                                      services=sorted(services), hosts=sorted(hosts), points=int(points),
                                      last_seen=iso(int(last_ns) / 1e9))
    return MetricCatalogue(start=iso(win.start_s), end=iso(win.end_s),
                           metrics=[merged[k] for k in sorted(merged)])


# --- time series ------------------------------------------------------------------------------

@dataclass
class RawSeries:
    metric: str
    service: str
    resource: dict[str, str]
    attributes: dict[str, str]
    unit: str
    temporality: int
    monotonic: bool
    points: list[analysis.Point] = field(default_factory=list)

    def label(self, key: str) -> str:
        if key == "service.name":
            return self.service
        return self.attributes.get(key, self.resource.get(key, ""))


def _series_from_rows(rows: Iterable[Sequence[Any]], *, with_metric: bool) -> list[RawSeries]:
    found: dict[tuple[Any, ...], RawSeries] = {}
    for row in rows:
        if with_metric:
            metric, service, resource, attributes, t_ns, start_ns, value, unit, temporality, monotonic = row
        else:
            service, resource, attributes, t_ns, start_ns, value, unit, temporality, monotonic = row
            metric = ""
        resource_map, attribute_map = _str_map(resource), _str_map(attributes)
        key = (metric, service, tuple(sorted(resource_map.items())), tuple(sorted(attribute_map.items())))
        series = found.get(key)
        if series is None:
            series = found[key] = RawSeries(metric, str(service), resource_map, attribute_map, str(unit),
                                            int(temporality), bool(monotonic))
        series.points.append(analysis.Point(int(t_ns) / 1e9, float(value), int(start_ns) / 1e9))
    return list(found.values())


def metric_table(client: Client, name: str, win: Window) -> str:
    counts = {table: int(points) for table, points in _rows(
        client, sql.METRIC_KIND, {"name": name, "start_ns": win.start_ns, "end_ns": win.end_ns})}
    present = [table for table in sql.METRIC_TABLES if counts.get(table, 0) > 0]
    if not present:
        raise MetricNotFound(f"no metric named {name!r} has points between {iso(win.start_s)} and {iso(win.end_s)}")
    return present[0]


def step_values(series: Sequence[RawSeries], agg: str, step_s: float) -> dict[float, float]:
    """One group's value per step: rates summed over its series, sums of per-series averages,
    or the aggregation over every point of the group."""
    if agg == "rate":
        return analysis.combine([analysis.rate_per_step(s.points, step_s, temporality=s.temporality)
                                 for s in series], "sum")
    if agg == "sum":
        return analysis.combine([analysis.aggregate_per_step(s.points, step_s, "avg") for s in series], "sum")
    return analysis.aggregate_per_step((p for s in series for p in s.points), step_s, agg)


def query(client: Client, *, name: str, win: Window, step_s: float, agg: str | None,
          filters: Sequence[tuple[str, str]], group_by: Sequence[str]) -> MetricQueryResult:
    table = metric_table(client, name, win)
    if table == sql.HISTOGRAM:
        return histogram_query(client, name=name, win=win, step_s=step_s, agg=agg, filters=filters,
                               group_by=group_by)
    if table not in (sql.GAUGE, sql.SUM):
        raise BadParameter(f"name: {name!r} is a {_TABLE_TYPES[table]}; this endpoint answers gauges, sums "
                           "and explicit-bucket histograms")
    # One step of look-back so that the first step's rate has a point to start from.
    fetch = Window(win.start_s - step_s - 60, win.end_s)
    statement = sql.GAUGE_POINTS if table == sql.GAUGE else sql.SUM_POINTS
    rows = _rows(client, statement, {
        "name": name, "start_ns": fetch.start_ns, "end_ns": fetch.end_ns, "limit": MAX_POINTS + 1,
        "keys": [k for k, _ in filters], "values": [v for _, v in filters]})
    if len(rows) > MAX_POINTS:
        raise BadParameter(f"more than {MAX_POINTS} points match; narrow the time range or add attr filters")
    raw = _series_from_rows(rows, with_metric=False)
    monotonic = table == sql.SUM and any(s.monotonic for s in raw)
    kind = "gauge" if table == sql.GAUGE else ("counter" if monotonic else "updowncounter")
    chosen = agg or ("rate" if kind == "counter" else "avg")
    if chosen == "rate" and kind != "counter":
        raise BadParameter(f"agg: rate applies to counters; {name!r} is a {kind}")
    unit = raw[0].unit if raw else ""
    if chosen == "rate":
        unit = f"{unit}/s" if unit and unit != "1" else "1/s"
    groups: dict[tuple[str, ...], list[RawSeries]] = defaultdict(list)
    for series in raw:
        groups[tuple(series.label(k) for k in group_by)].append(series)
    steps = analysis.step_starts(win.start_s, win.end_s, step_s)
    out = []
    for labels, members in sorted(groups.items()):
        values = analysis.align(step_values(members, chosen, step_s), steps)
        out.append(Series(labels=dict(zip(group_by, labels, strict=True)), timestamps=[iso(s) for s in steps],
                          values=values))
    return MetricQueryResult(name=name, type=kind, unit=unit, agg=chosen, step_s=step_s, start=iso(win.start_s),
                             end=iso(win.end_s), series=out)


HISTOGRAM_AGGREGATIONS = ("p99", "avg", "sum", "rate")


def histogram_query(client: Client, *, name: str, win: Window, step_s: float, agg: str | None,
                    filters: Sequence[tuple[str, str]], group_by: Sequence[str]) -> MetricQueryResult:
    """An explicit-bucket histogram per step: p99 from the merged buckets (the default), avg and
    sum of the observations, or rate (observations per second)."""
    chosen = agg or "p99"
    if chosen not in HISTOGRAM_AGGREGATIONS:
        raise BadParameter(f"agg: {chosen} does not apply to the histogram {name!r}; use "
                           f"{', '.join(HISTOGRAM_AGGREGATIONS)}")
    fetch = Window(win.start_s - step_s - 60, win.end_s)
    rows = _rows(client, sql.HISTOGRAM_POINTS, {
        "name": name, "start_ns": fetch.start_ns, "end_ns": fetch.end_ns, "limit": MAX_POINTS + 1,
        "keys": [k for k, _ in filters], "values": [v for _, v in filters]})
    if len(rows) > MAX_POINTS:
        raise BadParameter(f"more than {MAX_POINTS} points match; narrow the time range or add attr filters")
    series: dict[tuple[Any, ...], tuple[RawSeries, list[analysis.HistogramPoint]]] = {}
    unit = ""
    for service, resource, attributes, t_ns, count, total, counts, bounds, row_unit, temporality in rows:
        resource_map, attribute_map = _str_map(resource), _str_map(attributes)
        key = (service, tuple(sorted(resource_map.items())), tuple(sorted(attribute_map.items())))
        if key not in series:
            series[key] = (RawSeries(name, str(service), resource_map, attribute_map, str(row_unit), int(temporality),
                                     False), [])
        series[key][1].append(analysis.HistogramPoint(int(t_ns) / 1e9, float(count), float(total),
                                                      tuple(float(c) for c in counts), tuple(float(b) for b in bounds)))
        unit = unit or str(row_unit)
    if chosen == "rate":
        unit = "1/s"
    groups: dict[tuple[str, ...], list[tuple[RawSeries, list[analysis.HistogramPoint]]]] = defaultdict(list)
    for raw, points in series.values():
        groups[tuple(raw.label(k) for k in group_by)].append((raw, points))
    steps = analysis.step_starts(win.start_s, win.end_s, step_s)
    out = []
    for labels, members in sorted(groups.items()):
        per_step = analysis.histogram_per_step([points for _raw, points in members], step_s, chosen,
                                               temporalities=[raw.temporality for raw, _points in members])
        out.append(Series(labels=dict(zip(group_by, labels, strict=True)), timestamps=[iso(s) for s in steps],
                          values=analysis.align(per_step, steps)))
    return MetricQueryResult(name=name, type="histogram", unit=unit, agg=chosen, step_s=step_s,
                             start=iso(win.start_s), end=iso(win.end_s), series=out)


# --- hosts ------------------------------------------------------------------------------------

def hosts(client: Client, win: Window) -> HostList:
    parameters = {"start_ns": win.start_ns, "end_ns": win.end_ns}
    figures: dict[str, dict[str, Any]] = defaultdict(dict)
    cpu_modes: dict[str, dict[str, float]] = defaultdict(dict)
    filesystems: dict[str, list[float]] = defaultdict(list)
    last_seen: dict[str, float] = defaultdict(float)
    for host, metric, attributes, value, t_ns in _rows(client, sql.HOST_GAUGES, parameters):
        attributes = _str_map(attributes)
        last_seen[host] = max(last_seen[host], int(t_ns) / 1e9)
        if metric == "system.cpu.utilization":
            cpu_modes[host][attributes.get("cpu.mode", attributes.get("state", "total"))] = float(value)
        elif metric == "system.memory.utilization":
            if attributes.get("system.memory.state", attributes.get("state", "used")) == "used":
                figures[host]["memory_utilization"] = float(value)
        elif metric == "system.filesystem.utilization":
            filesystems[host].append(float(value))
        elif metric == "system.cpu.load_average.1m":
            figures[host]["load_average_1m"] = float(value)
    for host, modes in cpu_modes.items():
        figures[host]["cpu_utilization"] = analysis.cpu_busy(modes)
    for host, values in filesystems.items():
        figures[host]["filesystem_utilization_max"] = max(values)

    # Counters and up-down counters: per reporting instance, then the host's figure from the first
    # instance that has it (agents on one host report the same machine).
    sums: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], list[analysis.Point]] = defaultdict(list)
    # Latest figures need the last few points only (agents report every 10 s by default).
    recent = {"start_ns": max(win.start_ns, win.end_ns - RECENT_S * 1_000_000_000), "end_ns": win.end_ns}
    for host, _service, instance, metric, attributes, t_ns, start_ns, value in _rows(client, sql.HOST_SUMS, recent):
        key = (host, instance, metric, tuple(sorted(_str_map(attributes).items())))
        sums[key].append(analysis.Point(int(t_ns) / 1e9, float(value), int(start_ns) / 1e9))
        last_seen[host] = max(last_seen[host], int(t_ns) / 1e9)
    per_instance: dict[tuple[str, str, str], float] = defaultdict(float)
    for (host, instance, metric, attributes), points in sums.items():
        labels = dict(attributes)
        if metric == "system.memory.usage":
            if labels.get("system.memory.state", labels.get("state")) == "used":
                per_instance[(host, instance, "memory_used_bytes")] = max(points, key=lambda p: p.t_s).value
        elif metric == "system.memory.limit":
            per_instance[(host, instance, "memory_limit_bytes")] = max(points, key=lambda p: p.t_s).value
        else:
            rate = analysis.latest_rate(points)
            if rate is not None:
                figure = "network_io_bytes_per_s" if metric == "system.network.io" else "disk_io_bytes_per_s"
                per_instance[(host, instance, figure)] += rate
    for (host, _instance, figure), value in sorted(per_instance.items()):
        figures[host].setdefault(figure, value)

    services: dict[str, dict[str, HostService]] = defaultdict(dict)
    for statement in (sql.HOST_SERVICES_FROM_SPANS, sql.HOST_SERVICES_FROM_METRICS):
        for host, service, instances, seen_ns in _rows(client, statement, parameters):
            known = services[host].get(service)
            merged = sorted({*(known.instances if known else []), *(i for i in instances if i)})
            seen = max(int(seen_ns) / 1e9, _from_iso_s(known.last_seen) if known else 0.0)
            services[host][service] = HostService(service=service, instances=merged, last_seen=iso(seen))
            last_seen[host] = max(last_seen[host], int(seen_ns) / 1e9)
    out = []
    for host in sorted(set(figures) | set(services) | set(last_seen)):
        f = figures.get(host, {})
        out.append(Host(
            host=host, last_seen=iso(last_seen[host]),
            cpu_utilization=f.get("cpu_utilization"), load_average_1m=f.get("load_average_1m"),
            memory_utilization=f.get("memory_utilization"), memory_used_bytes=f.get("memory_used_bytes"),
            memory_limit_bytes=f.get("memory_limit_bytes"),
            filesystem_utilization_max=f.get("filesystem_utilization_max"),
            disk_io_bytes_per_s=f.get("disk_io_bytes_per_s"), network_io_bytes_per_s=f.get("network_io_bytes_per_s"),
            services=sorted(services.get(host, {}).values(), key=lambda s: s.service)))
    return HostList(start=iso(win.start_s), end=iso(win.end_s), hosts=out)


def _from_iso_s(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- correlation ------------------------------------------------------------------------------

def _port(raw: Any) -> int | None:
    try:
        return int(str(raw))
    except ValueError:
        return None


def source_series(client: Client, win: Window, step_s: float, *, source: str, entity: str, source_key: str,
                  prefix: str, steps: Sequence[float], fetch_limit: int = 200_000) -> list[CorrelatedSeries]:
    """Every metric series of one host (source_key host.name), middleware instance or service
    (source_key service.name) whose name starts with `prefix`, one value per step: gauges averaged, counters as rates.
    Series reported by several instances of one host (every agent there sends system.*) are
    averaged, since they measure the same machine."""
    fetch = Window(win.start_s - step_s - 60, win.end_s)
    raw: list[RawSeries] = []
    for statement in (sql.GAUGE_SOURCE_POINTS, sql.SUM_SOURCE_POINTS):
        rows = _rows(client, statement, {"start_ns": fetch.start_ns, "end_ns": fetch.end_ns, "source_key": source_key,
                                         "source_value": entity, "prefix": prefix, "limit": fetch_limit})
        raw += _series_from_rows(rows, with_metric=True)
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[RawSeries]] = defaultdict(list)
    for series in raw:
        groups[(series.metric, tuple(sorted(series.attributes.items())))].append(series)
    out = []
    for (metric, attributes), members in sorted(groups.items()):
        counter = any(s.monotonic for s in members)
        per_instance = [analysis.rate_per_step(s.points, step_s, temporality=s.temporality) if counter
                        else analysis.aggregate_per_step(s.points, step_s, "avg") for s in members]
        values = analysis.align(analysis.combine(per_instance, "avg"), steps)
        if all(v is None for v in values):
            continue
        labels = dict(attributes)
        label_text = ",".join(f"{k}={v}" for k, v in attributes)
        unit = members[0].unit
        out.append(CorrelatedSeries(
            id=f"{source}/{entity}/{metric}{{{label_text}}}", source=source, entity=entity, metric=metric,
            labels=labels, unit=(f"{unit}/s" if counter else unit), agg="rate" if counter else "avg",
            values=values, spearman=None, pearson=None, score=0.0))
    return out


def correlated(client: Client, service: str, win: Window, step_s: float, *, limit: int) -> Correlated:
    parameters = {"service": service, "start_ns": win.start_ns, "end_ns": win.end_ns, "step_s": int(step_s)}
    steps = analysis.step_starts(win.start_s, win.end_s, step_s)
    latency_rows = {int(step): (int(calls), int(errors), float(p99), float(p50))
                    for step, calls, errors, p99, p50 in _rows(client, sql.SERVICE_LATENCY, parameters)}
    if not latency_rows:
        raise MetricNotFound(f"service {service!r} has no spans between {iso(win.start_s)} and {iso(win.end_s)}")
    p99: list[float | None] = []
    p50: list[float | None] = []
    error_rate: list[float | None] = []
    calls: list[int] = []
    for step in steps:
        row = latency_rows.get(int(step))
        calls.append(row[0] if row else 0)
        p99.append(row[2] if row else None)
        p50.append(row[3] if row else None)
        error_rate.append(row[1] / row[0] if row and row[0] else None)

    host_names = [str(r[0]) for r in _rows(client, sql.SERVICE_HOSTS, parameters)]
    dependencies = [analysis.Dependency(system=str(system), address=str(address), port=_port(port),
                                        peer_service=str(peer), db_name=str(db_name), calls=int(n), node=str(node))
                    for node, system, address, port, peer, db_name, n in
                    _rows(client, sql.SERVICE_DEPENDENCIES, parameters)]
    instances = [analysis.MiddlewareInstance(service_name=str(name), system=str(client_system or receiver_system),
                                             address=str(address), port=_port(port),
                                             aliases=tuple(a for a in str(aliases).split(",") if a))
                 for name, receiver_system, client_system, address, port, aliases in
                 _rows(client, sql.MIDDLEWARE_INSTANCES, parameters)]
    matched = analysis.match_dependencies(dependencies, instances)

    candidates: list[CorrelatedSeries] = []
    for host in host_names:
        candidates += source_series(client, win, step_s, source="host", entity=host, source_key="host.name",
                                    prefix="system.", steps=steps)
    # The service's own processes (CPU, memory, threads, GC of its instances).
    candidates += source_series(client, win, step_s, source="process", entity=service, source_key="service.name",
                                prefix="process.", steps=steps)
    for name in sorted({instance.service_name for _d, instance in matched if instance is not None}):
        databases = {d.db_name for d, instance in matched if instance is not None and instance.service_name == name}
        candidates += [s for s in source_series(client, win, step_s, source="middleware", entity=name,
                                                source_key="service.name", prefix="", steps=steps)
                       if analysis.relevant_middleware_series(s.metric, s.labels, s.values, databases)]
    ranked = analysis.rank_by_correlation(
        p99, [analysis.Candidate(key=c.id, values=c.values, meta={"series": c}) for c in candidates])
    series_out = []
    for candidate in ranked[:limit]:
        model = candidate.meta["series"]
        assert isinstance(model, CorrelatedSeries)
        model.spearman = _rounded(candidate.spearman)
        model.pearson = _rounded(candidate.pearson)
        model.score = _rounded(candidate.score) or 0.0
        series_out.append(model)
    return Correlated(
        service=service, start=iso(win.start_s), end=iso(win.end_s), step_s=step_s,
        timestamps=[iso(s) for s in steps],
        latency=LatencySeries(p99_ms=p99, p50_ms=p50, error_rate=error_rate, calls=calls),
        hosts=host_names,
        dependencies=[DependencyOut(node=d.node, system=d.system, address=d.address, port=d.port, peer_service=d.peer_service,
                                    db_name=d.db_name, calls=d.calls,
                                    middleware=instance.service_name if instance else None)
                      for d, instance in matched],
        series=series_out)


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)


def middleware(client: Client, win: Window) -> MiddlewareList:
    instances = [MiddlewareStatus(name=str(name), system=str(system), address=str(address), port=_port(port),
                                  up=float(up) >= 1, availability=round(float(availability), 4),
                                  last_seen=iso(int(seen_ns) / 1e9))
                 for name, system, address, port, up, seen_ns, availability in
                 _rows(client, sql.MIDDLEWARE_STATUS, {"start_ns": win.start_ns, "end_ns": win.end_ns})]
    return MiddlewareList(start=iso(win.start_s), end=iso(win.end_s), instances=instances)
