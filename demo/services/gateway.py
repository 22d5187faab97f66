"""gateway (Flask): the shop's public API; every call goes on to orders over HTTP (requests)."""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask, Response, jsonify, request

from tracehouse.demo.services.common import ServiceSettings, serve_wsgi

settings = ServiceSettings.from_env("gateway")
app = Flask("gateway")
http = requests.Session()
TIMEOUT_S = 10


def _call(method: str, url: str, **kwargs: Any) -> Response:
    """Calls an upstream service and relays its answer; an upstream failure becomes 502, a timeout 504."""
    try:
        response = http.request(method, url, timeout=TIMEOUT_S, **kwargs)
    except requests.Timeout:
        return _json({"error": f"upstream timed out: {url}"}, 504)
    except requests.RequestException as exc:
        return _json({"error": f"upstream unreachable: {exc}"}, 502)
    return _relay(response)


def _json(body: Any, status: int) -> Response:
    return Response(jsonify(body).get_data(), status=status, mimetype="application/json")


def _relay(response: requests.Response) -> Response:
    try:
        body: Any = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code >= 500:
        return _json({"error": "upstream failure", "upstream": body}, 502)
    return _json(body, response.status_code)


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/api/orders")
def list_orders() -> Response:
    return _call("GET", f"{settings.url_of('orders')}/orders", params={"limit": 10})


@app.get("/api/orders/<int:order_id>")
def get_order(order_id: int) -> Response:
    return _call("GET", f"{settings.url_of('orders')}/orders/{order_id}")


@app.get("/api/search")
def search() -> Response:
    query = request.args.get("q", "")
    return _call("GET", f"{settings.url_of('orders')}/orders/search", params={"q": query})


@app.post("/api/checkout")
def checkout() -> Response:
    return _call("POST", f"{settings.url_of('orders')}/orders", json=request.get_json(force=True, silent=True))


def main() -> None:
    serve_wsgi(app, settings.port)


if __name__ == "__main__":
    main()
