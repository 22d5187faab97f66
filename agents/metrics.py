"""Host and process metrics from psutil, the agent heartbeat and the agent's own counters, as
observable OpenTelemetry instruments read by the periodic metric reader (every 10 s by default).

Names, units and attributes follow the OpenTelemetry semantic conventions for system and process
metrics (system.cpu.utilization with cpu.mode, system.memory.usage with system.memory.state, ...).
Per-core CPU points carry `cpu.logical_number`; the machine-wide points do not.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from tracehouse.agents.identity import InstanceIdentity

HEARTBEAT_METRIC = "tracehouse.agent.heartbeat"
Callback = Callable[[CallbackOptions], Iterable[Observation]]

# psutil cpu_times fields -> semantic-convention cpu.mode
CPU_MODES = {"user": "user", "nice": "nice", "system": "system", "idle": "idle", "iowait": "iowait",
             "irq": "interrupt", "softirq": "interrupt", "steal": "steal"}


def _cpu_mode_seconds(times: Any) -> dict[str, float]:
    modes: dict[str, float] = {}
    for name, mode in CPU_MODES.items():
        value = getattr(times, name, None)
        if value is not None:
            modes[mode] = modes.get(mode, 0.0) + float(value)
    return modes


def cpu_utilization(previous: dict[str, float], current: dict[str, float]) -> dict[str, float]:
    """Share of elapsed CPU time per mode between two cpu_times readings (0..1, summing to 1)."""
    deltas = {mode: max(0.0, current[mode] - previous.get(mode, 0.0)) for mode in current}
    total = sum(deltas.values())
    if total <= 0:
        return {}
    return {mode: delta / total for mode, delta in deltas.items()}


class SystemMetrics:
    """Observable instruments over psutil; every callback swallows its own errors."""

    def __init__(self, meter: Meter, *, host: bool, process: bool) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        self._cpu_count = psutil.cpu_count() or 1
        self._last_cpu_total = _cpu_mode_seconds(psutil.cpu_times())
        self._last_cpu_per_core = [_cpu_mode_seconds(t) for t in psutil.cpu_times(percpu=True)]
        self._last_process_cpu = self._process_cpu_seconds()
        self._last_process_time = time.monotonic()
        if host:
            self._register_host(meter)
        if process:
            self._register_process(meter)

    def after_fork(self) -> None:
        self._process = self._psutil.Process()
        self._last_process_cpu = self._process_cpu_seconds()
        self._last_process_time = time.monotonic()

    def _process_cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    # -- host ------------------------------------------------------------------------------------
    def _register_host(self, meter: Meter) -> None:
        gauge, updown, counter = (meter.create_observable_gauge, meter.create_observable_up_down_counter,
                                  meter.create_observable_counter)
        gauge("system.cpu.utilization", [_safe(self._cpu_utilization)], unit="1",
              description="Share of CPU time per mode, machine-wide and per logical CPU")
        for window, index in (("1m", 0), ("5m", 1), ("15m", 2)):
            gauge(f"system.cpu.load_average.{window}", [_safe(self._load_average(index))], unit="{thread}",
                  description=f"Load average over {window}")
        updown("system.cpu.logical.count", [_safe(lambda _o: [Observation(self._cpu_count)])], unit="{cpu}")
        updown("system.memory.usage", [_safe(self._memory_usage)], unit="By",
               description="Memory in use per state (used, free, cached, buffers)")
        updown("system.memory.limit", [_safe(lambda _o: [Observation(self._psutil.virtual_memory().total)])],
               unit="By")
        gauge("system.memory.utilization", [_safe(self._memory_utilization)], unit="1")
        updown("linux.memory.available", [_safe(lambda _o: [Observation(self._psutil.virtual_memory().available)])],
               unit="By", description="Memory available for starting new applications, without swapping")
        updown("system.paging.usage", [_safe(self._swap_usage)], unit="By")
        counter("system.disk.io", [_safe(self._disk(("read_bytes", "write_bytes")))], unit="By")
        counter("system.disk.operations", [_safe(self._disk(("read_count", "write_count")))], unit="{operation}")
        updown("system.filesystem.usage", [_safe(self._filesystem_usage)], unit="By")
        gauge("system.filesystem.utilization", [_safe(self._filesystem_utilization)], unit="1")
        counter("system.network.io", [_safe(self._network(("bytes_sent", "bytes_recv")))], unit="By")
        counter("system.network.packets", [_safe(self._network(("packets_sent", "packets_recv")))],
                unit="{packet}")
        counter("system.network.errors", [_safe(self._network(("errout", "errin")))], unit="{error}")
        counter("system.network.dropped", [_safe(self._network(("dropout", "dropin")))], unit="{packet}")

    def _cpu_utilization(self, _options: CallbackOptions) -> list[Observation]:
        psutil = self._psutil
        observations: list[Observation] = []
        total = _cpu_mode_seconds(psutil.cpu_times())
        for mode, share in cpu_utilization(self._last_cpu_total, total).items():
            observations.append(Observation(share, {"cpu.mode": mode}))
        self._last_cpu_total = total
        per_core = [_cpu_mode_seconds(t) for t in psutil.cpu_times(percpu=True)]
        for number, current in enumerate(per_core):
            previous = self._last_cpu_per_core[number] if number < len(self._last_cpu_per_core) else {}
            for mode, share in cpu_utilization(previous, current).items():
                observations.append(Observation(share, {"cpu.mode": mode, "cpu.logical_number": number}))
        self._last_cpu_per_core = per_core
        return observations

    def _load_average(self, index: int) -> Callback:
        def observe(_options: CallbackOptions) -> list[Observation]:
            return [Observation(float(self._psutil.getloadavg()[index]))]
        return observe

    def _memory_usage(self, _options: CallbackOptions) -> list[Observation]:
        memory = self._psutil.virtual_memory()
        states = {"used": memory.used, "free": memory.free}
        for name, state in (("cached", "cached"), ("buffers", "buffers")):
            if hasattr(memory, name):
                states[state] = getattr(memory, name)
        return [Observation(int(value), {"system.memory.state": state}) for state, value in states.items()]

    def _memory_utilization(self, _options: CallbackOptions) -> list[Observation]:
        memory = self._psutil.virtual_memory()
        return [Observation(memory.used / memory.total if memory.total else 0.0, {"system.memory.state": "used"}),
                Observation(memory.available / memory.total if memory.total else 0.0,
                            {"system.memory.state": "available"})]

    def _swap_usage(self, _options: CallbackOptions) -> list[Observation]:
        swap = self._psutil.swap_memory()
        return [Observation(int(swap.used), {"system.paging.state": "used"}),
                Observation(int(swap.free), {"system.paging.state": "free"})]

    def _disk(self, fields: tuple[str, str]) -> Callback:
        def observe(_options: CallbackOptions) -> list[Observation]:
            counters = self._psutil.disk_io_counters(perdisk=True) or {}
            observations = []
            for device, values in counters.items():
                for direction, name in zip(("read", "write"), fields, strict=True):
                    observations.append(Observation(int(getattr(values, name)),
                                                    {"system.device": device, "disk.io.direction": direction}))
            return observations
        return observe

    def _partitions(self) -> list[tuple[Any, Any]]:
        result = []
        for partition in self._psutil.disk_partitions(all=False):
            try:
                result.append((partition, self._psutil.disk_usage(partition.mountpoint)))
            except (OSError, PermissionError):
                continue
        return result

    def _filesystem_usage(self, _options: CallbackOptions) -> list[Observation]:
        observations = []
        for partition, usage in self._partitions():
            base = {"system.device": partition.device, "system.filesystem.mountpoint": partition.mountpoint,
                    "system.filesystem.type": partition.fstype}
            observations.append(Observation(int(usage.used), {**base, "system.filesystem.state": "used"}))
            observations.append(Observation(int(usage.free), {**base, "system.filesystem.state": "free"}))
        return observations

    def _filesystem_utilization(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(usage.percent / 100.0, {"system.device": partition.device,
                                                    "system.filesystem.mountpoint": partition.mountpoint,
                                                    "system.filesystem.type": partition.fstype})
                for partition, usage in self._partitions()]

    def _network(self, fields: tuple[str, str]) -> Callback:
        def observe(_options: CallbackOptions) -> list[Observation]:
            counters = self._psutil.net_io_counters(pernic=True) or {}
            observations = []
            for interface, values in counters.items():
                for direction, name in zip(("transmit", "receive"), fields, strict=True):
                    observations.append(Observation(int(getattr(values, name)),
                                                    {"network.interface.name": interface,
                                                     "network.io.direction": direction}))
            return observations
        return observe

    # -- process ---------------------------------------------------------------------------------
    def _register_process(self, meter: Meter) -> None:
        meter.create_observable_gauge("process.cpu.utilization", [_safe(self._process_cpu_utilization)], unit="1",
                                      description="CPU time used by this process per elapsed time, per CPU")
        meter.create_observable_counter("process.cpu.time", [_safe(self._process_cpu_time)], unit="s")
        meter.create_observable_up_down_counter(
            "process.memory.usage", [_safe(lambda _o: [Observation(int(self._process.memory_info().rss))])],
            unit="By", description="Resident set size")
        meter.create_observable_up_down_counter(
            "process.memory.virtual", [_safe(lambda _o: [Observation(int(self._process.memory_info().vms))])],
            unit="By")
        meter.create_observable_up_down_counter(
            "process.thread.count", [_safe(lambda _o: [Observation(self._process.num_threads())])],
            unit="{thread}")
        if hasattr(self._process, "num_fds"):
            meter.create_observable_up_down_counter(
                "process.open_file_descriptor.count", [_safe(lambda _o: [Observation(self._process.num_fds())])],
                unit="{file_descriptor}")
        meter.create_observable_counter("cpython.gc.collections", [_safe(self._gc_collections)],
                                        unit="{collection}", description="Garbage collections per generation")

    def _process_cpu_utilization(self, _options: CallbackOptions) -> list[Observation]:
        now = time.monotonic()
        cpu_s = self._process_cpu_seconds()
        elapsed_s = now - self._last_process_time
        share = (cpu_s - self._last_process_cpu) / (elapsed_s * self._cpu_count) if elapsed_s > 0 else 0.0
        self._last_process_cpu, self._last_process_time = cpu_s, now
        return [Observation(max(0.0, share))]

    def _process_cpu_time(self, _options: CallbackOptions) -> list[Observation]:
        times = self._process.cpu_times()
        return [Observation(float(times.user), {"cpu.mode": "user"}),
                Observation(float(times.system), {"cpu.mode": "system"})]

    @staticmethod
    def _gc_collections(_options: CallbackOptions) -> list[Observation]:
        return [Observation(int(stats.get("collections", 0)), {"cpython.gc.generation": generation})
                for generation, stats in enumerate(gc.get_stats())]


class AgentMetrics:
    """The heartbeat and the agent's own delivery counters, sent on the same path as the data."""

    def __init__(self, meter: Meter, identity: InstanceIdentity, stats: Callable[[], dict[str, int]]) -> None:
        self._identity = identity
        self._stats = stats
        self._started = time.monotonic()
        meter.create_observable_gauge(
            HEARTBEAT_METRIC, [_safe(self._heartbeat)], unit="1",
            description="1 per interval while this process runs; carries service.instance.id")
        meter.create_observable_counter("tracehouse.agent.spans.exported", [_safe(self._counter("exported"))],
                                        unit="{span}")
        meter.create_observable_counter("tracehouse.agent.spans.dropped", [_safe(self._dropped)], unit="{span}",
                                        description="Spans lost: buffer full (oldest dropped) or export given up")
        meter.create_observable_up_down_counter("tracehouse.agent.spans.queued", [_safe(self._counter("queued"))],
                                                unit="{span}")

    def after_fork(self) -> None:
        self._started = time.monotonic()

    def _heartbeat(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(1, {"service.instance.id": self._identity.instance_id, "process.pid": os.getpid()})]

    def _counter(self, name: str) -> Callback:
        def observe(_options: CallbackOptions) -> list[Observation]:
            return [Observation(int(self._stats().get(name, 0)))]
        return observe

    def _dropped(self, _options: CallbackOptions) -> list[Observation]:
        stats = self._stats()
        return [Observation(int(stats.get("dropped_queue_full", 0)), {"reason": "queue_full"}),
                Observation(int(stats.get("dropped_export", 0)), {"reason": "export_failed"})]


def _safe(callback: Callback) -> Callback:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        try:
            return list(callback(options))
        except Exception:  # noqa: BLE001 - one failing probe must not cost the other metrics
            return []
    return observe
