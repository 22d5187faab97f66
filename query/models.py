"""Response models of the query API, named for what they return."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

NodeKind = Literal["service", "database", "messaging", "external"]


class Window(BaseModel):
    start: str = Field(description="RFC 3339 start of the window (inclusive)")
    end: str = Field(description="RFC 3339 end of the window (exclusive)")


class ServiceSummary(BaseModel):
    name: str
    calls: int = Field(description="entry spans (SERVER, CONSUMER, roots), or all spans of a service without any")
    errors: int
    error_rate: float = Field(description="errors / calls, 0..1")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    operations: int = Field(description="distinct operation (span) names")
    instances: list[str] = Field(description="service.instance.id values seen")
    versions: list[str] = Field(description="service.version values seen")


class ServiceList(Window):
    services: list[ServiceSummary]


class OperationSummary(BaseModel):
    name: str
    span_kind: str
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    total_time_ms: float


class OperationList(Window):
    service: str
    operations: list[OperationSummary]


class TraceSummary(BaseModel):
    trace_id: str
    root_service: str
    root_operation: str
    start: str
    start_unix_ms: int
    duration_ms: float
    span_count: int
    error_count: int
    services: list[str]


class TraceList(Window):
    traces: list[TraceSummary]


class SpanEvent(BaseModel):
    time: str
    name: str
    attributes: dict[str, str]


class SpanLink(BaseModel):
    trace_id: str
    span_id: str
    trace_state: str
    attributes: dict[str, str]


class SpanDetail(BaseModel):
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str
    start: str
    start_unix_ns: int
    duration_ms: float
    status_code: str
    status_message: str
    trace_state: str
    scope_name: str
    scope_version: str
    attributes: dict[str, str]
    resource_attributes: dict[str, str]
    events: list[SpanEvent]
    links: list[SpanLink]


class TraceDetail(BaseModel):
    trace_id: str
    span_count: int
    services: list[str]
    start: str
    duration_ms: float
    spans: list[SpanDetail]


class GraphNode(BaseModel):
    id: str
    kind: NodeKind
    calls: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


class GraphEdge(BaseModel):
    source: str
    target: str
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class CycleEdge(BaseModel):
    source: str
    target: str
    calls: int
    example_trace_ids: list[str]


class ServiceCycle(BaseModel):
    services: list[str] = Field(description="services in call order; the last calls the first")
    edges: list[CycleEdge]


class TraceCycle(BaseModel):
    path: list[str] = Field(description="service path that re-enters its first service, e.g. [A, B, A]")
    traces: int = Field(description="traces in the window whose call path does this")
    example_trace_ids: list[str]


class Dependencies(Window):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    cycles: list[ServiceCycle]
    cycles_truncated: bool = Field(description="more cycles exist than the enumeration bound (max_cycles)")
    source: Literal["raw", "rollup"] = Field(description="raw spans (small windows) or rollups")
    complete_until: str | None = Field(
        description="service-to-service edges are complete up to this time; null: through `end`. Set when "
                    "the spans past the edge rollup are too many to join at request time")


class CycleReport(Window):
    cycles: list[ServiceCycle]
    cycles_truncated: bool = Field(description="the enumeration stopped at its bound")
    strongly_connected_components: list[list[str]]
    trace_cycles: list[TraceCycle]
    traces_checked: int
    trace_check_truncated: bool


class LatencyBucket(BaseModel):
    lower_ms: float
    upper_ms: float
    count: int


class LatencyPoint(BaseModel):
    time: str
    unix_ms: int
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class Latency(Window):
    service: str | None
    operation: str | None
    count: int
    min_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    p50_ms: float | None
    p75_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    relative_accuracy: float = Field(description="every percentile is within this relative error")
    histogram: list[LatencyBucket]
    step_s: int
    series: list[LatencyPoint]


class TopEntry(BaseModel):
    name: str
    service: str | None = None
    operation: str | None = None
    source: str | None = None
    target: str | None = None
    db_system: str | None = None
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    total_time_ms: float
    value: float | None = Field(description="the value ranked by")


class TopList(Window):
    by: str
    entity: str
    items: list[TopEntry]


class DbEndpoint(BaseModel):
    service: str
    operation: str
    calls: int
    share: float = Field(description="share of the statement's calls, 0..1")


class DbStatement(BaseModel):
    statement: str
    service: str
    db_system: str
    db_name: str
    calls: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    total_time_ms: float
    example_trace_ids: list[str]
    endpoints: list[DbEndpoint]


class DbCalls(Window):
    statements: list[DbStatement]


class NPlusOneFinding(BaseModel):
    service: str
    parent_operation: str
    db_system: str
    statement: str
    traces: int = Field(description="traces affected")
    occurrences: int = Field(description="parent spans that did it")
    executions_per_trace_max: int
    executions_per_trace_mean: float
    example_trace_ids: list[str]


class NPlusOneReport(Window):
    min_executions: int
    findings: list[NPlusOneFinding]


class ErrorDetail(BaseModel):
    detail: str = Field(description="what went wrong; a bad parameter is named first")
    parameter: str | None = Field(default=None, description="the parameter at fault, for 400")
