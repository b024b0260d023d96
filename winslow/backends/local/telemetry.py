"""Sample this machine, the local backend's one node: CPU per core, memory, disk space and
I/O, network, and each GPU's utilisation, memory, temperature and power.

CPU shares and I/O rates need two looks: psutil's per-core percentages are measured
since its previous call, and the I/O counters are turned into bytes per second against
the previous sample's (``core.telemetry.rates``). So a ``HostSampler`` lives as long as
the server, and its first sample has no rates. Loopback traffic is left out of the network
figures: it is the server talking to itself (the embedded S3, for instance).

GPUs: NVML (``pynvml`` from ``nvidia-ml-py``) when it imports and starts, kept open;
otherwise ``nvidia-smi``, whose CSV ``parse_nvidia_smi_stats`` reads (pure, so tested
with recorded output). As in ``gpus.py``, a machine with neither has no GPU figures, and
a failure is logged, never raised.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from winslow.backends.local.gpus import run_nvidia_smi
from winslow.core.telemetry import Counters, GpuSample, NodeSample, rates, with_rates

log = logging.getLogger(__name__)

NVIDIA_SMI_STATS_QUERY = (
    "--query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw",
    "--format=csv,noheader,nounits",
)
"""The ``nvidia-smi`` arguments whose output ``parse_nvidia_smi_stats`` reads."""

_MIB = 1024 * 1024
_NVML_TEMPERATURE_GPU = 0
"""``NVML_TEMPERATURE_GPU``: the die's sensor."""


def parse_nvidia_smi_stats(text: str) -> tuple[GpuSample, ...]:
    """Parse ``nvidia-smi`` with ``NVIDIA_SMI_STATS_QUERY``: one line per GPU, index first.

    A field reading ``[N/A]`` (no power sensor on many consumer cards) or
    ``[Unknown Error]`` becomes None; a line without a GPU index is skipped and logged.
    """
    gpus: list[GpuSample] = []
    for raw in text.splitlines():
        fields = [f.strip() for f in raw.split(",")]
        if not raw.strip():
            continue
        if len(fields) != 6:
            log.warning("nvidia-smi: skipping a line that does not parse: %r", raw[:200])
            continue
        try:
            index = int(fields[0])
        except ValueError:
            log.warning("nvidia-smi: skipping a line without a GPU index: %r", raw[:200])
            continue
        busy, used, total, temperature, power = (_number(f) for f in fields[1:])
        gpus.append(
            GpuSample(
                index=index,
                utilization_percent=busy,
                memory_used_mb=used,
                memory_total_mb=total,
                temperature_c=temperature,
                power_w=power,
            )
        )
    return tuple(sorted(gpus, key=lambda g: g.index))


class HostSampler:
    """Samples this machine as node ``node``; ``path`` names the filesystem whose space
    is reported (the backend's data directory, where workspaces and the cache live).

    Usage::

        sampler = HostSampler("local", data_dir)
        sample = sampler.sample(now())   # rates from the second call on
    """

    def __init__(self, node: str, path: Path) -> None:
        self.node = node
        self.path = path
        self._counters: Counters | None = None
        self._nvml: Any = None
        self._nvml_tried = False
        # psutil measures each core since its previous call: this call starts the clock.
        psutil.cpu_percent(percpu=True)

    def sample(self, at: datetime) -> NodeSample:
        """What the machine uses now, stamped ``at``."""
        memory = psutil.virtual_memory()
        try:
            disk = psutil.disk_usage(str(self.path))
            disk_used: float | None = float(disk.used)
            disk_total: float | None = float(disk.total)
        except OSError as exc:
            log.warning("telemetry: cannot read the space of %s (%s)", self.path, exc)
            disk_used = disk_total = None
        counters = _counters()
        measured = rates(self._counters, counters)
        self._counters = counters
        sample = NodeSample(
            node=self.node,
            at=at,
            cpu_percent=tuple(float(v) for v in psutil.cpu_percent(percpu=True)),
            memory_used_mb=(memory.total - memory.available) / _MIB,
            memory_total_mb=memory.total / _MIB,
            disk_used_bytes=disk_used,
            disk_total_bytes=disk_total,
            gpus=self._gpus(),
        )
        return with_rates(sample, measured)

    def _gpus(self) -> tuple[GpuSample, ...]:
        nvml = self._nvml_module()
        if nvml is not None:
            try:
                return _read_nvml(nvml)
            except Exception as exc:  # NVMLError subclasses: a driver that went away
                log.warning("telemetry: NVML failed (%s); trying nvidia-smi", exc)
                self._nvml = None
        return _read_nvidia_smi()

    def _nvml_module(self) -> Any:
        """pynvml, started once and kept open; None where it is absent or cannot start."""
        if self._nvml_tried:
            return self._nvml
        self._nvml_tried = True
        try:
            nvml: Any = importlib.import_module("pynvml")
            nvml.nvmlInit()
        except Exception as exc:  # ImportError, or NVMLError for a missing driver
            log.debug("telemetry: no NVML (%s)", exc)
            return None
        self._nvml = nvml
        return nvml


def _read_nvml(nvml: Any) -> tuple[GpuSample, ...]:
    return tuple(
        _read_nvml_gpu(nvml, index, nvml.nvmlDeviceGetHandleByIndex(index))
        for index in range(int(nvml.nvmlDeviceGetCount()))
    )


def _read_nvml_gpu(nvml: Any, index: int, handle: Any) -> GpuSample:
    readers: dict[str, Callable[[], Any]] = {
        "utilization_percent": lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu,
        "memory_used_mb": lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used / _MIB,
        "memory_total_mb": lambda: nvml.nvmlDeviceGetMemoryInfo(handle).total / _MIB,
        "temperature_c": lambda: nvml.nvmlDeviceGetTemperature(handle, _NVML_TEMPERATURE_GPU),
        "power_w": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000,  # milliwatts
    }
    figures: dict[str, float | None] = {}
    for name, read in readers.items():
        # A card without a power sensor answers NVMLError_NotSupported for that figure.
        try:
            figures[name] = float(read())
        except Exception:
            figures[name] = None
    return GpuSample(index=index, **figures)


def _read_nvidia_smi() -> tuple[GpuSample, ...]:
    output = run_nvidia_smi(NVIDIA_SMI_STATS_QUERY, "telemetry")
    return () if output is None else parse_nvidia_smi_stats(output)


def _counters() -> Counters:
    disk = None
    with contextlib.suppress(Exception):  # psutil raises on machines without disk stats
        disk = psutil.disk_io_counters()
    received = sent = None
    with contextlib.suppress(Exception):
        nics = psutil.net_io_counters(pernic=True)
        outward = [c for name, c in nics.items() if name != "lo" and not name.startswith("lo")]
        received = sum(c.bytes_recv for c in outward)
        sent = sum(c.bytes_sent for c in outward)
    return Counters(
        clock=time.monotonic(),
        disk_read=None if disk is None else int(disk.read_bytes),
        disk_written=None if disk is None else int(disk.write_bytes),
        net_received=received,
        net_sent=sent,
    )


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
