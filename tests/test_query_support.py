"""Helpers for the query service tests: spans written into otel_traces as the OpenTelemetry
Collector's ClickHouse exporter writes them, known topologies, and an in-process API client."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlparse, urlunparse

from fastapi.testclient import TestClient

from tracehouse import storage
from tracehouse.query.app import create_app
from tracehouse.query.settings import QuerySettings
from tracehouse.settings import StoreSettings

COLUMNS = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
           "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
           "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId",
           "Links.SpanId", "Links.TraceState", "Links.Attributes"]

_ids = itertools.count(1)


def new_span_id() -> str:
    return f"{next(_ids):016x}"


def new_trace_id(rng: random.Random | None = None) -> str:
    return f"{(rng or random).getrandbits(128):032x}"


@dataclass
class Span:
    """One otel_traces row."""

    trace_id: str
    service: str
    name: str
    start: datetime
    duration_ms: float
    kind: str = "Server"
    parent_span_id: str = ""
    span_id: str = field(default_factory=new_span_id)
    error: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    resource: dict[str, str] = field(default_factory=dict)
    events: list[tuple[datetime, str, dict[str, str]]] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(milliseconds=self.duration_ms)

    def child(self, service: str, name: str, *, offset_ms: float = 0.1, duration_ms: float | None = None,
              kind: str = "Server", **kwargs: object) -> Span:
        return Span(self.trace_id, service, name, self.start + timedelta(milliseconds=offset_ms),
                    duration_ms if duration_ms is not None else max(self.duration_ms - 2 * offset_ms, 0.001),
                    kind=kind, parent_span_id=self.span_id, **kwargs)  # type: ignore[arg-type]

    def to_row(self) -> list[object]:
        resource = {"service.name": self.service, **self.resource}
        return [self.start, self.trace_id, self.span_id, self.parent_span_id, "", self.name, self.kind,
                self.service, resource, "tests", "1.0", self.attributes, int(round(self.duration_ms * 1_000_000)),
                "Error" if self.error else "Unset", "boom" if self.error else "",
                [e[0] for e in self.events], [e[1] for e in self.events], [e[2] for e in self.events],
                [], [], [], []]


def insert_spans(client: storage.Client, spans: Sequence[Span]) -> None:
    client.insert("otel_traces", [s.to_row() for s in spans], column_names=COLUMNS)


def dsn_with_database(dsn: str, database: str) -> str:
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb":
        return urlunparse(parsed._replace(query=urlencode({"database": database})))
    return urlunparse(parsed._replace(path="/" + database))


@contextmanager
def api(store_dsn: str, client: storage.Client, settings: QuerySettings | None = None) -> Iterator[TestClient]:
    """The query app on the fixture's database, served in-process (the rollup job is off unless asked)."""
    dsn = dsn_with_database(store_dsn, storage.database_of(client))
    app = create_app(StoreSettings(store=dsn), {}, settings=settings or QuerySettings(rollup_enabled=False))
    with TestClient(app) as test_client:
        yield test_client


def ago(seconds: float) -> datetime:
    return datetime.now(tz=UTC) - timedelta(seconds=seconds)


# ---------------------------------------------------------------------------------------------
# Known topologies, described once and emitted either through the OpenTelemetry SDK or as rows.
# ---------------------------------------------------------------------------------------------

@dataclass
class SpanSpec:
    service: str
    name: str
    kind: str  # Server, Client, Internal, Producer, Consumer
    parent: int | None  # index of the parent in the trace, None for the root
    offset_ms: float  # start, after the trace's start
    duration_ms: float
    error: bool = False
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class TraceSpec:
    offset_s: float  # trace start, after the topology's start
    spans: list[SpanSpec] = field(default_factory=list)

    def add(self, spec: SpanSpec) -> int:
        self.spans.append(spec)
        return len(self.spans) - 1

    def rpc(self, parent: int, callee: str, operation: str, *, offset_ms: float, duration_ms: float,
            error: bool = False) -> int:
        """A CLIENT span in the parent's service and the SERVER span it causes in `callee`."""
        caller = self.spans[parent].service
        client = self.add(SpanSpec(caller, f"call {callee}", "Client", parent, offset_ms, duration_ms + 1, error))
        return self.add(SpanSpec(callee, operation, "Server", client, offset_ms + 0.5, duration_ms, error))


