"""Pages render a message, never a blank page or a traceback, when the API behind them fails: here the
real query app on a store that is not there (every data endpoint answers 503), without the metrics and
alerts endpoints (404)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support import free_port
from tracehouse.query.app import create_app
from tracehouse.settings import StoreSettings
from tracehouse.ui.router import router

PAGES = ("services", "services/checkout", "map", "traces", f"traces/{'ab' * 16}", "top", "db",
         "latency?service=checkout", "hosts", "middleware", "alerts")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(StoreSettings(store=f"http://127.0.0.1:{free_port()}/", migrate=False), {})
    app.include_router(router, prefix="/ui")
    yield TestClient(app)  # no lifespan: nothing in the background tries the store


def messages(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<div class="msg error"[^>]*>(.*?)</div>', html, re.S)]


@pytest.mark.parametrize("page", PAGES)
def test_an_unavailable_store_is_a_message_on_every_page(client: TestClient, page: str) -> None:
    response = client.get(f"/ui/{page}")
    assert response.status_code in (200, 503), response.text[:500]
    assert "<nav>" in response.text and "Traceback" not in response.text
    found = messages(response.text)
    assert found, f"/ui/{page} shows no error message"
    assert all(re.search(r"/api/v1/\S+ answered (503: store unavailable|404: this endpoint is not available)", m)
               for m in found), found
    if page in ("services", "map", "traces"):
        assert any("answered 503: store unavailable" in m for m in found)


def test_static_assets_come_from_the_server(client: TestClient) -> None:
    plotly_js = client.get("/ui/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert plotly_js.status_code == 200 and plotly_js.headers["content-encoding"] == "gzip"
    assert len(plotly_js.content) > 1_000_000 and b"plotly" in plotly_js.content[:2000].lower()
    assert client.get("/ui/static/app.js").status_code == 200
    assert client.get("/ui/static/other.js").status_code == 404
    page = client.get("/ui/services").text
    assert "cdn" not in page.lower() and '/ui/static/plotly.min.js' in page


def test_ui_is_not_part_of_the_api_description(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_the_trace_id_box_opens_the_trace_keeping_the_range(client: TestClient) -> None:
    response = client.get("/ui/find-trace", params={"trace_id": " ABCDEF0123456789abcdef0123456789 ", "range": "6h"},
                          follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/traces/abcdef0123456789abcdef0123456789?range=6h"
    empty = client.get("/ui/find-trace", params={"trace_id": ""}, follow_redirects=False)
    assert empty.headers["location"] == "/ui/traces?range=1h"


def test_forms_posted_from_another_site_change_nothing(client: TestClient) -> None:
    forged = client.post("/ui/alerts/rules/r1/delete", headers={"Origin": "https://attacker.example"},
                         follow_redirects=False)
    assert forged.status_code == 403 and "another site" in forged.text
    null_origin = client.post("/ui/alerts/rules/r1/delete", headers={"Origin": "null"}, follow_redirects=False)
    assert null_origin.status_code == 403
    # Same origin goes on to the API (absent in this app, so the page says so).
    same = client.post("/ui/alerts/rules/r1/delete", headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert same.status_code == 502 and "/api/v1/alerts/rules/r1 answered 404" in same.text


def test_auto_refresh_reloads_get_pages_only(client: TestClient) -> None:
    assert '<meta http-equiv="refresh" content="30">' in client.get("/ui/services?refresh=30").text
    after_post = client.post("/ui/alerts/rules/r1/test?refresh=30", headers={"Origin": "http://testserver"})
    assert "answered 404" in after_post.text and 'http-equiv="refresh"' not in after_post.text
    assert 'action="/ui/alerts" id="timebar"' in after_post.text  # the range form goes back to a GET page
