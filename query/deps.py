"""FastAPI dependencies shared by the routers: settings, the request's time window, the watermark."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Annotated, TypeVar

from clickhouse_connect.driver.client import Client
from fastapi import Depends, Query, Request

from tracehouse.query.settings import QuerySettings
from tracehouse.query.store import StorePool
from tracehouse.query.timerange import TimeWindow, window


def get_settings(request: Request) -> QuerySettings:
    settings: QuerySettings = request.app.state.query_settings
    return settings


Settings = Annotated[QuerySettings, Depends(get_settings)]


def get_window(
    settings: Settings,
    start: Annotated[str | None, Query(description="RFC 3339 or Unix milliseconds; default: end minus one hour",
                                       max_length=64)] = None,
    end: Annotated[str | None, Query(description="RFC 3339 or Unix milliseconds; default: now",
                                     max_length=64)] = None,
) -> TimeWindow:
    return window(start, end, default_s=settings.default_window_s)


Window = Annotated[TimeWindow, Depends(get_window)]


T = TypeVar("T")


class Concurrent:
    """Runs a reader on another worker thread with that thread's own client, so that two
    independent queries of one request run at the same time."""

    def __init__(self, executor: ThreadPoolExecutor, pool: StorePool) -> None:
        self._executor = executor
        self._pool = pool

    def submit(self, reader: Callable[[Client], T]) -> Future[T]:
        return self._executor.submit(lambda: reader(self._pool.client()))


def get_concurrent(request: Request) -> Concurrent:
    return Concurrent(request.app.state.query_executor, request.app.state.store)


Parallel = Annotated[Concurrent, Depends(get_concurrent)]
