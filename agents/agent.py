"""Wires the OpenTelemetry SDK for one process: resource, sampler, span pipeline, metric reader,
host/process metrics, heartbeat, auto-instrumentation; renews what must be renewed after fork."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from typing import Any

from tracehouse.agents.settings import AgentSettings

logger = logging.getLogger("tracehouse.agents")


def build_sampler(settings: AgentSettings) -> Any:
    from opentelemetry.sdk.trace import sampling

    # Ratio 1 and 0 are the constant samplers: same decisions, without the per-span arithmetic.
    ratio = (sampling.ALWAYS_ON if settings.sampling_ratio >= 1.0 else sampling.ALWAYS_OFF
             if settings.sampling_ratio <= 0.0 else sampling.TraceIdRatioBased(settings.sampling_ratio))
    return {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(ratio),
    }[settings.sampler]


def _tracer_provider_class() -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    class AgentTracerProvider(TracerProvider):
        """The SDK's provider, minus its after-fork resource re-detection: that runs a thread pool in the
        forked child, which can deadlock there (the pool's global lock may still be held by the fork),
        and it would replace the agent's resource, which renews its instance id itself after fork."""

        def _handle_fork(self) -> None:
            self._tracers_lock = threading.Lock()

    return AgentTracerProvider


def _meter_provider_class() -> Any:
    from opentelemetry.sdk.metrics import MeterProvider

    class AgentMeterProvider(MeterProvider):
        """The SDK's provider with the same after-fork fix as AgentTracerProvider: fresh locks only."""

        def _handle_fork(self) -> None:
            self._lock = threading.Lock()
            self._meter_lock = threading.Lock()
            MeterProvider._all_metric_readers_lock = threading.Lock()

    return AgentMeterProvider


class Agent:
    """One configured SDK. `start()` once; `shutdown()` is idempotent and flushes."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self.processor: Any = None
        self.instrumented: tuple[str, ...] = ()
        self._system_metrics: Any = None
        self._metric_readers: list[Any] = []
        self._agent_metrics: Any = None
        self._shutdown_lock = threading.Lock()
        self._stopped = False

    def start(self) -> Agent:
        from opentelemetry import metrics, trace

        from tracehouse.agents.dispatch import Dispatcher, EndpointPool
        from tracehouse.agents.exporters import TraceHouseMetricExporter, TraceHouseSpanExporter
        from tracehouse.agents.identity import InstanceIdentity, build_resource
        from tracehouse.agents.processor import BufferedSpanProcessor
        from tracehouse.agents.transport import make_transport

        settings = self.settings
        self.identity = InstanceIdentity(settings.service_port)
        self.resource = build_resource(
            service_name=settings.effective_service_name, service_version=settings.service_version,
            environment=settings.environment, extra=settings.resource_attributes, identity=self.identity)
        transports = [make_transport(endpoint, settings.protocol, settings.headers, settings.compression)
                      for endpoint in settings.effective_endpoints]
        self.pool = EndpointPool(transports, cooldown_s=settings.endpoint_cooldown_s,
                                 max_backoff_s=settings.max_backoff_s)
        self.dispatcher = Dispatcher(self.pool, request_timeout_s=settings.request_timeout_s)

        if settings.traces_enabled:
            from opentelemetry.sdk.trace import TracerProvider

            exporter = TraceHouseSpanExporter(self.dispatcher, deadline_s=settings.export_deadline_s,
                                              sanitize=settings.sanitize_db_statement)
            self.processor = BufferedSpanProcessor(
                exporter, max_queue_size=settings.max_queue_size,
                max_export_batch_size=settings.max_export_batch_size,
                schedule_delay_s=settings.schedule_delay_s, export_deadline_s=settings.export_deadline_s)
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                # The application set up its own SDK first: feed our pipeline from it.
                current.add_span_processor(self.processor)
                self.tracer_provider = current
            else:
                self.tracer_provider = _tracer_provider_class()(
                    resource=self.resource, sampler=build_sampler(settings), shutdown_on_exit=False)
                self.tracer_provider.add_span_processor(self.processor)
                trace.set_tracer_provider(self.tracer_provider)

        if settings.metrics_enabled:
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            from tracehouse.agents.metrics import AgentMetrics, SystemMetrics

            reader = PeriodicExportingMetricReader(
                TraceHouseMetricExporter(self.dispatcher, deadline_s=settings.export_deadline_s),
                export_interval_millis=settings.metrics_interval_s * 1000.0,
                export_timeout_millis=settings.export_deadline_s * 1000.0)
            self._metric_readers = [reader]
            self.meter_provider = _meter_provider_class()(resource=self.resource, metric_readers=[reader],
                                                          shutdown_on_exit=False)
            metrics.set_meter_provider(self.meter_provider)
            meter = self.meter_provider.get_meter("tracehouse.agents")
            if settings.host_metrics or settings.process_metrics:
                self._system_metrics = SystemMetrics(meter, host=settings.host_metrics,
                                                     process=settings.process_metrics)
            self._agent_metrics = AgentMetrics(meter, self.identity, self.stats)

        if settings.instrument:
            from tracehouse.agents.instrument import instrument_installed

            self.instrumented = instrument_installed(
                settings.disabled_instrumentations, metrics=settings.instrumentation_metrics).instrumented

        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)
        atexit.register(self.shutdown)
        if settings.flush_on_sigterm:
            self._flush_on_sigterm()
        return self

    def _flush_on_sigterm(self) -> None:
        """A process that leaves SIGTERM to the default action dies without running atexit, losing the
        spans still buffered (the Flask and Django development servers, plain scripts). Only there the
        agent flushes first (briefly), then lets the default action end the process as before. A server
        that handles SIGTERM itself (gunicorn, uvicorn) replaces this and exits through atexit."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def flush_then_terminate(signum: int, _frame: Any) -> None:
            try:
                self.shutdown(timeout_s=3.0)
            finally:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(signal.SIGTERM, flush_then_terminate)

    def _after_fork(self) -> None:
        """A forked worker (gunicorn, multiprocessing fork) is a new instance with its own sockets."""
        if self._stopped:
            return
        self._shutdown_lock = threading.Lock()
        if self.meter_provider is not None:
            from tracehouse.agents.forksafe import renew_locks

            renew_locks(self.meter_provider, *self._metric_readers)
        self.resource.after_fork()
        self.dispatcher.after_fork()
        if self._system_metrics is not None:
            self._system_metrics.after_fork()
        if self._agent_metrics is not None:
            self._agent_metrics.after_fork()

    def stats(self) -> dict[str, int]:
        processor = self.processor
        dispatch = self.dispatcher.stats
        return {
            "exported": processor.exported_spans if processor else 0,
            "queued": processor.queued_spans if processor else 0,
            "dropped_queue_full": processor.dropped_spans if processor else 0,
            "dropped_export": processor.failed_spans if processor else 0,
            "payloads_dropped": sum(dispatch.dropped.values()),
            "retries": dispatch.retries,
            "failovers": dispatch.failovers,
        }

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        ok = True
        if self.processor is not None:
            ok = self.processor.force_flush(int(timeout_s * 1000)) and ok
        if self.meter_provider is not None:
            remaining_ms = max(0.0, deadline - time.monotonic()) * 1000
            try:
                ok = bool(self.meter_provider.force_flush(remaining_ms)) and ok
            except Exception:  # noqa: BLE001
                ok = False
        return ok

    def shutdown(self, timeout_s: float = 10.0) -> None:
        with self._shutdown_lock:
            if self._stopped:
                return
            self._stopped = True
        deadline = time.monotonic() + timeout_s
        self.dispatcher.limit_deadline(deadline)
        try:
            if self.processor is not None:
                self.processor.shutdown(int(timeout_s * 1000))
            if self.meter_provider is not None:
                self.meter_provider.shutdown(max(0.0, deadline - time.monotonic()) * 1000)
        except Exception as exc:  # noqa: BLE001 - shutting down telemetry never fails the application
            logger.warning("tracehouse agent: shutdown: %s", exc)
        finally:
            self.dispatcher.close()
