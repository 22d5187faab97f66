"""Helpers for the query service tests: spans written into otel_traces as the OpenTelemetry
Collector's ClickHouse exporter writes them, known topologies, and an in-process API client."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlparse, urlunparse

from fastapi.testclient import TestClient
from tracehouse.query.app import create_app
from tracehouse.query.settings import QuerySettings

from tracehouse import storage
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
