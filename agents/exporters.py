"""SDK exporters that encode with the OpenTelemetry SDK's own OTLP encoders and deliver through the
dispatcher (load balancing, failover, retry). Span statements are sanitized here, off the
application's request path."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tracehouse.agents.dispatch import Dispatcher
from tracehouse.agents.sanitize import sanitize_statement

STATEMENT_KEYS = ("db.statement", "db.query.text")
ENCODE_SLICE = 32  # spans encoded between two GIL releases


def sanitized_span(span: ReadableSpan) -> ReadableSpan:
    """`span` itself, or a copy whose statement attributes have their literals stripped."""
    attributes = span.attributes
    if not attributes or not any(key in attributes for key in STATEMENT_KEYS):
        return span
    system = attributes.get("db.system") or attributes.get("db.system.name")
    changes: dict[str, str] = {}
    for key in STATEMENT_KEYS:
        value = attributes.get(key)
        if isinstance(value, str):
            stripped = sanitize_statement(value, str(system) if system else None)
            if stripped != value:
                changes[key] = stripped
    if not changes:
        return span  # already parameterized: nothing to hide, no copy
    cleaned: dict[str, Any] = {**attributes, **changes}
    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource,
        attributes=cleaned, events=span.events, links=span.links, kind=span.kind, status=span.status,
        start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class TraceHouseSpanExporter(SpanExporter):
    def __init__(self, dispatcher: Dispatcher, *, deadline_s: float, sanitize: bool = True) -> None:
        self._dispatcher = dispatcher
        self._deadline_s = deadline_s
        self._sanitize = sanitize

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.export_until(spans, time.monotonic() + self._deadline_s)

    def export_until(self, spans: Sequence[ReadableSpan], deadline: float) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            body = self._encode(spans)
        except Exception:  # noqa: BLE001 - an unencodable batch is dropped, never raised into the app
            self._dispatcher.stats.dropped["traces"] = self._dispatcher.stats.dropped.get("traces", 0) + 1
            return SpanExportResult.FAILURE
        ok = self._dispatcher.deliver("traces", body, deadline)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def _encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The OTLP request, encoded a slice at a time with a pause for the application's threads in
        between: encoding holds the GIL (some 30 µs a span), and a 512-span batch in one go would stall
        a request thread for up to the interpreter's 5 ms switch interval. Serialized OTLP requests
        concatenate into one valid request (protobuf merges repeated fields)."""
        parts: list[bytes] = []
        for start in range(0, len(spans), ENCODE_SLICE):
            chunk = spans[start:start + ENCODE_SLICE]
            if self._sanitize:
                chunk = [sanitized_span(span) for span in chunk]
            parts.append(encode_spans(chunk).SerializeToString())
            time.sleep(0)  # releases the GIL: a waiting request thread runs now, not in 5 ms
        return b"".join(parts)

    def shutdown(self) -> None:
        pass  # the dispatcher is shared with metrics and closed once by the agent

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class TraceHouseMetricExporter(MetricExporter):
    """Cumulative temporality (the SDK default), so a dropped export loses no counts."""

    def __init__(self, dispatcher: Dispatcher, *, deadline_s: float) -> None:
        super().__init__()
        self._dispatcher = dispatcher
        self._deadline_s = deadline_s

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        deadline = time.monotonic() + min(self._deadline_s, timeout_millis / 1000.0)
        try:
            body = encode_metrics(metrics_data).SerializeToString()
        except Exception:  # noqa: BLE001
            return MetricExportResult.FAILURE
        ok = self._dispatcher.deliver("metrics", body, deadline)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass  # the dispatcher is shared with spans and closed once by the agent
