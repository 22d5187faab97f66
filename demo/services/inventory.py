"""inventory (Flask): stock per SKU in the database, cached in Redis when the demo has Redis."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from tracehouse.demo.services.common import Database, ServiceSettings, redis_client, serve_wsgi

settings = ServiceSettings.from_env("inventory")
db = Database(settings)
cache = redis_client(settings)
app = Flask("inventory")
RESTOCK = 100


def create_tables() -> None:
    db.execute("CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL, "
               "price_cents INTEGER NOT NULL)")
    if not db.scalar("SELECT count(*) FROM stock"):
        for number in range(1, 21):
            db.execute("INSERT INTO stock (sku, available, price_cents) VALUES (?, ?, ?)",
                       (f"SKU-{number:03d}", RESTOCK, 199 + number * 150))


def _cache_key(sku: str) -> str:
    return f"{settings.redis_prefix}:stock:{sku}"


def _stock(sku: str) -> tuple[int, int] | None:
    if cache is not None:
        cached = cache.hgetall(_cache_key(sku))
        if cached:
            return int(cached[b"available"]), int(cached[b"price_cents"])
    rows = db.execute("SELECT available, price_cents FROM stock WHERE sku = ?", (sku,))
    if not rows:
        return None
    available, price = int(rows[0][0]), int(rows[0][1])
    if cache is not None:
        cache.hset(_cache_key(sku), mapping={"available": available, "price_cents": price})
        cache.expire(_cache_key(sku), 30)
    return available, price


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/stock/<sku>")
def stock(sku: str) -> Response:
    found = _stock(sku)
    if found is None:
        return Response(jsonify({"error": f"unknown sku {sku}"}).get_data(), status=404, mimetype="application/json")
    return jsonify({"sku": sku, "available": found[0], "price_cents": found[1]})


@app.post("/reserve")
def reserve() -> Response:
    body: dict[str, Any] = request.get_json(force=True)
    sku, qty = str(body.get("sku", "")), int(body.get("qty", 1))
    found = _stock(sku)
    if found is None:
        return Response(jsonify({"error": f"unknown sku {sku}"}).get_data(), status=404, mimetype="application/json")
    if found[0] < qty:
        db.execute("UPDATE stock SET available = available + ? WHERE sku = ?", (RESTOCK, sku))
    db.execute("UPDATE stock SET available = available - ? WHERE sku = ?", (qty, sku))
    if cache is not None:
        cache.delete(_cache_key(sku))
    return jsonify({"sku": sku, "reserved": qty, "price_cents": found[1]})


def main() -> None:
    create_tables()
    serve_wsgi(app, settings.port)


if __name__ == "__main__":
    main()
