"""The edge rollup job: parent -> child span pairs across services, counted exactly once.

Every `rollup_interval_s` the job takes the closed window [watermark, now - lateness_s) (at most
`rollup_max_window_s` at a time), and inserts into `tracehouse_span_links` every pair whose later
end time falls in that window (query/sql/span_pairs.sql), and into `tracehouse_db_endpoints_1m`
every database call whose enclosing SERVER span ends in it (query/sql/db_endpoint_pairs.sql), and
into `tracehouse_db_repeats` every parent ending in it that ran one statement more than once. Spans are stored at most `lateness_s`
after they end, so by then both spans of such a pair are present, and each pair has exactly one
later end time, so it lands in exactly one window, whichever batch or collector brought each span.

Several query processes on one ClickHouse server may run the job: a window is claimed first
(tracehouse_rollup_windows), the earliest claim wins, and only the winner inserts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from tracehouse.query.rows import fetch
from tracehouse.query.settings import QuerySettings
from tracehouse.query.sqlfiles import sql

log = logging.getLogger(__name__)

JOB = "span_links"
NS_PER_MS = 1_000_000
MAX_NS = 2**63 - 1


@dataclass(frozen=True)
class PairQuery:
    """Bounds of one span-pair query, all in Unix nanoseconds."""

    child_from_ns: int
    child_to_ns: int
    parent_from_ns: int
    parent_to_ns: int
    pair_end_from_ns: int
    pair_end_to_ns: int

    def parameters(self) -> dict[str, int]:
        return {
            "child_from_ns": max(self.child_from_ns, 0),
            "child_to_ns": min(self.child_to_ns, MAX_NS),
            "parent_from_ns": max(self.parent_from_ns, 0),
            "parent_to_ns": min(self.parent_to_ns, MAX_NS),
            "pair_end_from_ns": max(self.pair_end_from_ns, 0),
            "pair_end_to_ns": min(self.pair_end_to_ns, MAX_NS),
        }

    @classmethod
    def for_window(cls, start_ns: int, end_ns: int, max_gap_ns: int) -> PairQuery:
        """Pairs whose later end lies in [start_ns, end_ns): both spans start after start - gap
        and before end (a span that starts at `end` ends after it)."""
        return cls(start_ns - max_gap_ns, end_ns, start_ns - max_gap_ns, end_ns, start_ns, end_ns)


def watermark_ms(client: Client) -> int | None:
    """The end of the last finished window (Unix ms), or None before the first."""
    end_ms, windows = client.query(sql("rollup_watermark"), parameters={"job": JOB}).result_rows[0]
    return int(end_ms) if windows else None


class EdgeRollup:
    """Runs the span-pair rollup in a background thread; `run_once` is the unit of work."""

    def __init__(self, client_factory: Callable[[], Client], settings: QuerySettings, *,
                 clock: Callable[[], float] = time.time, owner: str | None = None) -> None:
        self._client_factory = client_factory
        self._settings = settings
        self._clock = clock
        self.owner = owner or uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self.windows_done = 0
        self.last_error: str | None = None
        self._attempt = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tracehouse-edge-rollup", daemon=True)
        self._thread.start()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stops the thread after the window in progress (idempotent, safe without start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._drop_client()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep running; the store may come back
                self.last_error = str(exc)
                log.warning("edge rollup failed, retrying in %ss: %s", self._settings.rollup_interval_s, exc)
                self._drop_client()
            self._stop.wait(self._settings.rollup_interval_s)

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self._client.close()
            self._client = None

    def client(self) -> Client:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # -- work ----------------------------------------------------------------------------------
    def target_end_ms(self, now_s: float | None = None) -> int:
        """The end of the newest window that is closed: now - lateness, on an interval boundary."""
        now = self._clock() if now_s is None else now_s
        interval_ms = self._settings.rollup_interval_s * 1000
        return int((now - self._settings.lateness_s) * 1000) // interval_ms * interval_ms

    def run_once(self, now_s: float | None = None, client: Client | None = None) -> int:
        """Processes every closed window not yet done; returns how many windows it inserted."""
        client = client or self.client()
        target_ms = self.target_end_ms(now_s)
        start_ms = watermark_ms(client)
        if start_ms is None:
            spans, oldest_ms = client.query(sql("oldest_span")).result_rows[0]
            if not spans:
                return 0
            interval_ms = self._settings.rollup_interval_s * 1000
            start_ms = int(oldest_ms) // interval_ms * interval_ms
        done = 0
        max_window_ms = self._settings.rollup_max_window_s * 1000
        while start_ms < target_ms and not self._stop.is_set():
            end_ms = min(start_ms + max_window_ms, target_ms)
            if not self._claim(client, start_ms, end_ms):
                break
            pairs = PairQuery.for_window(start_ms * NS_PER_MS, end_ms * NS_PER_MS,
                                         self._settings.max_pair_gap_s * 1_000_000_000)
            client.command(sql("rollup_insert_links") + "\n" + sql("span_pairs"), parameters=pairs.parameters())
            client.command(sql("rollup_insert_db_endpoints"), parameters=pairs.parameters())
            client.command(sql("rollup_insert_db_repeats"), parameters={**pairs.parameters(), "min_executions": 2})
            self._record(client, start_ms, end_ms, self._attempt, "done")
            done += 1
            self.windows_done += 1
            start_ms = end_ms
        if start_ms >= target_ms and not self._stop.is_set():  # caught up: the tail is short
            self.snapshot_recent(client)
        return done

    def snapshot_recent(self, client: Client) -> None:
        """Stores the edges past the watermark as they are now (tracehouse_edges_recent), so that
        a busy system's graph need not join the raw tail per request."""
        mark_ms = watermark_ms(client)
        if mark_ms is None:
            return
        from_ns = mark_ms * NS_PER_MS - self._settings.max_pair_gap_s * 1_000_000_000
        pairs = PairQuery(from_ns, MAX_NS, from_ns, MAX_NS, mark_ms * NS_PER_MS, MAX_NS)
        client.command(sql("rollup_insert_recent"),
                       parameters={**pairs.parameters(), "run_id": time.time_ns(), "watermark_ms": mark_ms})

    def _claim(self, client: Client, start_ms: int, end_ms: int) -> bool:
        """Claims [start_ms, end_ms); True when this process is the one to insert it.

        The claim row is inserted with a deduplication token naming the window and the attempt,
        so when several processes claim at once only the first row is stored, and reading it back
        tells every claimant who won. A claim neither done nor renewed within `stale_s` (its owner
        died) is taken over by the next attempt."""
        stale_s = max(10 * self._settings.rollup_interval_s, 600)
        keys = {"job": JOB, "start_ms": start_ms, "stale_s": stale_s}
        rows = fetch(client, sql("rollup_claims"), keys)
        if any(row["state"] == "done" for row in rows):
            return False  # finished by another process since the watermark was read
        claims = [row for row in rows if row["state"] == "claimed"]
        attempt = 0
        if claims:
            latest = claims[-1]
            if not latest["stale"]:
                return bool(latest["owner"] == self.owner)
            attempt = int(latest["attempt"]) + 1
        self._record(client, start_ms, end_ms, attempt, "claimed")
        stored = [row for row in fetch(client, sql("rollup_claims"), keys)
                  if row["state"] == "claimed" and int(row["attempt"]) == attempt]
        self._attempt = attempt
        won = bool(stored) and stored[0]["owner"] == self.owner
        if not won:
            log.info("edge rollup window at %d ms is being processed by another query service", start_ms)
        return won

    def _record(self, client: Client, start_ms: int, end_ms: int, attempt: int, state: str) -> None:
        client.command(
            sql("rollup_claim"),
            parameters={"job": JOB, "start_ms": start_ms, "end_ms": end_ms, "attempt": attempt,
                        "owner": self.owner, "state": state},
            settings={"insert_deduplication_token": f"{JOB}:{start_ms}:{attempt}:{state}"},
        )
