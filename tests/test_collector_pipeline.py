"""The batching pipeline against the real engine: flush rules, acknowledgement, and isolation of a
request whose rows the store refuses."""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import urlparse, urlunparse

import pytest

from tests.support import free_port
from tracehouse import storage
from tracehouse.collector.batch import Decoded
from tracehouse.collector.pipeline import Pipeline, StoreUnavailable, Writer
from tracehouse.collector.selfmon import CollectorStats
from tracehouse.collector.settings import CollectorSettings
from tracehouse.collector.traces import TRACE_COLUMNS, TRACES_TABLE


def _dsn_for(client: storage.Client, session_dsn: str) -> str:
    """The session store's DSN, pointed at the test's own database."""
    database = storage.database_of(client)
    parsed = urlparse(session_dsn)
    if parsed.scheme == "chdb":
        return f"{session_dsn}?database={database}"
    return urlunparse(parsed._replace(path="/" + database))


def _request(name: str, rows: int = 1, duration: int = 1000) -> Decoded:
    decoded = Decoded()
    batch = decoded.batch(TRACES_TABLE, TRACE_COLUMNS)
    for _ in range(rows):
        values = [time.time_ns(), os.urandom(16).hex(), os.urandom(8).hex(), "", "", name, "Server", "pipeline-test",
                  {"service.name": "pipeline-test"}, "", "", {}, duration, "Unset", "", [], [], [], [], [], [], []]
        for column, value in zip(batch.data, values, strict=True):
            column.append(value)
    decoded.accepted = rows
    return decoded.encode()


def _garbage(rows: int = 1) -> Decoded:
    """A request whose block the store cannot read (what a corrupted or hostile block would be)."""
    from tracehouse.collector.encode import NativeBlock

    decoded = Decoded(accepted=rows)
    decoded.blocks = [NativeBlock(TRACES_TABLE, TRACE_COLUMNS, rows, b"\x16\x01not a native block at all")]
    return decoded


def _pipeline(dsn: str, **settings: int) -> tuple[Pipeline, CollectorStats]:
    stats = CollectorStats()
    writer = Writer(storage.SchemaOptions(), dsn, workers=2, migrate=False)
    return Pipeline(writer, CollectorSettings(**settings), stats), stats  # type: ignore[arg-type]


def _sample(stats: CollectorStats, name: str, **labels: str) -> float:
    value = stats.registry.get_sample_value(name, labels)
    return value or 0.0


def test_rows_flush_at_the_row_limit_in_one_insert(clickhouse: storage.Client, session_store_dsn: str) -> None:
    pipeline, stats = _pipeline(_dsn_for(clickhouse, session_store_dsn), batch_max_rows=3, batch_max_delay_ms=60_000)

    async def run() -> None:
        await asyncio.gather(*(pipeline.consume(_request(f"op{i}")) for i in range(3)))
        await pipeline.drain()

    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 30  # did not wait for the 60 s delay
    assert _sample(stats, "tracehouse_exporter_batch_rows_count", table=TRACES_TABLE) == 1
    assert clickhouse.command("SELECT count() FROM otel_traces") == 3


def test_rows_flush_after_the_delay(clickhouse: storage.Client, session_store_dsn: str) -> None:
    pipeline, _ = _pipeline(_dsn_for(clickhouse, session_store_dsn), batch_max_rows=1000, batch_max_delay_ms=300)

    async def run() -> float:
        started = time.monotonic()
        await pipeline.consume(_request("lonely"))
        waited = time.monotonic() - started
        await pipeline.drain()
        return waited

    assert asyncio.run(run()) >= 0.3
    assert clickhouse.command("SELECT count() FROM otel_traces WHERE SpanName = 'lonely'") == 1


def test_a_request_the_store_refuses_does_not_take_others_down(clickhouse: storage.Client,
                                                               session_store_dsn: str) -> None:
    pipeline, _ = _pipeline(_dsn_for(clickhouse, session_store_dsn), batch_max_rows=1000, batch_max_delay_ms=200)

    async def run() -> list[BaseException | None]:
        results = await asyncio.gather(pipeline.consume(_request("fine", rows=5)),
                                       pipeline.consume(_garbage()),
                                       pipeline.consume(_request("also fine", rows=2)),
                                       return_exceptions=True)
        await pipeline.drain()
        return list(results)

    fine, poison, also_fine = asyncio.run(run())
    assert fine is None and also_fine is None
    assert isinstance(poison, StoreUnavailable)
    names = dict(clickhouse.query("SELECT SpanName, count() FROM otel_traces GROUP BY SpanName").result_rows)
    assert names == {"fine": 5, "also fine": 2}


def test_unreachable_store_refuses_everything_once(clickhouse: storage.Client) -> None:
    pipeline, stats = _pipeline(f"http://127.0.0.1:{free_port()}/default", batch_max_rows=1000, batch_max_delay_ms=100)

    async def run() -> list[BaseException | None]:
        results = await asyncio.gather(*(pipeline.consume(_request(f"r{i}")) for i in range(4)),
                                       return_exceptions=True)
        await pipeline.drain()
        return list(results)

    results = asyncio.run(run())
    assert all(isinstance(result, StoreUnavailable) for result in results)
    # One failed insert for the merged batch; no per-request retries against a store that is not there.
    assert _sample(stats, "tracehouse_exporter_insert_failures_total", table=TRACES_TABLE) == 1


def test_draining_refuses_new_data(clickhouse: storage.Client, session_store_dsn: str) -> None:
    from tracehouse.collector.pipeline import ShuttingDown

    pipeline, _ = _pipeline(_dsn_for(clickhouse, session_store_dsn))

    async def run() -> None:
        await pipeline.drain()
        await pipeline.consume(_request("late"))

    with pytest.raises(ShuttingDown):
        asyncio.run(run())
