"""What every receiver shares: the sample type, the metric catalogue entry, and up/down bookkeeping."""

from __future__ import annotations

import logging
import socket
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
        aliases = address_aliases(self.address)
        if aliases:
            attributes["tracehouse.middleware.addresses"] = ",".join(aliases)
        return attributes


def address_aliases(host: str) -> list[str]:
    """The addresses `host` resolves to (once, at start-up), so that clients whose spans name the
    middleware by IP address are matched to an instance configured by host name, and back."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found} - {host})


@dataclass
class Snapshot:
    up: bool
    samples: list[Sample]
    taken_at_s: float
    error: str = ""


class ScrapeState:
    """The latest scrape of one receiver. `refresh()` scrapes (from a poller thread, or a test);
    metric callbacks read `latest()`, which never blocks on the middleware, so a slow or dead
    middleware cannot hold up the export of `up` = 0.

    Transitions are logged once: a warning when it goes down, an info line when it is back.
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._scrape_lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._was_up: bool | None = None
        self.scrapes = 0
        self.failures = 0

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self) -> Snapshot:
        """Scrapes now and keeps the result as the latest snapshot."""
        with self._scrape_lock:
            snapshot = self._take(time.monotonic())
            self._snapshot = snapshot
            return snapshot

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
        with self._scrape_lock:
            self.receiver.close()


class Poller:
    """Scrapes one receiver every `interval_s` on a daemon thread until `stop()`."""

    def __init__(self, state: ScrapeState, interval_s: float) -> None:
        self.state = state
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scrape-{state.receiver.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.state.refresh()
            except Exception:  # noqa: BLE001 - a receiver bug must not end the polling
                log.exception("scraping %s failed unexpectedly", self.state.receiver.name)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)


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
