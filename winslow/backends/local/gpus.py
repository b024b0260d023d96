"""Find the NVIDIA GPUs of this machine, for the local backend's one node.

NVML (through ``pynvml`` from the ``nvidia-ml-py`` package) is asked first when it can be
imported, because it answers in-process and quickly; otherwise ``nvidia-smi`` is run and
its CSV parsed by ``parse_nvidia_smi_csv``, a pure function so the parsing is tested
without a GPU. A machine with neither has no GPUs: detection never raises, it logs why.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
import subprocess
from typing import Any

from winslow.core.resources import GpuInfo

log = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = ("--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits")
"""The ``nvidia-smi`` arguments whose output ``parse_nvidia_smi_csv`` reads."""

NVIDIA_SMI_TIMEOUT_SECONDS = 20.0
"""How long ``nvidia-smi`` may take; a wedged driver can hang it for much longer, seconds."""


def detect_gpus() -> tuple[GpuInfo, ...]:
    """Return this machine's GPUs in index order; ``()`` when there are none or none answer."""
    gpus = _detect_with_nvml()
    if gpus is not None:
        return gpus
    return _detect_with_nvidia_smi()


def parse_nvidia_smi_csv(text: str) -> tuple[GpuInfo, ...]:
    """Parse ``nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits``.

    Lines that do not parse are skipped (and logged): a GPU that has fallen off the bus
    shows ``[Unknown Error]`` or ``[N/A]`` for its fields, and it must not hide the others.
    A GPU whose memory reads ``[N/A]`` is kept, marked unhealthy, with 0 MB.
    """
    gpus: list[GpuInfo] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        # GPU names contain no commas, so a plain split is exact; rsplit keeps the uuid
        # and memory fields right should a future driver add a comma to a name.
        head, sep, rest = line.partition(",")
        fields = rest.rsplit(",", 2) if sep else []
        if len(fields) != 3:
            log.warning("nvidia-smi: skipping a line that does not parse: %r", line[:200])
            continue
        index_text = head.strip()
        name, memory_text, uuid = (f.strip() for f in fields)
        try:
            index = int(index_text)
        except ValueError:
            log.warning("nvidia-smi: skipping a line without a GPU index: %r", line[:200])
            continue
        healthy = True
        try:
            memory_mb = int(float(memory_text))
        except ValueError:
            memory_mb, healthy = 0, False
        if name.startswith("[") or uuid.startswith("["):
            healthy = False
        gpus.append(
            GpuInfo(
                index=index,
                name=name,
                memory_mb=memory_mb,
                uuid=None if uuid.startswith("[") or not uuid else uuid,
                healthy=healthy,
            )
        )
    return tuple(sorted(gpus, key=lambda g: g.index))


def run_nvidia_smi(query: list[str] | tuple[str, ...], purpose: str) -> str | None:
    """nvidia-smi's output for ``query``; None, logged for ``purpose`` ("gpus",
    "telemetry"), where it is missing, fails or exits non-zero."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        log.debug("%s: no nvidia-smi on PATH", purpose)
        return None
    try:
        done = subprocess.run(
            [binary, *query],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s: nvidia-smi failed (%s)", purpose, exc)
        return None
    if done.returncode != 0:
        # nvidia-smi exits non-zero when no driver is loaded, which is a normal CPU node.
        log.info(
            "%s: nvidia-smi exited with %d (%s)",
            purpose,
            done.returncode,
            (done.stderr or done.stdout).strip()[:300],
        )
        return None
    return done.stdout


def _detect_with_nvidia_smi() -> tuple[GpuInfo, ...]:
    output = run_nvidia_smi(NVIDIA_SMI_QUERY, "gpus")
    return () if output is None else parse_nvidia_smi_csv(output)


def _detect_with_nvml() -> tuple[GpuInfo, ...] | None:
    """Ask NVML; ``None`` when pynvml is absent or NVML cannot start, so nvidia-smi is tried."""
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
    except Exception as exc:  # pynvml raises NVMLError subclasses for a missing driver
        log.debug("gpus: NVML did not start (%s); trying nvidia-smi", exc)
        return None
    try:
        gpus: list[GpuInfo] = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = _text(nvml.nvmlDeviceGetName(handle))
                memory_mb = int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // (1024 * 1024)
                uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            except Exception as exc:  # one broken GPU must not hide the healthy ones
                log.warning(
                    "gpus: NVML could not read GPU %d (%s); marking it unhealthy", index, exc
                )
                gpus.append(GpuInfo(index=index, name="unknown", memory_mb=0, healthy=False))
                continue
            gpus.append(GpuInfo(index=index, name=name, memory_mb=memory_mb, uuid=uuid))
        return tuple(gpus)
    except Exception as exc:
        log.warning("gpus: NVML failed (%s); trying nvidia-smi", exc)
        return None
    finally:
        # Shutting down a half-started NVML is best effort.
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _text(value: object) -> str:
    """NVML returns ``bytes`` in older pynvml releases and ``str`` in newer ones."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
