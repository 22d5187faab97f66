"""Collector settings (TRACEHOUSE_<FIELD> environment variables, [collector] in the TOML file)."""

from __future__ import annotations

from dataclasses import dataclass

from tracehouse.config import check_port, require


@dataclass(frozen=True)
class CollectorSettings:
    host: str = "0.0.0.0"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    zipkin_port: int = 9411
    batch_max_rows: int = 10_000  # flush a table's batch at this many rows ...
    batch_max_delay_ms: int = 200  # ... or this long after its first row arrived
    queue_max_rows: int = 200_000  # rows accepted but not yet stored; beyond it clients get 429
    max_body_bytes: int = 16 * 1024 * 1024  # per request, also after gunzip; beyond it 413
    max_attributes_per_span: int = 1024
    max_concurrent_requests: int = 256  # per receiver; bodies in memory are bounded by this x max_body_bytes
    insert_workers: int = 2
    decode_workers: int = -1  # processes decoding request bodies; 0 decodes on the event loop, -1 one per core
    insert_timeout_s: float = 30.0
    retry_after_s: int = 2  # Retry-After sent with 429 / 503

    def __post_init__(self) -> None:
        for name in ("otlp_grpc_port", "otlp_http_port", "zipkin_port"):
            check_port(name, getattr(self, name))
        require(self.batch_max_rows > 0, "batch_max_rows must be positive")
        require(self.batch_max_delay_ms > 0, "batch_max_delay_ms must be positive")
        require(self.queue_max_rows >= self.batch_max_rows, "queue_max_rows must be at least batch_max_rows")
        require(self.max_body_bytes > 0, "max_body_bytes must be positive")
        require(self.max_attributes_per_span > 0, "max_attributes_per_span must be positive")
        require(self.max_concurrent_requests > 0, "max_concurrent_requests must be positive")
        require(1 <= self.insert_workers <= 32, "insert_workers must be between 1 and 32")
        require(-1 <= self.decode_workers <= 64, "decode_workers must be -1 (one per core), 0 (none) or up to 64")
