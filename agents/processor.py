"""A batching span processor with a bounded buffer that drops the oldest spans, counted.

Same contract as the SDK's BatchSpanProcessor (which also drops oldest when its deque is full), plus:
a drop counter the agent reports as a metric, a force_flush/shutdown that honour their timeout, and
an export deadline handed to the exporter so a shutdown never waits on a dead collector for long.
`on_end` is O(1) and never blocks or raises: the application's request path only appends to a deque.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

logger = logging.getLogger("tracehouse.agents")


class BufferedSpanProcessor(SpanProcessor):
    def __init__(self, exporter: Any, *, max_queue_size: int = 2048, max_export_batch_size: int = 512,
                 schedule_delay_s: float = 1.0, export_deadline_s: float = 30.0) -> None:
        self._exporter = exporter
        self.max_queue_size = max_queue_size
        self.max_export_batch_size = max_export_batch_size
        self.schedule_delay_s = schedule_delay_s
        self.export_deadline_s = export_deadline_s
        self.dropped_spans = 0
        self.exported_spans = 0
        self.failed_spans = 0
        self._queue: collections.deque[ReadableSpan] = collections.deque(maxlen=max_queue_size)
        self._shutdown = False
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _start_worker(self) -> None:
        self._pid = os.getpid()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="TraceHouseSpanExport", daemon=True)
        self._worker.start()

    def _after_fork(self) -> None:
        if self._shutdown:
            return
        # Spans still queued belong to the parent, which exports them; the child starts empty.
        self._queue.clear()
        self.dropped_spans = self.exported_spans = self.failed_spans = 0
        self._start_worker()

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown or not span.context or not span.context.trace_flags.sampled:
            return
        if self._pid != os.getpid():  # forked without the at-fork hooks having run
            self._after_fork()
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self.dropped_spans += 1  # the deque discards the oldest span on append
        queue.append(span)
        if len(queue) >= self.max_export_batch_size and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while not self._shutdown:
            self._wake.wait(self.schedule_delay_s)
            self._wake.clear()
            if self._shutdown:
                break
            self._drain(time.monotonic() + self.export_deadline_s, whole_queue=False)

    def _drain(self, deadline: float, *, whole_queue: bool) -> bool:
        """Exports queued spans batch by batch; False if it ran out of time."""
        lock = self._export_lock
        if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            while self._queue:
                if time.monotonic() >= deadline:
                    return False
                batch = self._take_batch()
                batch_deadline = min(deadline, time.monotonic() + self.export_deadline_s)
                try:
                    result = self._export(batch, batch_deadline)
                except Exception:  # noqa: BLE001 - never let the worker die
                    logger.exception("tracehouse agent: span export failed")
                    result = False
                if result:
                    self.exported_spans += len(batch)
                else:
                    self.failed_spans += len(batch)
                if not whole_queue and len(self._queue) < self.max_export_batch_size:
                    break
            return True
        finally:
            detach(token)
            lock.release()

    def _take_batch(self) -> list[ReadableSpan]:
        batch: list[ReadableSpan] = []
        queue = self._queue
        while queue and len(batch) < self.max_export_batch_size:
            try:
                batch.append(queue.popleft())
            except IndexError:
                break
        return batch

    def _export(self, batch: list[ReadableSpan], deadline: float) -> bool:
        export_until = getattr(self._exporter, "export_until", None)
        result = export_until(batch, deadline) if export_until is not None else self._exporter.export(batch)
        return getattr(result, "name", "") == "SUCCESS"

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._shutdown:
            return True
        return self._drain(time.monotonic() + timeout_millis / 1000.0, whole_queue=True)

    def shutdown(self, timeout_millis: int = 30000) -> None:
        if self._shutdown:
            return
        deadline = time.monotonic() + timeout_millis / 1000.0
        self._shutdown = True
        self._wake.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        self._drain(deadline, whole_queue=True)
        self._exporter.shutdown()

    @property
    def queued_spans(self) -> int:
        return len(self._queue)