def known_topology() -> list[TraceSpec]:
    """A chain with failing calls, a fan-out, a cycle A -> B -> C -> A, and database calls with an
    N+1 loop. KNOWN_EDGES and friends below say what the API must answer."""
    traces: list[TraceSpec] = []
    for i in range(5):  # chain; payments fails in 2 of 5
        t = TraceSpec(i * 0.2)
        root = t.add(SpanSpec("frontend", "GET /checkout", "Server", None, 0, 100))
        orders = t.rpc(root, "orders", "POST /orders", offset_ms=5, duration_ms=80)
        t.rpc(orders, "payments", "POST /charge", offset_ms=20, duration_ms=40, error=i < 2)
        traces.append(t)
    for i in range(4):  # fan-out
        t = TraceSpec(2 + i * 0.2)
        root = t.add(SpanSpec("gateway", "GET /home", "Server", None, 0, 60))
        for n, callee in enumerate(("users", "catalog", "recommendations")):
            t.rpc(root, callee, f"GET /{callee}", offset_ms=2 + n * 15, duration_ms=10)
        traces.append(t)
    for i in range(3):  # cycle A -> B -> C -> A
        t = TraceSpec(4 + i * 0.2)
        a = t.add(SpanSpec("A", "GET /a", "Server", None, 0, 90))
        b = t.rpc(a, "B", "GET /b", offset_ms=5, duration_ms=70)
        c = t.rpc(b, "C", "GET /c", offset_ms=10, duration_ms=50)
        t.rpc(c, "A", "GET /a/callback", offset_ms=15, duration_ms=20)
        traces.append(t)
    for i in range(2):  # N+1: one parent runs the same SELECT six times
        t = TraceSpec(6 + i * 0.2)
        root = t.add(SpanSpec("orders", "GET /orders/list", "Server", None, 0, 80))
        for n in range(6):
            t.add(SpanSpec("orders", "SELECT shop.items", "Client", root, 2 + n * 10, 5, attributes={
                "db.system": "postgresql", "db.name": "shop",
                "db.statement": f"SELECT * FROM items WHERE order_id = {100 * i + n}"}))
        traces.append(t)
    return traces


KNOWN_EDGES = {  # (source, target): (calls, errors)
    ("frontend", "orders"): (5, 0), ("orders", "payments"): (5, 2),
    ("gateway", "users"): (4, 0), ("gateway", "catalog"): (4, 0), ("gateway", "recommendations"): (4, 0),
    ("A", "B"): (3, 0), ("B", "C"): (3, 0), ("C", "A"): (3, 0),
    ("orders", "postgresql/shop"): (12, 0),
}
KNOWN_NODES = {"frontend": "service", "orders": "service", "payments": "service", "gateway": "service",
               "users": "service", "catalog": "service", "recommendations": "service", "A": "service",
               "B": "service", "C": "service", "postgresql/shop": "database"}
KNOWN_CYCLES = [["A", "B", "C"]]
KNOWN_TRACE_CYCLES = [(["A", "B", "C", "A"], 3)]


def topology_rows(traces: Sequence[TraceSpec], start: datetime) -> list[Span]:
    """The topology as otel_traces rows, as the OpenTelemetry Collector's exporter writes them."""
    rows: list[Span] = []
    rng = random.Random(42)
    for trace in traces:
        trace_id = new_trace_id(rng)
        ids = [new_span_id() for _ in trace.spans]
        base = start + timedelta(seconds=trace.offset_s)
        for index, spec in enumerate(trace.spans):
            rows.append(Span(trace_id, spec.service, spec.name, base + timedelta(milliseconds=spec.offset_ms),
                             spec.duration_ms, kind=spec.kind,
                             parent_span_id="" if spec.parent is None else ids[spec.parent], span_id=ids[index],
                             error=spec.error, attributes=dict(spec.attributes)))
    return rows


def graph_summary(body: dict[str, Any]) -> tuple[dict[tuple[str, str], tuple[int, int]], dict[str, str]]:
    """(source, target) -> (calls, errors), and node id -> kind, of a /dependencies answer."""
    edges = {(e["source"], e["target"]): (e["calls"], e["errors"]) for e in body["edges"]}
    nodes = {n["id"]: n["kind"] for n in body["nodes"]}
    return edges, nodes
