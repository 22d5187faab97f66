"""The RabbitMQ receiver against a RabbitMQ node of the test's own (management plugin enabled, free
ports), with messages published and consumed by a real AMQP client (pika)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_for
from tests.test_middleware_receivers import Points, Scraper, collect_until, value
from tracehouse.agents.middleware.base import UP_METRIC
from tracehouse.agents.middleware.rabbitmq_receiver import RabbitMQReceiver

pika = pytest.importorskip("pika", reason="the AMQP client pika is a test dependency (the dev extra)")

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


@dataclass
class RabbitNode:
    amqp_port: int
    management_port: int
    process: subprocess.Popen[bytes]

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_node(tmp_path: Path) -> RabbitNode:
    if not os.path.exists(RABBITMQ_SERVER):
        pytest.fail("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
    amqp_port, management_port, dist_port = free_port(), free_port(), free_port()
    (tmp_path / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (tmp_path / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}\n"
        f"management.tcp.port = {management_port}\n"
        "management.tcp.ip = 127.0.0.1\n"
        "collect_statistics_interval = 500\n")
    env = {**os.environ, "HOME": str(tmp_path), "RABBITMQ_NODENAME": f"tracehouse{amqp_port}@localhost",
           "RABBITMQ_DIST_PORT": str(dist_port), "RABBITMQ_MNESIA_BASE": str(tmp_path / "mnesia"),
           "RABBITMQ_LOG_BASE": str(tmp_path / "log"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(tmp_path / "enabled_plugins"),
           "RABBITMQ_CONFIG_FILE": str(tmp_path / "rabbitmq.conf"), "RABBITMQ_PID_FILE": str(tmp_path / "pid")}
    process = subprocess.Popen([RABBITMQ_SERVER], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    node = RabbitNode(amqp_port, management_port, process)
    try:
        wait_for(lambda: httpx.get(f"{node.management_url}/api/overview", auth=("guest", "guest"),
                                   timeout=2).status_code == 200,
                 timeout_s=90, interval_s=0.5, message="the RabbitMQ management API")
    except BaseException:
        node.stop()
        raise
    return node


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    node = start_node(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def disposable_rabbit(tmp_path: Path) -> Iterator[RabbitNode]:
    node = start_node(tmp_path)
    try:
        yield node
    finally:
        node.stop()


def test_queue_depth_and_publish_and_deliver_counts(rabbit: RabbitNode) -> None:
    queue = f"orders-{uuid.uuid4().hex[:8]}"
    receiver = RabbitMQReceiver("broker", "127.0.0.1", rabbit.management_port, url=rabbit.management_url,
                                user="guest", password="guest", amqp_port=rabbit.amqp_port)
    scraper = Scraper(receiver)
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", rabbit.amqp_port))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=queue)
        channel.confirm_delivery()
        published, consumed = 25, 10
        for i in range(published):
            channel.basic_publish(exchange="", routing_key=queue, body=f"order {i}".encode())
        for _ in range(consumed):
            method, _properties, _body = channel.basic_get(queue=queue)
            assert method is not None
            channel.basic_ack(method.delivery_tag)
        labels = {"rabbitmq.queue.name": queue, "rabbitmq.vhost": "/"}

        def settled(points: Points) -> bool:
            return (value(points, "rabbitmq.message.current", state="ready", **labels) == published - consumed
                    and value(points, "rabbitmq.message.published", scope="queue", **labels) == published
                    and value(points, "rabbitmq.message.delivered", scope="queue", **labels) == consumed)

        points = collect_until(scraper, settled, "the management API to count the messages", timeout_s=30)
        # What the management API says itself about the queue.
        own = httpx.get(f"{rabbit.management_url}/api/queues/%2F/{queue}", auth=("guest", "guest")).json()
    finally:
        connection.close()
        scraper.close()
    assert own["messages_ready"] == published - consumed
    assert value(points, "rabbitmq.message.current", state="unacknowledged", **labels) == 0
    assert value(points, "rabbitmq.consumer.count", **labels) == 0
    assert value(points, "rabbitmq.message.acknowledged", scope="queue", **labels) == consumed
    assert value(points, "rabbitmq.queues") >= 1
    assert value(points, UP_METRIC) == 1
    assert scraper.resource["server.port"] == rabbit.amqp_port
    assert scraper.resource["messaging.system"] == "rabbitmq"


def test_a_stopped_broker_reports_up_zero(disposable_rabbit: RabbitNode) -> None:
    rabbit = disposable_rabbit
    scraper = Scraper(RabbitMQReceiver("broker", "127.0.0.1", rabbit.management_port, url=rabbit.management_url,
                                       user="guest", password="guest", timeout_s=2))
    try:
        assert value(scraper.collect(), UP_METRIC) == 1
        rabbit.stop()
        assert value(scraper.collect(), UP_METRIC) == 0
    finally:
        scraper.close()


def test_wrong_credentials_count_as_down(rabbit: RabbitNode) -> None:
    scraper = Scraper(RabbitMQReceiver("broker", "127.0.0.1", rabbit.management_port, url=rabbit.management_url,
                                       user="guest", password="wrong"))
    try:
        assert value(scraper.collect(), UP_METRIC) == 0
        assert "401" in scraper.instance.state.latest().error
    finally:
        scraper.close()
