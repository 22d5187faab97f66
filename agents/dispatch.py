"""Client-side load balancing, failover and retry over one or several collector endpoints.

- Each payload goes to the available endpoint with the fewest requests in flight (spans and
  metrics are sent from different threads and share the pool); ties are broken round-robin from a
  random starting endpoint, so a fleet of processes does not stampede the first collector.
- An endpoint that refuses or times out is taken out of rotation (0.5 s, or 2 s after a timeout,
  doubling per consecutive failure up to `cooldown_s`) and the payload goes to the next one at once.
- 429/503-style answers back that endpoint off for its Retry-After (or an exponential backoff with
  jitter), capped at `max_backoff_s`.
- When every endpoint is out, the sender waits for the first to return, until the payload's
  deadline; then the payload is dropped and counted. Nothing here ever raises to the caller.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tracehouse.agents.transport import Outcome, SendResult, Transport

logger = logging.getLogger("tracehouse.agents")
Clock = Callable[[], float]


@dataclass
class Endpoint:
    transport: Transport
    in_flight: int = 0
    unavailable_until: float = 0.0  # monotonic seconds
    consecutive_failures: int = 0
    sent: int = 0
    failures: int = 0

    @property
    def url(self) -> str:
        return self.transport.url


@dataclass
class DispatchStats:
    sent: dict[str, int] = field(default_factory=dict)  # payloads accepted, per signal
    dropped: dict[str, int] = field(default_factory=dict)  # payloads given up, per signal
    retries: int = 0
    failovers: int = 0


class EndpointPool:
    def __init__(self, transports: Sequence[Transport], *, cooldown_s: float, max_backoff_s: float,
                 clock: Clock = time.monotonic, rng: random.Random | None = None) -> None:
        if not transports:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = [Endpoint(t) for t in transports]
        self.cooldown_s = cooldown_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._cursor = self._rng.randrange(len(self.endpoints))
        self._lock = threading.Lock()

    def acquire(self) -> tuple[Endpoint | None, float]:
        """The endpoint to use now (its in-flight count taken), or None and the seconds until one returns."""
        with self._lock:
            now = self._clock()
            count = len(self.endpoints)
            best: Endpoint | None = None
            best_index = 0
            for offset in range(count):
                index = (self._cursor + offset) % count
                endpoint = self.endpoints[index]
                if endpoint.unavailable_until > now:
                    continue
                if best is None or endpoint.in_flight < best.in_flight:
                    best, best_index = endpoint, index
            if best is None:
                return None, max(0.0, min(e.unavailable_until for e in self.endpoints) - now)
            self._cursor = (best_index + 1) % count
            best.in_flight += 1
            return best, 0.0

    def release(self, endpoint: Endpoint, result: SendResult) -> None:
        with self._lock:
            endpoint.in_flight = max(0, endpoint.in_flight - 1)
            if result.outcome is Outcome.OK:
                endpoint.consecutive_failures = 0
                endpoint.sent += 1
                return
            if result.outcome is Outcome.REJECTED:
                return  # the payload was bad, not the endpoint
            endpoint.failures += 1
            endpoint.consecutive_failures += 1
            if result.retry_after_s is not None:
                wait_s = min(result.retry_after_s, self.max_backoff_s)
            elif result.outcome is Outcome.UNREACHABLE:
                # Doubling per consecutive failure up to the cool-down: a restarting collector is back in
                # rotation soon, a dead one is probed rarely. A timeout costs a whole request, so it
                # starts longer.
                first_s = 2.0 if "timed out" in result.detail else 0.5
                wait_s = min(self.cooldown_s, first_s * 2 ** (endpoint.consecutive_failures - 1))
            else:
                base = min(self.max_backoff_s, 0.5 * 2 ** (endpoint.consecutive_failures - 1))
                wait_s = base * (0.5 + self._rng.random() / 2)  # jitter: a fleet must not retry in step
            endpoint.unavailable_until = max(endpoint.unavailable_until, self._clock() + wait_s)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        self._cursor = self._rng.randrange(len(self.endpoints))
        for endpoint in self.endpoints:
            endpoint.in_flight = 0
            endpoint.transport.after_fork()

    def close(self) -> None:
        for endpoint in self.endpoints:
            with contextlib.suppress(Exception):  # closing is best effort
                endpoint.transport.close()


class Dispatcher:
    """Delivers one encoded payload through the pool, retrying until it is accepted or its deadline."""

    def __init__(self, pool: EndpointPool, *, request_timeout_s: float, clock: Clock = time.monotonic) -> None:
        self.pool = pool
        self.request_timeout_s = request_timeout_s
        self.stats = DispatchStats()
        self._clock = clock
        self._closed = threading.Event()
        self._last_warning = 0.0
        self._stats_lock = threading.Lock()
        self._latest_deadline = float("inf")  # set at shutdown: no payload is retried past it

    def deliver(self, signal: str, body: bytes, deadline: float) -> bool:
        """True once an endpoint accepted `body`; False (counted as dropped) at the deadline."""
        previous: Endpoint | None = None
        last = SendResult(Outcome.UNREACHABLE, "no endpoint available")
        while True:
            now = self._clock()
            deadline = min(deadline, self._latest_deadline)
            endpoint, wait_s = self.pool.acquire()
            if endpoint is None:
                if now + wait_s >= deadline or self._closed.is_set():
                    break
                self._closed.wait(min(wait_s, 0.25))  # short steps: a shutdown may move the deadline
                continue
            if previous is not None:
                with self._stats_lock:
                    self.stats.retries += 1
                    if endpoint is not previous:
                        self.stats.failovers += 1
            timeout_s = max(0.05, min(self.request_timeout_s, deadline - now))
            try:
                last = endpoint.transport.send(signal, body, timeout_s)
            except Exception as exc:  # noqa: BLE001 - a transport bug must not reach the application
                last = SendResult(Outcome.UNREACHABLE, f"{type(exc).__name__}: {exc}")
            self.pool.release(endpoint, last)
            if last.outcome is Outcome.OK:
                with self._stats_lock:
                    self.stats.sent[signal] = self.stats.sent.get(signal, 0) + 1
                return True
            if last.outcome is Outcome.REJECTED:
                break
            previous = endpoint
            if self._clock() >= deadline:
                break
        with self._stats_lock:
            self.stats.dropped[signal] = self.stats.dropped.get(signal, 0) + 1
        self._warn(f"dropped a {signal} payload: {last.detail}")
        return False

    def _warn(self, message: str) -> None:
        now = self._clock()
        if now - self._last_warning >= 60 or self._last_warning == 0.0:
            self._last_warning = now
            logger.warning("tracehouse agent %s", message)

    def limit_deadline(self, deadline: float) -> None:
        """From now on no payload is retried past `deadline` (monotonic): the shutdown's own deadline."""
        self._latest_deadline = min(self._latest_deadline, deadline)

    def close(self) -> None:
        """Stops waiting for endpoints to return (pending payloads then fail fast)."""
        self._closed.set()
        self.pool.close()

    def after_fork(self) -> None:
        self._stats_lock = threading.Lock()
        self._closed = threading.Event()
        self.stats = DispatchStats()
        self.pool.after_fork()
