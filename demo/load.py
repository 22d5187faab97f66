"""The demo's load generator: a paced mix of shop requests against the gateway, with statistics
per route for the progress display."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import httpx

SKUS = [f"SKU-{n:03d}" for n in range(1, 21)]
CUSTOMERS = ("ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances")
# (route label, weight): what a user of the shop does, roughly
ROUTES: tuple[tuple[str, int], ...] = (
    ("POST /api/checkout", 4), ("GET /api/orders", 3), ("GET /api/orders/{id}", 2), ("GET /api/search", 1),
)


@dataclass
class RouteStats:
    requests: int = 0
    errors: int = 0  # 5xx answers and failed connections
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))

    def quantile_ms(self, share: float) -> float:
        values = sorted(self.latencies_ms)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(share * len(values)))]

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0


class LoadGenerator:
    """`workers` threads share one schedule of `rate_per_s` requests per second."""

    def __init__(self, gateway_url: str, rate_per_s: float, workers: int = 4, seed: int | None = None) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be greater than 0")
        self.gateway_url = gateway_url.rstrip("/")
        self.interval_s = 1.0 / rate_per_s
        self.workers = workers
        self.stats: dict[str, RouteStats] = {route: RouteStats() for route, _ in ROUTES}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_at = 0.0
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = self._next_at = time.monotonic()
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"demo-load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def total_requests(self) -> int:
        return sum(s.requests for s in self.stats.values())

    @property
    def total_errors(self) -> int:
        return sum(s.errors for s in self.stats.values())

    def _slot(self) -> tuple[float, str, dict[str, object]]:
        """The time of the next request and what it is (drawn under the lock: one shared rng)."""
        with self._lock:
            now = time.monotonic()
            self._next_at = max(self._next_at + self.interval_s, now - 1.0)  # no burst after a stall
            route = self._rng.choices([r for r, _ in ROUTES], weights=[w for _, w in ROUTES])[0]
            params: dict[str, object] = {
                "order_id": self._rng.randint(1, 40),
                "q": self._rng.choice(("ada", "sku-00", "grace", "sku-01", "ken")),
                "order": {"customer": self._rng.choice(CUSTOMERS),
                          "items": [{"sku": self._rng.choice(SKUS), "qty": self._rng.randint(1, 3)}
                                    for _ in range(self._rng.randint(1, 3))]},
            }
            return self._next_at, route, params

    def _work(self) -> None:
        with httpx.Client(base_url=self.gateway_url, timeout=30) as http:
            while not self._stop.is_set():
                at, route, params = self._slot()
                if self._stop.wait(max(0.0, at - time.monotonic())):
                    return
                started = time.perf_counter()
                try:
                    if route == "POST /api/checkout":
                        status = http.post("/api/checkout", json=params["order"]).status_code
                    elif route == "GET /api/orders":
                        status = http.get("/api/orders").status_code
                    elif route == "GET /api/orders/{id}":
                        status = http.get(f"/api/orders/{params['order_id']}").status_code
                    else:
                        status = http.get("/api/search", params={"q": str(params["q"])}).status_code
                except httpx.HTTPError:
                    status = 0
                elapsed_ms = (time.perf_counter() - started) * 1000
                with self._lock:
                    stats = self.stats[route]
                    stats.requests += 1
                    stats.latencies_ms.append(elapsed_ms)
                    if status == 0 or status >= 500:
                        stats.errors += 1
