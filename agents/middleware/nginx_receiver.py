"""Nginx: the `stub_status` page (ngx_http_stub_status_module).

    Active connections: 2
    server accepts handled requests
     10 10 25
    Reading: 0 Writing: 1 Waiting: 1
"""

from __future__ import annotations

import re

import httpx

from tracehouse.agents.middleware.base import MetricSpec, Receiver, Sample, ScrapeError

_ACTIVE = re.compile(r"Active connections:\s*(\d+)")
_TOTALS = re.compile(r"server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)")
_STATES = re.compile(r"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)")


class NginxReceiver(Receiver):
    system = "nginx"
    catalogue = (
        MetricSpec("nginx.connections_current", "updowncounter", "{connection}",
                   "Current connections by state (active, reading, writing, waiting)"),
        MetricSpec("nginx.connections_accepted", "counter", "{connection}", "Accepted client connections"),
        MetricSpec("nginx.connections_handled", "counter", "{connection}", "Handled client connections"),
        MetricSpec("nginx.requests", "counter", "{request}", "Client requests"),
    )

    def __init__(self, name: str, host: str, port: int, *, url: str, timeout_s: float = 5.0) -> None:
        super().__init__(name, host, port)
        self.url = url
        self._timeout_s = timeout_s

    def _scrape(self) -> list[Sample]:
        response = httpx.get(self.url, timeout=self._timeout_s, follow_redirects=False)
        if response.status_code != 200:
            raise ScrapeError(f"{self.url} answered {response.status_code}")
        return parse_stub_status(response.text)


def parse_stub_status(text: str) -> list[Sample]:
    active, totals, states = _ACTIVE.search(text), _TOTALS.search(text), _STATES.search(text)
    if not (active and totals and states):
        raise ScrapeError("the page is not an nginx stub_status page")
    accepted, handled, requests = (float(v) for v in totals.groups())
    reading, writing, waiting = (float(v) for v in states.groups())
    current = "nginx.connections_current"
    return [
        Sample(current, float(active.group(1)), {"state": "active"}),
        Sample(current, reading, {"state": "reading"}),
        Sample(current, writing, {"state": "writing"}),
        Sample(current, waiting, {"state": "waiting"}),
        Sample("nginx.connections_accepted", accepted),
        Sample("nginx.connections_handled", handled),
        Sample("nginx.requests", requests),
    ]
