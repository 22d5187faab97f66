"""The demo's load generator against a real HTTP server: it keeps to its rate, mixes every route and
counts 5xx answers and refused connections as errors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask, Response
from werkzeug.serving import make_server

from tests.support import free_port, wait_for
from tracehouse.demo.load import ROUTES, LoadGenerator


@pytest.fixture
def gateway() -> Iterator[tuple[str, Counter[str]]]:
    seen: Counter[str] = Counter()
    app = Flask("fake-gateway")

    @app.post("/api/checkout")
    def checkout() -> Response:
        seen["checkout"] += 1
        return Response("{}", status=502, mimetype="application/json")

    @app.get("/api/orders")
    @app.get("/api/orders/<int:order_id>")
    @app.get("/api/search")
    def reads(order_id: int | None = None) -> Response:
        seen["read"] += 1
        return Response("{}", status=200, mimetype="application/json")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()


def test_load_keeps_its_rate_and_counts_failures(gateway: tuple[str, Counter[str]]) -> None:
    url, seen = gateway
    load = LoadGenerator(url, rate_per_s=50, workers=4, seed=1)
    load.start()
    try:
        wait_for(lambda: load.total_requests >= 80 and all(s.requests for s in load.stats.values()), timeout_s=60,
                 message="80 requests over every route")
    finally:
        load.stop()
    elapsed_s = time.monotonic() - load.started_at
    total = load.total_requests
    assert 0 < total <= 50 * elapsed_s + 50 + 4  # never faster than the rate (plus at most a second of catch-up)
    assert set(load.stats) == {route for route, _ in ROUTES}
    assert all(stats.requests > 0 for stats in load.stats.values()), load.stats
    checkout = load.stats["POST /api/checkout"]
    assert checkout.errors == checkout.requests == seen["checkout"]
    assert load.total_errors == checkout.errors
    assert sum(s.requests for route, s in load.stats.items() if route != "POST /api/checkout") == seen["read"]


def test_an_unreachable_gateway_is_counted_as_errors() -> None:
    load = LoadGenerator(f"http://127.0.0.1:{free_port()}", rate_per_s=20, workers=2, seed=2)
    load.start()
    try:
        wait_for(lambda: load.total_requests >= 5, timeout_s=30, message="five attempts")
    finally:
        load.stop()
    assert load.total_requests > 0 and load.total_errors == load.total_requests


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        LoadGenerator("http://127.0.0.1:1", rate_per_s=0)
