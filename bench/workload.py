"""Realistic synthetic OTLP trace batches: traces of 5-50 spans across several services, each span
with 10-20 attributes, as an HTTP server / client / DB-calling service would produce."""

from __future__ import annotations

import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

SERVICES = ("gateway", "orders", "inventory", "payments", "notifications", "users", "search", "catalog")
OPERATIONS = ("GET /api/orders", "POST /api/checkout", "GET /api/items/{id}", "SELECT orders",
              "redis GET", "POST /charge", "publish notification", "GET /users/{id}")


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _span_attributes(rng: random.Random, count: int, service: str, operation: str) -> list[KeyValue]:
    """Attributes as instrumentations write them: most follow from the service and the operation
    (route, peer address, statement, code location); a few vary per request (ids, sizes, status)."""
    service_index = SERVICES.index(service)
    operation_index = OPERATIONS.index(operation)
    base: list[tuple[str, object]] = [
        ("http.request.method", "POST" if operation.startswith("POST") else "GET"),
        ("http.route", operation),
        ("http.response.status_code", rng.choice((200, 200, 200, 200, 201, 404, 500))),
        ("url.path", operation.replace("{id}", str(rng.randrange(100000)))),
        ("server.address", f"10.0.{service_index}.{operation_index + 10}"),
        ("server.port", 8080),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "python-requests/2.31"),
        ("db.system", "postgresql"),
        ("db.statement", f"SELECT * FROM {service} WHERE id = ?"),
        ("thread.id", rng.randrange(1, 17)),
        ("code.function", f"handle_{operation_index}"),
        ("code.lineno", 40 + 7 * operation_index),
        ("customer.tier", rng.choice(("gold", "silver", "free"))),
        ("cache.hit", rng.random() < 0.8),
        ("request.size_bytes", rng.randrange(100, 10000)),
        ("retry.count", 0),
        ("region", "eu-west-1"),
        ("feature.flag", "checkout-v2"),
        ("latency.budget_ms", 250.0),
    ]
    return [_kv(k, v) for k, v in base[:count]]


def trace_request(rng: random.Random, spans_wanted: int, now_ns: int | None = None) -> ExportTraceServiceRequest:
    """One export request holding whole traces until about `spans_wanted` spans."""
    now_ns = now_ns or time.time_ns()
    by_service: dict[str, list[Span]] = {s: [] for s in SERVICES}
    total = 0
    while total < spans_wanted:
        trace_id = rng.randbytes(16)
        size = rng.randint(5, 50)
        start = now_ns - rng.randrange(0, 60_000_000_000)
        parents: list[bytes] = []
        for position in range(size):
            span_id = rng.randbytes(8)
            service = SERVICES[position % len(SERVICES)] if position else SERVICES[0]
            duration = int(rng.lognormvariate(15, 1.2))
            operation = rng.choice(OPERATIONS)
            span = Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=rng.choice(parents) if parents else b"",
                name=operation,
                kind=rng.choice((Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL)),
                start_time_unix_nano=start + position * 1000,
                end_time_unix_nano=start + position * 1000 + duration,
                attributes=_span_attributes(rng, rng.randint(10, 20), service, operation),
                status=Status(code=Status.STATUS_CODE_ERROR if rng.random() < 0.02 else Status.STATUS_CODE_UNSET),
            )
            parents.append(span_id)
            by_service[service].append(span)
        total += size
    resource_spans = []
    for service, spans in by_service.items():
        if not spans:
            continue
        resource = Resource(attributes=[
            _kv("service.name", service), _kv("service.version", "1.4.2"),
            _kv("service.instance.id", f"{service}-host:8080:{now_ns}:1234"),
            _kv("host.name", f"{service}-host"), _kv("telemetry.sdk.language", "python"),
        ])
        resource_spans.append(ResourceSpans(
            resource=resource,
            scope_spans=[ScopeSpans(scope=InstrumentationScope(name="opentelemetry.instrumentation.flask", version="0.50b0"), spans=spans)],
        ))
    return ExportTraceServiceRequest(resource_spans=resource_spans)


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
