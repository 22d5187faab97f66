"""What every receiver shares: the sample type, the metric catalogue entry, and up/down bookkeeping."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("tracehouse.agents.middleware")

InstrumentKind = Literal["gauge", "counter", "updowncounter"]

UP_METRIC = "up"


@dataclass(frozen=True)
class MetricSpec:
    """One metric a receiver may report: its OTLP name, instrument kind, unit and description."""

    name: str
    kind: InstrumentKind
    unit: str
    description: str


@dataclass(frozen=True)
class Sample:
    """One value read from a middleware: the metric name, the value and its point attributes."""

    name: str
    value: float
    attributes: Mapping[str, str] = field(default_factory=dict)


class ScrapeError(Exception):
    """The middleware could not be read (down, refused, bad credentials, unexpected answer)."""


class Receiver:
    """Reads one middleware instance. Subclasses set `system`, `catalogue` and implement
    `_scrape()`; they connect lazily and drop their connection when a scrape fails, so the next
    scrape reconnects and a middleware that comes back is picked up again."""

    system: str = ""
    catalogue: Sequence[MetricSpec] = ()
    # How clients' spans name this kind of middleware: (attribute, value), e.g. ("db.system", "redis").
    client_system: tuple[str, str] | None = None

    def __init__(self, name: str, address: str, port: int) -> None:
        self.name = name
        self.address = address
        self.port = port

    def _scrape(self) -> list[Sample]:
        raise NotImplementedError

    def scrape(self) -> list[Sample]:
        """The current samples; raises ScrapeError when the middleware cannot be read."""
        try:
            return self._scrape()
        except ScrapeError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - any client error means "cannot read it now"
            self.close()
            raise ScrapeError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Drops the connection (idempotent)."""

    def resource_attributes(self) -> dict[str, str | int]:
        attributes: dict[str, str | int] = {
            "service.name": self.name,
            "server.address": self.address,
            "server.port": self.port,
            "tracehouse.middleware.system": self.system,
        }
        if self.client_system:
            attributes[self.client_system[0]] = self.client_system[1]
        return attributes


@dataclass
class Snapshot:
    up: bool
    samples: list[Sample]
    taken_at_s: float
    error: str = ""


class ScrapeState:
    """The latest scrape of one receiver, refreshed at most once per `max_age_s`.

    The metric callbacks of one collection all call `current()`; the first one scrapes and the
    rest reuse that snapshot, so one export cycle costs one round trip to the middleware.
    Transitions are logged once: a warning when it goes down, an info line when it is back.
    """

    def __init__(self, receiver: Receiver, max_age_s: float) -> None:
        self.receiver = receiver
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._was_up: bool | None = None
        self.scrapes = 0
        self.failures = 0

    def current(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._snapshot.taken_at_s >= self.max_age_s:
                self._snapshot = self._take(now)
            return self._snapshot

    def refresh(self) -> Snapshot:
        """Scrapes now, whatever the age of the last snapshot."""
        with self._lock:
            self._snapshot = self._take(time.monotonic())
            return self._snapshot

    def _take(self, now: float) -> Snapshot:
        self.scrapes += 1
        receiver = self.receiver
        where = f"{receiver.system} {receiver.name} at {receiver.address}:{receiver.port}"
        try:
            samples = receiver.scrape()
        except ScrapeError as exc:
            self.failures += 1
            if self._was_up is not False:
                log.warning("%s is down: %s", where, exc)
            self._was_up = False
            return Snapshot(False, [], now, str(exc))
        if self._was_up is False:
            log.info("%s is back up", where)
        elif self._was_up is None:
            log.info("%s is up", where)
        self._was_up = True
        return Snapshot(True, samples, now)

    def close(self) -> None:
        with self._lock:
            self.receiver.close()


def number(raw: object) -> float | None:
    """A status value as a float, or None when it is not a number (e.g. 'ON', '')."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(str(raw).strip())
    except ValueError:
        return None


def ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole
