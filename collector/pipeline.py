"""Batching and acknowledged writes: decoded requests -> per-table batches -> ClickHouse inserts.

A request's `consume()` returns only once every row of it is in ClickHouse, so a client told
"stored" never loses data to a collector crash. Batches flush at `batch_max_rows` rows or
`batch_max_delay_ms` after their first row. Rows accepted but not yet stored are bounded by
`queue_max_rows`; past it new requests are refused at once (the receivers answer 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from tracehouse import storage
from tracehouse.collector.batch import Decoded
from tracehouse.collector.encode import NativeBlock
from tracehouse.collector.selfmon import CollectorStats
from tracehouse.collector.settings import CollectorSettings

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """More rows are waiting for ClickHouse than the queue bound allows; retry later (429)."""


class StoreUnavailable(Exception):
    """ClickHouse could not take the rows; nothing of the request was stored; retry later (503)."""


class ShuttingDown(Exception):
    """The collector is draining and takes no new data (503)."""


class StoreConnectError(Exception):
    """No connection to the store (or no schema in it): no batch can go in, whatever its rows."""


class Writer:
    """Inserts column batches, one ClickHouse client per worker thread.

    Until the schema has been applied (the store may be down at start), each insert first tries to
    migrate, so a collector started before its store catches up by itself.
    """

    def __init__(self, schema: storage.SchemaOptions, dsn: str, workers: int, migrate: bool = True) -> None:
        self.dsn = dsn
        self.schema = schema
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clickhouse-insert")
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()  # guards _clients
        self._schema_lock = threading.Lock()
        self._schema_ready = not migrate

    @property
    def schema_ready(self) -> bool:
        return self._schema_ready

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = storage.connect(self.dsn)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def drop_client(self) -> None:
        """Forgets this thread's client after a failure, so the next insert reconnects."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
            with contextlib.suppress(Exception):  # a broken client may not close cleanly
                client.close()

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                storage.migrate(self.client(), self.schema)
                self._schema_ready = True

    def insert(self, block: NativeBlock) -> None:
        """Runs in a worker thread."""
        try:
            try:
                self.ensure_schema()
                client = self.client()
            except Exception as exc:
                raise StoreConnectError(str(exc)) from exc
            client.raw_insert(block.table, column_names=list(block.columns), insert_block=block.data, fmt="Native")
        except Exception:
            if not storage.is_embedded(self.dsn):
                self.drop_client()
            raise

    def ping(self) -> bool:
        try:
            client = storage.connect(self.dsn, connect_timeout_s=2, send_receive_timeout_s=5)
        except Exception:  # noqa: BLE001 - unreachable
            return False
        try:
            return storage.ping(client)
        finally:
            if not storage.is_embedded(self.dsn):
                client.close()

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        with self._lock:
            for client in self._clients:
                with contextlib.suppress(Exception):
                    client.close()
            self._clients.clear()


@dataclass
class _Waiting:
    block: NativeBlock
    done: asyncio.Future[None]


@dataclass
class _TableQueue:
    table: str
    waiting: list[_Waiting] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


class Pipeline:
    """Decoded requests in; acknowledged inserts out. Lives on the event loop; inserts run on the
    writer's threads so decoding of the next requests goes on meanwhile."""

    def __init__(self, writer: Writer, settings: CollectorSettings, stats: CollectorStats) -> None:
        self.writer = writer
        self.settings = settings
        self.stats = stats
        self._queues: dict[str, _TableQueue] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._queued_rows = 0
        self._closed = False

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    async def consume(self, decoded: Decoded) -> None:
        """Stores every batch of `decoded`; raises Overloaded, StoreUnavailable or ShuttingDown."""
        if self._closed:
            raise ShuttingDown("the collector is shutting down")
        blocks = [b for b in decoded.blocks if b.rows]
        rows = sum(b.rows for b in blocks)
        if not rows:
            return
        if self._queued_rows + rows > self.settings.queue_max_rows and self._queued_rows > 0:
            raise Overloaded(f"{self._queued_rows} rows are waiting to be stored (limit {self.settings.queue_max_rows})")
        self._queued_rows += rows
        self.stats.queue_rows.set(self._queued_rows)
        try:
            await asyncio.gather(*(self._enqueue(b) for b in blocks))
        finally:
            self._queued_rows -= rows
            self.stats.queue_rows.set(self._queued_rows)

    def _enqueue(self, block: NativeBlock) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(block.table)
        if queue is None:
            queue = self._queues[block.table] = _TableQueue(block.table)
        done: asyncio.Future[None] = loop.create_future()
        queue.waiting.append(_Waiting(block, done))
        queue.rows += block.rows
        if queue.rows >= self.settings.batch_max_rows:
            self._flush(queue)
        elif queue.timer is None:
            queue.timer = loop.call_later(self.settings.batch_max_delay_ms / 1000, self._flush, queue)
        return done

    def _flush(self, queue: _TableQueue) -> None:
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        if not queue.waiting:
            return
        waiting, queue.waiting, queue.rows = queue.waiting, [], 0
        task = asyncio.get_running_loop().create_task(self._store(waiting))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _store(self, waiting: list[_Waiting]) -> None:
        # A Native stream is a sequence of blocks: the requests' blocks together make one insert.
        first = waiting[0].block
        merged = NativeBlock(first.table, first.columns, sum(item.block.rows for item in waiting),
                             b"".join(item.block.data for item in waiting))
        error, cause = await self._insert(merged)
        if error is not None and len(waiting) > 1 and not isinstance(cause, StoreConnectError | OperationalError):
            # The store is up but refused the batch: one request's rows may be the reason, so store
            # each request on its own; only the culprit is refused and the others' data goes in.
            for item in waiting:
                item_error, _ = await self._insert(item.block)
                _settle(item.done, item_error)
            return
        for item in waiting:
            _settle(item.done, error)

    async def _insert(self, batch: NativeBlock) -> tuple[StoreUnavailable | None, Exception | None]:
        """None, or the error for the clients (always retryable) and its cause."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            await loop.run_in_executor(self.writer.executor, self.writer.insert, batch)
        except Exception as exc:  # noqa: BLE001 - every store failure becomes a retryable 503
            self.stats.insert_errors.labels(table=batch.table).inc()
            log.warning("insert of %d rows into %s failed: %s", batch.rows, batch.table, exc)
            return StoreUnavailable(f"could not store {batch.rows} rows in {batch.table}: {storage.one_line(exc)}"), exc
        self.stats.insert_seconds.labels(table=batch.table).observe(time.perf_counter() - started)
        self.stats.batch_rows.labels(table=batch.table).observe(batch.rows)
        self.stats.stored_rows.labels(table=batch.table).inc(batch.rows)
        return None, None

    async def drain(self) -> None:
        """Flushes every queue and waits until every insert has finished (idempotent)."""
        self._closed = True
        while True:
            for queue in self._queues.values():
                self._flush(queue)
            if not self._inflight:
                return
            await asyncio.gather(*list(self._inflight), return_exceptions=True)


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
