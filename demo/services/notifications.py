"""notifications (Flask): records a notification and queues it in Redis when the demo has Redis.
With --cycle it fetches the order from orders to render a receipt: notifications -> orders closes the
cycle orders -> payments -> notifications -> orders."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from flask import Flask, Response, jsonify, request

from tracehouse.demo.services.common import Database, ServiceSettings, redis_client, serve_wsgi

settings = ServiceSettings.from_env("notifications")
db = Database(settings)
cache = redis_client(settings)
http = requests.Session()
app = Flask("notifications")


def create_tables() -> None:
    db.execute(f"CREATE TABLE IF NOT EXISTS notifications (id {db.autoincrement}, order_id INTEGER NOT NULL, "
               "kind TEXT NOT NULL, body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)")


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/notify")
def notify() -> Response:
    body: dict[str, Any] = request.get_json(force=True)
    order_id, kind = int(body.get("order_id", 0)), str(body.get("kind", "info"))
    receipt: dict[str, Any] = {"order_id": order_id}
    if settings.cycle:
        response = http.get(f"{settings.url_of('orders')}/orders/{order_id}", timeout=10)
        if response.ok:
            receipt = response.json()
    text = json.dumps(receipt)
    db.execute("INSERT INTO notifications (order_id, kind, body, created_at) VALUES (?, ?, ?, ?)",
               (order_id, kind, text, time.time()))
    if cache is not None:
        cache.lpush(f"{settings.redis_prefix}:outbox", text)
        cache.ltrim(f"{settings.redis_prefix}:outbox", 0, 999)
    return jsonify({"queued": True, "order_id": order_id})


def main() -> None:
    create_tables()
    serve_wsgi(app, settings.port)


if __name__ == "__main__":
    main()
