"""FastAPI dependencies shared by the routers: settings, the request's time window, the watermark."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from tracehouse.query.settings import QuerySettings
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
