"""RabbitMQ: the management plugin's HTTP API (`/api/overview`, `/api/queues`).

Names follow the OpenTelemetry Collector contrib `rabbitmqreceiver` where one exists
(rabbitmq.message.current, rabbitmq.message.published, rabbitmq.message.delivered, ...)."""

from __future__ import annotations

from typing import Any

import httpx

from tracehouse.agents.middleware.base import MetricSpec, Receiver, Sample, ScrapeError, number


class RabbitMQReceiver(Receiver):
    system = "rabbitmq"
    client_system = ("messaging.system", "rabbitmq")
    catalogue = (
        MetricSpec("rabbitmq.message.current", "updowncounter", "{message}",
                   "Messages in a queue by state (ready, unacknowledged)"),
        MetricSpec("rabbitmq.consumer.count", "updowncounter", "{consumer}", "Consumers of a queue"),
        MetricSpec("rabbitmq.message.published", "counter", "{message}", "Messages published (per queue, and in total)"),
        MetricSpec("rabbitmq.message.delivered", "counter", "{message}", "Messages delivered to consumers"),
        MetricSpec("rabbitmq.message.acknowledged", "counter", "{message}", "Messages acknowledged by consumers"),
        MetricSpec("rabbitmq.connections", "updowncounter", "{connection}", "Open client connections"),
        MetricSpec("rabbitmq.queues", "updowncounter", "{queue}", "Declared queues"),
    )

    def __init__(self, name: str, host: str, port: int, *, url: str, user: str = "guest", password: str = "",
                 amqp_port: int = 5672, timeout_s: float = 5.0) -> None:
        super().__init__(name, host, port)
        self.url = url.rstrip("/")
        self.amqp_port = amqp_port
        self._auth = (user, password)
        self._timeout_s = timeout_s

    def resource_attributes(self) -> dict[str, str | int]:
        # Clients' spans name the AMQP port, so that is the port this instance is matched by.
        return {**super().resource_attributes(), "server.port": self.amqp_port,
                "rabbitmq.management.port": self.port}

    def _get(self, path: str) -> Any:
        response = httpx.get(self.url + path, auth=self._auth, timeout=self._timeout_s)
        if response.status_code != 200:
            raise ScrapeError(f"{self.url}{path} answered {response.status_code}")
        return response.json()

    def _scrape(self) -> list[Sample]:
        overview = self._get("/api/overview")
        queues = self._get("/api/queues")
        if not isinstance(overview, dict) or not isinstance(queues, list):
            raise ScrapeError("the management API answered in an unexpected shape")
        return samples_from_api(overview, queues)


def samples_from_api(overview: dict[str, Any], queues: list[dict[str, Any]]) -> list[Sample]:
    out: list[Sample] = []
    totals = overview.get("object_totals") or {}
    for key, metric in (("connections", "rabbitmq.connections"), ("queues", "rabbitmq.queues")):
        value = number(totals.get(key))
        if value is not None:
            out.append(Sample(metric, value))
    stats = overview.get("message_stats") or {}
    for key, metric in (("publish", "rabbitmq.message.published"), ("deliver_get", "rabbitmq.message.delivered"),
                        ("ack", "rabbitmq.message.acknowledged")):
        out.append(Sample(metric, number(stats.get(key)) or 0.0, {"scope": "total"}))
    for queue in queues:
        labels = {"rabbitmq.queue.name": str(queue.get("name", "")), "rabbitmq.vhost": str(queue.get("vhost", "/"))}
        for key, state in (("messages_ready", "ready"), ("messages_unacknowledged", "unacknowledged")):
            value = number(queue.get(key))
            if value is not None:
                out.append(Sample("rabbitmq.message.current", value, {**labels, "state": state}))
        consumers = number(queue.get("consumers"))
        if consumers is not None:
            out.append(Sample("rabbitmq.consumer.count", consumers, labels))
        queue_stats = queue.get("message_stats") or {}
        for key, metric in (("publish", "rabbitmq.message.published"), ("deliver_get", "rabbitmq.message.delivered"),
                            ("ack", "rabbitmq.message.acknowledged")):
            out.append(Sample(metric, number(queue_stats.get(key)) or 0.0, {**labels, "scope": "queue"}))
    return out
