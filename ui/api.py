"""The dashboard's only way to data: the public JSON API, called in-process over ASGI.

Pages never touch the store; they call `/api/v1/...` on the same app, so the UI sees exactly
what any other API client sees. Every call returns an `ApiResult`; a failure becomes a message
for the page, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ApiResult:
    path: str
    status: int  # 0 when no HTTP answer came back
    data: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def error_message(path: str, status: int, body: Any) -> str:
    """A one-line message naming the endpoint and what the API said."""
    detail: Any = body
    if isinstance(body, Mapping):
        detail = body.get("detail", body.get("error", body.get("message", body)))
    if isinstance(detail, list):  # FastAPI validation errors: [{"loc": [...], "msg": ...}]
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = ".".join(str(p) for p in item.get("loc", []) if p not in ("query", "body", "path"))
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        detail = "; ".join(parts)
    text = str(detail).strip() if detail not in (None, "") else "no details"
    if len(text) > 500:
        text = text[:500] + "…"
    if status == 404 and text == "Not Found":
        text = "this endpoint is not available in this server"
    return f"{path} answered {status}: {text}"


class ApiClient:
    """GET/POST/PUT/DELETE on the app that serves the current request."""

    def __init__(self, request: Request, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._app = request.app
        self._timeout_s = timeout_s

    async def call(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                   json: Any = None) -> ApiResult:
        url = path if path.startswith("/") else f"{API_PREFIX}/{path}"
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        transport = httpx.ASGITransport(app=self._app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
                response = await asyncio.wait_for(
                    client.request(method, url, params=clean, json=json), timeout=self._timeout_s)
        except TimeoutError:
            return ApiResult(url, 0, error=f"{url} did not answer within {self._timeout_s:.0f} s")
        except Exception as exc:  # noqa: BLE001 - any failure is a message on the page
            return ApiResult(url, 0, error=f"{url} failed: {type(exc).__name__}: {exc}")
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            return ApiResult(url, response.status_code, body, error_message(url, response.status_code, body))
        return ApiResult(url, response.status_code, body)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> ApiResult:
        return await self.call("GET", path, params)

    async def gather(self, *calls: tuple[str, Mapping[str, Any] | None]) -> list[ApiResult]:
        """Several GETs at once."""
        return list(await asyncio.gather(*(self.get(path, params) for path, params in calls)))
