"""Alerts end to end: `tracehouse up` as a real process, spans sent through its collector with the real
OpenTelemetry SDK, notifications received by a real HTTP webhook receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from tests.support import TraceHouseProcess, free_port, start_tracehouse, wait_for
from tests.test_alerts_receiver import WebhookReceiver
from tracehouse.query.alerts.channels import SIGNATURE_HEADER, verify

SECRET = "e2e-secret"
FAST_ALERTS = {"TRACEHOUSE_EVALUATION_INTERVAL_S": "0.5", "TRACEHOUSE_WEBHOOK_BACKOFF_S": "0.1",
               "TRACEHOUSE_WEBHOOK_MAX_ATTEMPTS": "4", "TRACEHOUSE_WEBHOOK_TIMEOUT_S": "2"}


class Services:
    """One TracerProvider per service (its own service.name), exporting OTLP/HTTP to the collector."""

    def __init__(self, otlp_http_url: str) -> None:
        self.url = otlp_http_url
        self.providers: dict[str, TracerProvider] = {}

    def tracer(self, service: str) -> trace.Tracer:
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                                "service.instance.id": f"{service}-1"}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{self.url}/v1/traces")))
            self.providers[service] = provider
        return self.providers[service].get_tracer("alerts-e2e")

    def flush(self) -> None:
        for provider in self.providers.values():
            assert provider.force_flush(10_000)

    def shutdown(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()

    def requests(self, service: str, operation: str, duration_ms: float, count: int) -> None:
        """`count` SERVER spans of `duration_ms`, ending now."""
        tracer = self.tracer(service)
        end_ns = time.time_ns()
        for index in range(count):
            span = tracer.start_span(operation, kind=SpanKind.SERVER,
                                     start_time=end_ns - int(duration_ms * 1e6) - index * 1000)
            span.end(end_time=end_ns - index * 1000)
        self.flush()

    def call_chain(self, chain: list[str]) -> None:
        """One trace through `chain` (A calls B calls C ...), each hop a CLIENT span and a SERVER span."""
        context = None
        for position, service in enumerate(chain):
            tracer = self.tracer(service)
            server = tracer.start_span("handle", kind=SpanKind.SERVER, context=context)
            context = trace.set_span_in_context(server)
            if position + 1 < len(chain):
                client = tracer.start_span(f"call {chain[position + 1]}", kind=SpanKind.CLIENT, context=context)
                context = trace.set_span_in_context(client)
                client.end()
            server.end()
        self.flush()


@pytest.fixture
def alerting(server_store_dsn: str, tmp_path: Path) -> Iterator[TraceHouseProcess]:
    process = start_tracehouse(server_store_dsn, log_path=os.path.join(tmp_path, "tracehouse.log"),
                               env=FAST_ALERTS)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def services(alerting: TraceHouseProcess) -> Iterator[Services]:
    found = Services(alerting.otlp_http_url)
    yield found
    found.shutdown()


def api(process: TraceHouseProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{process.api_url}/api/v1/alerts{path}", timeout=30, **kwargs)


def create(process: TraceHouseProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api(process, "POST", path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def passes(process: TraceHouseProcess) -> int:
    return int(api(process, "GET", "/status").json()["passes"])


def wait_passes(process: TraceHouseProcess, more: int) -> None:
    target = passes(process) + more
    wait_for(lambda: passes(process) >= target, timeout_s=60, message=f"{more} more evaluation passes")


def kinds(receiver: WebhookReceiver) -> list[str]:
    return [json.loads(r.body)["kind"] for r in receiver.accepted()]


def test_p99_rule_fires_then_resolves_once_each_with_signatures(alerting: TraceHouseProcess,
                                                                 services: Services) -> None:
    with WebhookReceiver() as receiver:
        create(alerting, "/channels", {"name": "ops-webhook", "type": "webhook", "url": receiver.url,
                                       "secret": SECRET})
        create(alerting, "/rules", {"name": "checkout p99", "target": {"service": "shop", "operation": "GET /checkout"},
                                    "signal": "p99_ms", "op": ">", "threshold": 250, "window_s": 10, "for_s": 0,
                                    "severity": "critical", "labels": {"team": "shop"}, "channels": ["ops-webhook"],
                                    "enabled": True})
        services.requests("shop", "GET /checkout", 20.0, 20)
        wait_passes(alerting, 2)
        assert receiver.requests == []  # fast: nothing to say

        services.requests("shop", "GET /checkout", 400.0, 20)
        wait_for(lambda: kinds(receiver) == ["firing"], timeout_s=60, message="the firing notification")
        (active,) = api(alerting, "GET", "").json()
        assert active["state"] == "firing" and active["value"] > 250

        def fast_again() -> bool:
            services.requests("shop", "GET /checkout", 20.0, 5)
            return len(receiver.accepted()) >= 2

        wait_for(fast_again, timeout_s=90, interval_s=1.0, message="the resolved notification")
        wait_passes(alerting, 4)
    assert kinds(receiver) == ["firing", "resolved"]
    for request in receiver.requests:
        assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER])
    firing, resolved = (json.loads(r.body) for r in receiver.accepted())
    assert firing["rule"]["name"] == "checkout p99" and firing["labels"] == {"team": "shop"}
    assert resolved["status"] == "resolved" and resolved["value"] < 250
    history = api(alerting, "GET", "/history").json()
    assert [(h["from_state"], h["to_state"]) for h in reversed(history)] == [("ok", "firing"),
                                                                            ("firing", "resolved")]


def test_rules_survive_a_restart(server_store_dsn: str, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - {name: From file, signal: error_rate, target: {service: shop},"
                          " op: '>', threshold: 0.1}\n")
    env = {**FAST_ALERTS, "TRACEHOUSE_RULES_FILE": str(rules_file)}
    log_path = os.path.join(tmp_path, "tracehouse.log")
    first = start_tracehouse(server_store_dsn, log_path=log_path, env=env)
    try:
        create(first, "/rules", {"name": "From API", "signal": "calls_per_min", "target": {"service": "shop"},
                                 "op": "<", "threshold": 1, "window_s": 60})
        assert api(first, "PUT", "/rules/from-api", json={"name": "From API", "signal": "calls_per_min",
                                                          "target": {"service": "shop"}, "op": "<",
                                                          "threshold": 5, "window_s": 60}).status_code == 200
        wait_for(lambda: any(a["rule_id"] == "from-api" for a in api(first, "GET", "").json()), timeout_s=60,
                 message="the API rule to fire")
    finally:
        assert first.stop() == 0
    second = start_tracehouse(server_store_dsn, log_path=log_path, env=env)
    try:
        rules = {r["id"]: r for r in api(second, "GET", "/rules").json()}
        assert set(rules) == {"from-api", "from-file"}
        assert rules["from-api"]["threshold"] == 5 and rules["from-file"]["source"] == "file"
        assert rules["from-api"]["state"] == "firing"  # state survives too
        wait_passes(second, 2)
        history = api(second, "GET", "/history", params={"rule_id": "from-api"}).json()
        assert [h["to_state"] for h in history] == ["firing"]  # no second firing after the restart
    finally:
        assert second.stop() == 0


def test_new_cycle_rule_fires_when_the_closing_spans_arrive(alerting: TraceHouseProcess,
                                                             services: Services) -> None:
    with WebhookReceiver() as receiver:
        create(alerting, "/channels", {"name": "hook", "type": "webhook", "url": receiver.url, "secret": SECRET})
        create(alerting, "/rules", {"name": "new cycle", "signal": "new_cycle", "op": ">=", "threshold": 1,
                                    "window_s": 300, "channels": ["hook"]})
        services.call_chain(["orders", "billing", "ledger"])
        wait_for(lambda: alerting.count("otel_traces", "ServiceName = 'ledger'") >= 1, timeout_s=30,
                 message="the chain's spans to be stored")
        wait_passes(alerting, 3)
        assert receiver.requests == []
        services.call_chain(["ledger", "orders"])  # closes orders → billing → ledger → orders
        wait_for(lambda: receiver.accepted(), timeout_s=60, message="the cycle notification")
        wait_passes(alerting, 3)
    (notification,) = [json.loads(r.body) for r in receiver.accepted()]
    assert notification["kind"] == "firing"
    assert notification["series"] == "billing -> ledger -> orders -> billing"
    assert [e["source"] for e in notification["details"]["edges"]] == ["billing", "ledger", "orders"]
    assert verify(SECRET, receiver.accepted()[0].body, receiver.accepted()[0].headers[SIGNATURE_HEADER])


def test_a_down_webhook_is_retried_and_evaluation_goes_on(alerting: TraceHouseProcess,
                                                          services: Services) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with WebhookReceiver(fail_first=2) as flaky:
        create(alerting, "/channels", {"name": "dead", "type": "webhook", "url": dead_url})
        create(alerting, "/channels", {"name": "flaky", "type": "webhook", "url": flaky.url, "secret": SECRET})
        create(alerting, "/rules", {"name": "busy shop", "signal": "calls_per_min", "op": ">", "threshold": 0,
                                    "window_s": 60, "target": {"service": "shop"}, "channels": ["dead", "flaky"]})
        services.requests("shop", "GET /", 5.0, 3)
        wait_for(lambda: flaky.accepted(), timeout_s=60, message="the flaky webhook to accept after retries")

        def deliveries() -> dict[str, dict[str, Any]] | None:
            found = {r["channel"]: r for r in api(alerting, "GET", "/notifications").json()}
            return found if len(found) == 2 else None

        recorded = wait_for(deliveries, timeout_s=60, message="both deliveries to be recorded")
        assert recorded is not None
        wait_passes(alerting, 3)  # the evaluator is still running
    assert len(flaky.requests) == 3 and kinds(flaky) == ["firing"]
    assert recorded["flaky"]["ok"] is True and recorded["flaky"]["attempts"] == 3
    assert recorded["dead"]["ok"] is False and recorded["dead"]["attempts"] == 4
    assert "ConnectError" in recorded["dead"]["error"]
    assert "alert firing of 'busy shop' to channel dead failed after 4 attempt(s)" in alerting.log()


def test_heartbeat_missing_fires_when_an_instrumented_process_dies(alerting: TraceHouseProcess) -> None:
    """A script run under `tracehouse-agent run` sends heartbeats; killed with SIGKILL, it stops, and the
    rule fires for its instance (and only for it)."""
    repo = Path(__file__).resolve().parents[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TRACEHOUSE_"))}
    env.update({"PYTHONPATH": str(repo), "TRACEHOUSE_ENDPOINTS": alerting.otlp_http_url,
                "TRACEHOUSE_METRICS_INTERVAL_S": "0.5", "TRACEHOUSE_HOST_METRICS": "false"})
    agent = str(Path(sys.executable).with_name("tracehouse-agent"))
    worker = subprocess.Popen([agent, "run", "--service-name", "worker", "--", sys.executable, "-m",
                               "tests.apps.sqlite_script", "--wait"], cwd=repo, env=env, stdout=subprocess.DEVNULL)
    try:
        with WebhookReceiver() as receiver:
            create(alerting, "/channels", {"name": "hook", "type": "webhook", "url": receiver.url})
            create(alerting, "/rules", {"name": "worker gone", "signal": "heartbeat_missing", "op": ">",
                                        "threshold": 5, "window_s": 600, "target": {"service": "worker"},
                                        "channels": ["hook"]})
            wait_for(lambda: alerting.count("otel_metrics_gauge", "MetricName = 'tracehouse.agent.heartbeat' "
                                                                  "AND ServiceName = 'worker'") >= 3,
                     timeout_s=60, message="heartbeats from the worker")
            wait_passes(alerting, 3)
            assert receiver.requests == []
            worker.kill()
            worker.wait(timeout=30)
            wait_for(lambda: receiver.accepted(), timeout_s=60, message="the heartbeat-missing notification")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
    (notification,) = [json.loads(r.body) for r in receiver.accepted()]
    assert notification["kind"] == "firing" and notification["value"] > 5
    assert notification["labels"]["service"] == "worker" and notification["labels"]["instance"]


def test_a_bad_rules_file_stops_start_up_with_a_clear_message(server_store_dsn: str, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - {name: no target, signal: p99_ms, threshold: 250}\n")
    args = [sys.executable, "-m", "tracehouse", "up", "--store", server_store_dsn, "--host", "127.0.0.1",
            "--otlp-grpc-port", str(free_port()), "--otlp-http-port", str(free_port()),
            "--zipkin-port", str(free_port()), "--http-port", str(free_port())]
    result = subprocess.run(args, env={**os.environ, "TRACEHOUSE_RULES_FILE": str(rules_file)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"rules_file {rules_file}: rules[0].target" in result.stdout + result.stderr
