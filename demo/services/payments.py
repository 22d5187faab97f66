"""payments (FastAPI): charges an order; a share of the calls fail (the card processor "times out").
A successful charge is recorded and announced to notifications."""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from tracehouse.demo.services.common import Database, ServiceSettings, serve_asgi

settings = ServiceSettings.from_env("payments")
db = Database(settings)
http = httpx.Client(timeout=10)
app = FastAPI(title="payments")


class Charge(BaseModel):
    order_id: int = Field(ge=1)
    amount_cents: int = Field(ge=0)


def create_tables() -> None:
    db.execute(f"CREATE TABLE IF NOT EXISTS payments (id {db.autoincrement}, order_id INTEGER NOT NULL, "
               "amount_cents INTEGER NOT NULL, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)")


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/charge")
def charge(request: Charge) -> dict[str, Any]:
    if random.random() < settings.failure_rate:  # noqa: S311 - a demo's coin toss
        time.sleep(random.uniform(0.05, 0.2))  # noqa: S311
        db.execute("INSERT INTO payments (order_id, amount_cents, status, created_at) VALUES (?, ?, ?, ?)",
                   (request.order_id, request.amount_cents, "failed", time.time()))
        raise HTTPException(status_code=503, detail="card processor timed out")
    payment_id = int(db.scalar("INSERT INTO payments (order_id, amount_cents, status, created_at) "
                               "VALUES (?, ?, ?, ?) RETURNING id",
                               (request.order_id, request.amount_cents, "captured", time.time())))
    http.post(f"{settings.url_of('notifications')}/notify",
              json={"order_id": request.order_id, "kind": "payment_captured"}).raise_for_status()
    return {"payment_id": payment_id, "status": "captured"}


def main() -> None:
    create_tables()
    serve_asgi(app, settings.port)


if __name__ == "__main__":
    main()
