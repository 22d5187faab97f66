"""Builds the receivers named in the settings and exports their metrics over OTLP/HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

from tracehouse.agents.middleware.base import Receiver
from tracehouse.agents.middleware.config import ExporterSettings, MiddlewareSettings, TargetSettings
from tracehouse.agents.middleware.emitter import InstanceMetrics
from tracehouse.agents.middleware.mysql_receiver import MySQLReceiver
from tracehouse.agents.middleware.nginx_receiver import NginxReceiver
from tracehouse.agents.middleware.postgresql_receiver import PostgreSQLReceiver
from tracehouse.agents.middleware.rabbitmq_receiver import RabbitMQReceiver
from tracehouse.agents.middleware.redis_receiver import RedisReceiver

log = logging.getLogger("tracehouse.agents.middleware")


def build_receiver(target: TargetSettings) -> Receiver:
    if target.system == "redis":
        return RedisReceiver(target.name, target.host, target.port, user=target.user, password=target.password,
                             timeout_s=target.timeout_s)
    if target.system == "mysql":
        return MySQLReceiver(target.name, target.host, target.port, user=target.user, password=target.password,
                             database=target.database, timeout_s=target.timeout_s)
    if target.system == "postgresql":
        return PostgreSQLReceiver(target.name, target.host, target.port, user=target.user,
                                  password=target.password, database=target.database, timeout_s=target.timeout_s)
    if target.system == "nginx":
        return NginxReceiver(target.name, target.host, target.port, url=target.url, timeout_s=target.timeout_s)
    if target.system == "rabbitmq":
        return RabbitMQReceiver(target.name, target.host, target.port, url=target.url, user=target.user,
                                password=target.password, amqp_port=target.amqp_port, timeout_s=target.timeout_s)
    raise ValueError(f"no receiver for {target.system!r}")


def otlp_reader(exporter: ExporterSettings) -> MetricReader:
    return PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=exporter.metrics_url, timeout=exporter.timeout_s),
        export_interval_millis=exporter.interval_s * 1000,
        export_timeout_millis=exporter.timeout_s * 1000,
    )


class MiddlewareAgent:
    """All configured instances; `start()` begins periodic scrape-and-export, `shutdown()` flushes."""

    def __init__(self, settings: MiddlewareSettings,
                 reader_factory: Callable[[ExporterSettings], MetricReader] = otlp_reader) -> None:
        self.settings = settings
        self._reader_factory = reader_factory
        self.instances: list[InstanceMetrics] = []

    def start(self) -> None:
        if self.instances:
            return
        for target in self.settings.targets:
            receiver = build_receiver(target)
            self.instances.append(InstanceMetrics(receiver, self._reader_factory(self.settings.exporter),
                                                  interval_s=self.settings.exporter.interval_s))
            log.info("reading %s %s at %s:%d every %gs", target.system, target.name, target.host, target.port,
                     self.settings.exporter.interval_s)

    def shutdown(self) -> None:
        for instance in self.instances:
            try:
                instance.shutdown()
            except Exception:  # noqa: BLE001 - one instance failing to flush must not stop the others
                log.exception("shutting down %s failed", instance.receiver.name)
        self.instances.clear()
