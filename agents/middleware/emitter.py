"""One OpenTelemetry MeterProvider per middleware instance: its resource names the instance
(`service.name`, `server.address`, `server.port`), and observable instruments report the latest
scrape, plus `up` (1 when the last scrape succeeded, 0 when it did not)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from tracehouse.agents.middleware.base import UP_METRIC, MetricSpec, Receiver, ScrapeState

INSTRUMENTATION_SCOPE = "tracehouse.agents.middleware"


class InstanceMetrics:
    """The metrics of one middleware instance, collected whenever `reader` collects."""

    def __init__(self, receiver: Receiver, reader: MetricReader, *, max_age_s: float) -> None:
        self.receiver = receiver
        self.state = ScrapeState(receiver, max_age_s=max_age_s)
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

    def _observe_up(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1 if self.state.current().up else 0)]

    def _observer(self, spec: MetricSpec) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            snapshot = self.state.current()
            return [Observation(s.value, dict(s.attributes)) for s in snapshot.samples if s.name == spec.name]

        return observe

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Exports what is pending and closes the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.provider.shutdown(timeout_millis=timeout_s * 1000)
        finally:
            self.state.close()
