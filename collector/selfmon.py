"""The collector's own metrics, exposed in Prometheus text format on /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class CollectorStats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("tracehouse_receiver_accepted_items", "Spans or metric points received and decoded",
                                ["receiver", "signal"], registry=r)
        self.rejected = Counter("tracehouse_receiver_refused_items",
                                "Spans or points refused (malformed, invalid ids, overload, store down)",
                                ["receiver", "signal", "reason"], registry=r)
        self.stored = Counter("tracehouse_receiver_stored_items", "Spans or metric points acknowledged as stored",
                              ["receiver", "signal"], registry=r)
        self.requests = Counter("tracehouse_receiver_requests", "Export requests by outcome (HTTP-style status)",
                                ["receiver", "status"], registry=r)
        self.stored_rows = Counter("tracehouse_exporter_stored_rows", "Rows inserted into ClickHouse", ["table"], registry=r)
        self.insert_errors = Counter("tracehouse_exporter_insert_failures", "Failed ClickHouse inserts", ["table"], registry=r)
        self.queue_rows = Gauge("tracehouse_queue_rows", "Rows accepted and not yet stored", registry=r)
        self.insert_seconds = Histogram(
            "tracehouse_exporter_insert_duration_seconds", "ClickHouse insert latency", ["table"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_rows = Histogram(
            "tracehouse_exporter_batch_rows", "Rows per ClickHouse insert", ["table"], registry=r,
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000, 50000),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
