"""A real FastAPI back end for the agent tests: `/inventory/<item>` queries the machine's PostgreSQL
(psycopg 3), MariaDB (PyMySQL), Redis and an sqlite3 file, each statement carrying a literal that
the agent must strip. Run with `uvicorn tests.apps.fastapi_back:app`. No tracing code here.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile

import psycopg
import pymysql
import redis
from fastapi import FastAPI

app = FastAPI()
SQLITE_PATH = os.environ.get("SQLITE_PATH") or os.path.join(tempfile.gettempdir(), f"inventory-{os.getpid()}.db")
SECRET = "card-4111111111111111"  # a literal no span may carry


@app.get("/inventory/{item_id}")
def inventory(item_id: int) -> dict[str, object]:
    with psycopg.connect(os.environ.get("POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")) as pg, \
            pg.cursor() as cursor:
        cursor.execute(f"SELECT %s::int + 1 AS next_id, '{SECRET}' AS tag", (item_id,))
        pg_row = cursor.fetchone()
    maria = pymysql.connect(host="127.0.0.1", port=int(os.environ.get("MARIADB_PORT", "3306")), user="root",
                            password="", database="test")
    try:
        with maria.cursor() as cursor:
            cursor.execute(f"SELECT %s * 2 AS doubled, '{SECRET}' AS tag", (item_id,))
            maria_row = cursor.fetchone()
    finally:
        maria.close()
    cache = redis.Redis(host="127.0.0.1", port=int(os.environ.get("REDIS_PORT", "6379")))
    cache.set(f"inventory:{item_id}", SECRET)
    cached = cache.get(f"inventory:{item_id}")
    cache.close()
    lite = sqlite3.connect(SQLITE_PATH)
    try:
        lite_cursor = lite.cursor()
        lite_cursor.execute("CREATE TABLE IF NOT EXISTS stock (item INTEGER PRIMARY KEY, count INTEGER, note TEXT)")
        lite_cursor.execute(f"INSERT OR REPLACE INTO stock VALUES (?, 7, '{SECRET}')", (item_id,))
        lite_cursor.execute("SELECT count FROM stock WHERE item = ?", (item_id,))
        stock = lite_cursor.fetchone()
        lite.commit()
    finally:
        lite.close()
    return {"pg": pg_row[0] if pg_row else None, "maria": maria_row[0] if maria_row else None,
            "cached": cached is not None, "stock": stock[0] if stock else None, "pid": os.getpid()}


@app.get("/ping")
def ping() -> dict[str, object]:
    return {"ok": True, "pid": os.getpid()}
