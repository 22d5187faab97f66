"""orders (FastAPI): order history and checkout.

On purpose: `GET /orders` loads the items of each order with one query per order (an N+1 loop);
`GET /orders/search` runs a slow query; `POST /orders` reserves stock at inventory and charges at
payments, which fails a share of its calls.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from tracehouse.demo.services.common import Database, ServiceSettings, serve_asgi

settings = ServiceSettings.from_env("orders")
db = Database(settings)
http = httpx.Client(timeout=10)
app = FastAPI(title="orders")
SKUS = [f"SKU-{n:03d}" for n in range(1, 21)]
CUSTOMERS = ("ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances")


class Item(BaseModel):
    sku: str = Field(min_length=1, max_length=32)
    qty: int = Field(ge=1, le=10)


class NewOrder(BaseModel):
    customer: str = Field(min_length=1, max_length=64)
    items: list[Item] = Field(min_length=1, max_length=10)


def create_tables() -> None:
    db.execute(f"CREATE TABLE IF NOT EXISTS orders (id {db.autoincrement}, customer TEXT NOT NULL, "
               "total_cents INTEGER NOT NULL, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)")
    db.execute(f"CREATE TABLE IF NOT EXISTS order_items (id {db.autoincrement}, order_id INTEGER NOT NULL, "
               "sku TEXT NOT NULL, qty INTEGER NOT NULL, price_cents INTEGER NOT NULL)")
    if not db.scalar("SELECT count(*) FROM orders"):
        rng = random.Random(7)
        for _ in range(40):
            items = [(rng.choice(SKUS), rng.randint(1, 3), rng.randint(199, 4999)) for _ in range(rng.randint(1, 4))]
            _insert_order(rng.choice(CUSTOMERS), items, "paid")


def _insert_order(customer: str, items: list[tuple[str, int, int]], status: str) -> int:
    total = sum(qty * price for _, qty, price in items)
    order_id = int(db.scalar("INSERT INTO orders (customer, total_cents, status, created_at) VALUES (?, ?, ?, ?) "
                             "RETURNING id", (customer, total, status, time.time())))
    for sku, qty, price in items:
        db.execute("INSERT INTO order_items (order_id, sku, qty, price_cents) VALUES (?, ?, ?, ?)",
                   (order_id, sku, qty, price))
    return order_id


def _order_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "customer": row[1], "total_cents": row[2], "status": row[3]}


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/orders")
def list_orders(limit: int = 10) -> list[dict[str, Any]]:
    orders = [_order_row(row) for row in db.execute(
        "SELECT id, customer, total_cents, status FROM orders ORDER BY id DESC LIMIT ?", (max(1, min(limit, 50)),))]
    for order in orders:  # N+1: one query per order instead of one query for all of them
        order["items"] = [{"sku": sku, "qty": qty, "price_cents": price} for sku, qty, price in db.execute(
            "SELECT sku, qty, price_cents FROM order_items WHERE order_id = ?", (order["id"],))]
    return orders


@app.get("/orders/search")
def search_orders(q: str = "") -> list[dict[str, Any]]:
    # Slow on purpose: a scan of every item by a pattern nothing indexes (the pause stands for a big table).
    if settings.is_postgres:
        sql = ("WITH scan AS MATERIALIZED (SELECT pg_sleep(?) AS done) "
               "SELECT DISTINCT o.id, o.customer, o.total_cents, o.status FROM orders o "
               "JOIN order_items i ON i.order_id = o.id CROSS JOIN scan "
               "WHERE lower(i.sku) LIKE ? OR lower(o.customer) LIKE ? ORDER BY o.id DESC LIMIT 20")
        delay: float | int = settings.slow_query_ms / 1000
    else:
        sql = ("SELECT DISTINCT o.id, o.customer, o.total_cents, o.status FROM orders o "
               "JOIN order_items i ON i.order_id = o.id "
               "WHERE (SELECT pause_ms(?)) = 0 AND (lower(i.sku) LIKE ? OR lower(o.customer) LIKE ?) "
               "ORDER BY o.id DESC LIMIT 20")
        delay = settings.slow_query_ms
    pattern = f"%{q.lower()}%"
    return [_order_row(row) for row in db.execute(sql, (delay, pattern, pattern))]


@app.get("/orders/{order_id}")
def get_order(order_id: int) -> dict[str, Any]:
    rows = db.execute("SELECT id, customer, total_cents, status FROM orders WHERE id = ?", (order_id,))
    if not rows:
        raise HTTPException(status_code=404, detail=f"no order {order_id}")
    order = _order_row(rows[0])
    order["items"] = [{"sku": sku, "qty": qty, "price_cents": price} for sku, qty, price in db.execute(
        "SELECT sku, qty, price_cents FROM order_items WHERE order_id = ?", (order_id,))]
    return order


@app.post("/orders", status_code=201)
def create_order(new: NewOrder) -> dict[str, Any]:
    priced: list[tuple[str, int, int]] = []
    for item in new.items:
        reserved = http.post(f"{settings.url_of('inventory')}/reserve", json={"sku": item.sku, "qty": item.qty})
        if reserved.status_code != 200:
            raise HTTPException(status_code=409, detail=f"cannot reserve {item.sku}: {reserved.text[:100]}")
        priced.append((item.sku, item.qty, int(reserved.json()["price_cents"])))
    order_id = _insert_order(new.customer, priced, "pending")
    total = sum(qty * price for _, qty, price in priced)
    charged = http.post(f"{settings.url_of('payments')}/charge", json={"order_id": order_id, "amount_cents": total})
    if charged.status_code != 200:
        db.execute("UPDATE orders SET status = ? WHERE id = ?", ("payment_failed", order_id))
        raise HTTPException(status_code=502, detail=f"payment failed for order {order_id}")
    db.execute("UPDATE orders SET status = ? WHERE id = ?", ("paid", order_id))
    return {"id": order_id, "total_cents": total, "status": "paid"}


def main() -> None:
    create_tables()
    serve_asgi(app, settings.port)


if __name__ == "__main__":
    main()
