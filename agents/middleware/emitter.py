"""One OpenTelemetry MeterProvider per middleware instance: its resource names the instance
(`service.name`, `server.address`, `server.port`), and observable instruments report the latest
scrape, plus `up` (1 when the last scrape succeeded, 0 when it did not)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

from tracehouse.agents.middleware.base import UP_METRIC, MetricSpec, Poller, Receiver, ScrapeState

INSTRUMENTATION_SCOPE = "tracehouse.agents.middleware"


class InstanceMetrics:
    """The metrics of one middleware instance as of its latest scrape, reported whenever `reader`
    collects. With `interval_s`, a poller thread scrapes that often; without, whoever holds
    `state` calls `state.refresh()`."""

    def __init__(self, receiver: Receiver, reader: MetricReader, *, interval_s: float | None = None) -> None:
        self.receiver = receiver
        self.state = ScrapeState(receiver)
        self.poller = Poller(self.state, interval_s) if interval_s else None
        self.provider = MeterProvider(resource=Resource.create(receiver.resource_attributes()),
                                      metric_readers=[reader])
        meter = self.provider.get_meter(INSTRUMENTATION_SCOPE)
        meter.create_observable_gauge(UP_METRIC, [self._observe_up], unit="1",
                                      description="1 when the last scrape of the middleware succeeded, else 0")
        for spec in receiver.catalogue:
            callback = self._observer(spec)
            if spec.kind == "counter":
                meter.create_observable_counter(spec.name, [callback], unit=spec.unit, description=spec.description)
            elif spec.kind == "updowncounter":
                meter.create_observable_up_down_counter(spec.name, [callback], unit=spec.unit,
                                                        description=spec.description)
            else:
                meter.create_observable_gauge(spec.name, [callback], unit=spec.unit, description=spec.description)
        self._closed = False
        if self.poller:
            self.poller.start()

    def _observe_up(self, _options: CallbackOptions) -> Iterable[Observation]:
        snapshot = self.state.latest()
        return [] if snapshot is None else [Observation(1 if snapshot.up else 0)]

    def _observer(self, spec: MetricSpec) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            snapshot = self.state.latest()
            if snapshot is None:
                return []
            return [Observation(s.value, dict(s.attributes)) for s in snapshot.samples if s.name == spec.name]

        return observe

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Exports what is pending and closes the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.poller:
            self.poller.stop()
        try:
            self.provider.shutdown(timeout_millis=timeout_s * 1000)
        finally:
            self.state.close()
