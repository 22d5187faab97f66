"""Store access for API routes: one ClickHouse client per worker thread, handed out by a FastAPI dependency.

`create_app` puts a `StorePool` on `app.state.store`; routes take `Store` (an Annotated dependency)
and never build clients themselves.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Annotated

from clickhouse_connect.driver.client import Client
from fastapi import Depends, HTTPException, Request

from tracehouse import storage


class StoreUnavailable(Exception):
    """The store could not be reached; routes answer 503."""


class StorePool:
    """Thread-local clients on one DSN. FastAPI runs sync routes in a thread pool, and a
    clickhouse_connect client must not be used by two threads at once."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._local = threading.local()
        self._all: list[Client] = []
        self._lock = threading.Lock()

    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                client = storage.connect(self.dsn)
            except Exception as exc:  # noqa: BLE001 - any connect failure means unavailable
                raise StoreUnavailable(str(exc)) from exc
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._all:
                with contextlib.suppress(Exception):  # closing is best effort
                    client.close()
            self._all.clear()


def get_client(request: Request) -> Client:
    pool: StorePool = request.app.state.store
    try:
        return pool.client()
    except StoreUnavailable as exc:
        raise HTTPException(status_code=503, detail=f"store unavailable: {exc}") from exc


Store = Annotated[Client, Depends(get_client)]
