"""Response models of the metrics API (what the UI's Hosts, Middleware and service pages read)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MetricInfo(BaseModel):
    name: str
    type: str = Field(description="gauge | counter | updowncounter | histogram | summary | exponential_histogram")
    unit: str
    description: str
    services: list[str]
    hosts: list[str]
    points: int
    last_seen: str


class MetricCatalogue(BaseModel):
    start: str
    end: str
    metrics: list[MetricInfo]


class Series(BaseModel):
    labels: dict[str, str] = Field(description="values of the group_by keys")
    timestamps: list[str] = Field(description="step starts, RFC 3339 UTC")
    values: list[float | None] = Field(description="one per timestamp; null where the step has no data")


class MetricQueryResult(BaseModel):
    name: str
    type: str
    unit: str = Field(description="the metric's unit; with agg=rate, per second")
    agg: str
    step_s: float
    start: str
    end: str
    series: list[Series]


class HostService(BaseModel):
    service: str
    instances: list[str]
    last_seen: str


class Host(BaseModel):
    host: str
    last_seen: str
    cpu_utilization: float | None = Field(description="busy share of all CPUs, 0..1")
    load_average_1m: float | None
    memory_utilization: float | None = Field(description="used share of memory, 0..1")
    memory_used_bytes: float | None
    memory_limit_bytes: float | None
    filesystem_utilization_max: float | None = Field(description="fullest filesystem's used share, 0..1")
    disk_io_bytes_per_s: float | None
    network_io_bytes_per_s: float | None
    services: list[HostService]


class HostList(BaseModel):
    start: str
    end: str
    hosts: list[Host]


class LatencySeries(BaseModel):
    p99_ms: list[float | None]
    p50_ms: list[float | None]
    error_rate: list[float | None] = Field(description="errors / calls per step, 0..1")
    calls: list[int]


class DependencyOut(BaseModel):
    node: str = Field(description="the dependency graph's node id (db.system/db.name, db.system@address, ...)")
    system: str
    address: str
    port: int | None
    peer_service: str
    db_name: str
    calls: int
    middleware: str | None = Field(description="service.name of the middleware instance it matched, if any")


class CorrelatedSeries(BaseModel):
    id: str = Field(description="stable key: source/entity/metric{labels}")
    source: str = Field(description="host | process | middleware")
    entity: str = Field(description="host name, the service itself (process.* metrics of its instances), "
                                    "or the middleware instance's service.name")
    metric: str
    labels: dict[str, str]
    unit: str
    agg: str = Field(description="avg (gauges) or rate (counters, per second)")
    values: list[float | None]
    spearman: float | None = Field(description="rank correlation with p99 over the aligned steps")
    pearson: float | None
    score: float = Field(description="|spearman|; the series are ordered by it, strongest first")


class Correlated(BaseModel):
    service: str
    start: str
    end: str
    step_s: float
    timestamps: list[str]
    latency: LatencySeries
    hosts: list[str]
    dependencies: list[DependencyOut]
    series: list[CorrelatedSeries]


class MiddlewareStatus(BaseModel):
    name: str = Field(description="service.name of the instance")
    system: str = Field(description="redis | mysql | postgresql | nginx | rabbitmq")
    address: str
    port: int | None
    up: bool = Field(description="the latest scrape succeeded")
    availability: float = Field(description="share of the window's scrapes that succeeded, 0..1")
    last_seen: str


class MiddlewareList(BaseModel):
    start: str
    end: str
    instances: list[MiddlewareStatus]
