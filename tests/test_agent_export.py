"""The agent's export path against real local OTLP/HTTP peers: failover, retry, backoff, bounded buffer.

The peers are real HTTP servers (tests/apps/otlp_peer.py) answering scripted statuses; the client
side is the real OpenTelemetry SDK with the agent's processor, exporter and dispatcher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.apps.otlp_peer import OtlpPeer, running_peer
from tests.support import free_port, wait_for
from tracehouse.agents.dispatch import Dispatcher, EndpointPool
from tracehouse.agents.exporters import TraceHouseSpanExporter
from tracehouse.agents.processor import BufferedSpanProcessor
from tracehouse.agents.transport import HttpTransport


@contextmanager
def pipeline(urls: Sequence[str], *, max_queue_size: int = 2048, cooldown_s: float = 30.0,
             request_timeout_s: float = 5.0, deadline_s: float = 20.0, max_backoff_s: float = 10.0,
             batch_size: int = 512) -> Iterator[tuple[TracerProvider, BufferedSpanProcessor, Dispatcher]]:
    pool = EndpointPool([HttpTransport(url) for url in urls], cooldown_s=cooldown_s, max_backoff_s=max_backoff_s)
    dispatcher = Dispatcher(pool, request_timeout_s=request_timeout_s)
    processor = BufferedSpanProcessor(TraceHouseSpanExporter(dispatcher, deadline_s=deadline_s),
                                      max_queue_size=max_queue_size, max_export_batch_size=min(batch_size, max_queue_size),
                                      schedule_delay_s=0.05, export_deadline_s=deadline_s)
    provider = TracerProvider(resource=Resource({"service.name": "export-test"}), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    try:
        yield provider, processor, dispatcher
    finally:
        dispatcher.limit_deadline(time.monotonic() + 5)
        provider.shutdown()
        dispatcher.close()


def make_spans(provider: TracerProvider, count: int) -> set[bytes]:
    tracer = provider.get_tracer("test")
    ids = set()
    for index in range(count):
        with tracer.start_as_current_span(f"op-{index}") as span:
            ids.add(span.get_span_context().span_id.to_bytes(8, "big"))
    return ids


def unused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused


def test_refused_endpoint_fails_over_and_no_span_is_lost() -> None:
    with running_peer() as good, pipeline([unused_url(), good.url]) as (provider, processor, dispatcher):
        sent = set()
        for _ in range(5):
            sent |= make_spans(provider, 20)
            assert processor.force_flush(10_000)
        assert good.span_ids() == sent
        assert dispatcher.pool.endpoints[0].failures >= 1  # the dead one was tried at least once...
        assert dispatcher.pool.endpoints[1].sent >= 5  # ...and everything went to the live one
        assert processor.failed_spans == 0 and processor.dropped_spans == 0


def test_timing_out_endpoint_is_cooled_down() -> None:
    slow = OtlpPeer(delay_s=2.0)
    with running_peer(slow), running_peer() as fast, \
            pipeline([slow.url, fast.url], request_timeout_s=0.5, cooldown_s=60) as (provider, processor, dispatcher):
        sent = set()
        started = time.monotonic()
        for _ in range(4):
            sent |= make_spans(provider, 5)
            assert processor.force_flush(10_000)
        assert fast.span_ids() == sent
        slow_endpoint = dispatcher.pool.endpoints[0]
        assert slow_endpoint.failures <= 2  # timed out, then skipped for its cool-down
        assert slow_endpoint.unavailable_until > time.monotonic() or slow_endpoint.failures == 0
        assert time.monotonic() - started < 6


def test_429_backs_off_for_retry_after_then_uses_the_endpoint_again() -> None:
    peer = OtlpPeer(script=[(429, "1"), (429, "1")])
    with running_peer(peer), pipeline([peer.url]) as (provider, processor, dispatcher):
        sent = make_spans(provider, 10)
        assert processor.force_flush(15_000)
        attempts = [r for r in peer.received if r.path == "/v1/traces"]
        assert [r.status for r in attempts] == [429, 429, 200]
        gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:], strict=False)]
        assert all(gap >= 0.95 for gap in gaps), gaps  # Retry-After: 1 honoured each time
        assert peer.span_ids() == sent
        more = make_spans(provider, 3)
        assert processor.force_flush(5_000)
        assert peer.span_ids() == sent | more  # used again afterwards
        assert dispatcher.stats.retries == 2


def test_503_without_retry_after_backs_off_exponentially() -> None:
    peer = OtlpPeer(script=[(503, None), (503, None)])
    with running_peer(peer), pipeline([peer.url]) as (provider, processor, _dispatcher):
        sent = make_spans(provider, 4)
        assert processor.force_flush(15_000)
        attempts = [r for r in peer.received if r.path == "/v1/traces"]
        assert [r.status for r in attempts] == [503, 503, 200]
        first_gap, second_gap = attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at
        assert first_gap >= 0.2 and second_gap >= 0.45  # 0.5 s, then 1 s, each with up to 50 % jitter off
        assert peer.span_ids() == sent


def test_bad_request_is_dropped_without_retrying() -> None:
    peer = OtlpPeer(default_status=400)
    with running_peer(peer), pipeline([peer.url]) as (provider, processor, dispatcher):
        make_spans(provider, 3)
        processor.force_flush(5_000)
        assert len([r for r in peer.received if r.path == "/v1/traces"]) == 1
        assert processor.failed_spans == 3
        assert dispatcher.stats.dropped == {"traces": 1}


def test_full_buffer_drops_oldest_counted_and_never_blocks_the_app() -> None:
    # The only collector is down: the worker holds one batch while retrying it, the rest piles up.
    with pipeline([unused_url()], max_queue_size=50, batch_size=50, deadline_s=60) as (provider, processor, _d):
        started = time.perf_counter()
        make_spans(provider, 1000)
        elapsed_s = time.perf_counter() - started
        assert elapsed_s < 2.0  # the dead collector never slowed the application down
        queued = list(processor._queue)
        assert [span.name for span in queued] == [f"op-{index}" for index in range(950, 1000)]  # newest kept
        in_retry = 1000 - 50 - processor.dropped_spans  # the batch the worker is retrying
        assert 0 <= in_retry <= 50 and processor.failed_spans == 0


def test_spans_buffered_while_all_collectors_are_down_arrive_when_one_returns() -> None:
    port = free_port()
    with pipeline([f"http://127.0.0.1:{port}"], deadline_s=30, cooldown_s=0.5) as (provider, processor, dispatcher):
        sent = make_spans(provider, 25)
        wait_for(lambda: dispatcher.pool.endpoints[0].failures >= 2, timeout_s=10,
                 message="the exporter to be retrying against the closed port")
        with running_peer(port=port) as peer:
            wait_for(lambda: peer.span_ids() == sent, timeout_s=15, message="buffered spans to be delivered")
        assert processor.dropped_spans == 0


def test_load_is_spread_over_healthy_endpoints() -> None:
    with running_peer() as first, running_peer() as second, \
            pipeline([first.url, second.url]) as (provider, processor, _dispatcher):
        def produce() -> None:
            for _ in range(10):
                make_spans(provider, 5)
                processor.force_flush(5_000)

        threads = [threading.Thread(target=produce) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        processor.force_flush(5_000)
        assert len(first.accepted()) >= 3 and len(second.accepted()) >= 3
        assert len(first.span_ids() | second.span_ids()) == 100
