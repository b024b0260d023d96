"""Measure what a local job's stage uses: CPU, memory and its GPUs, every few seconds.

A host stage runs as the leader of a session of its own (the runner starts it with
``start_new_session``), so "the stage" is every process of that session, whatever it
forked: the kernel's ``/proc/<pid>/stat`` of each says its session, its CPU time and its
resident pages. CPU use is a rate, so it takes two looks: the meter keeps each job's last
look and divides the CPU time spent since by the wall time since; a job seen for the
first time is looked at twice, ``FIRST_CPU_WINDOW_SECONDS`` apart, and a look sooner than
that after the last one keeps the last rate (the kernel counts CPU time in 10 ms ticks).
Children a process has reaped count through its ``cutime``/``cstime``, so a stage that
runs many short commands is not undercounted. A container stage's session holds only
the ``docker`` client, so its use comes from ``docker stats`` instead. GPUs come from
``nvidia-smi`` for the indices the engine gave the run; the engine gives each GPU to one
run at a time, which is what makes the whole card's memory and utilisation the run's.

The parsers are pure (``/proc`` stat text, ``nvidia-smi`` CSV, ``docker stats`` JSON in;
numbers out) and tested with samples; the readers around them are thin and never raise:
what cannot be read is "not measurable now".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from winslow.backends.base import UsageSample
from winslow.units import MIB, parse_reported_bytes

log = logging.getLogger(__name__)

FIRST_CPU_WINDOW_SECONDS = 0.25
"""Shortest time a CPU rate is measured over: a job seen for the first time is looked at
twice this far apart, and a look sooner after the last one keeps that one's rate, seconds."""

READING_MAX_AGE_SECONDS = 600.0
"""A job's last look older than this is forgotten (the job is no longer asked about)."""

GPU_QUERY_CACHE_SECONDS = 1.0
"""How long one ``nvidia-smi`` answer serves every job of a sampling round, seconds."""

NVIDIA_SMI_USAGE_QUERY = (
    "--query-gpu=index,utilization.gpu,memory.used",
    "--format=csv,noheader,nounits",
)
"""The ``nvidia-smi`` arguments whose output ``parse_gpu_usage`` reads."""

NVIDIA_SMI_TIMEOUT_SECONDS = 10.0
"""How long ``nvidia-smi`` may take before the GPUs count as unmeasurable, seconds."""

DOCKER_STATS_TIMEOUT_SECONDS = 15.0
"""How long ``docker stats --no-stream`` may take (it looks twice, a second apart), seconds."""

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of one ``/proc/<pid>/stat`` that usage needs."""

    pid: int
    ppid: int
    session: int
    state: str
    cpu_ticks: int
    """``utime + stime + cutime + cstime``: its own CPU time and its reaped children's."""
    rss_pages: int


@dataclass(frozen=True)
class SessionReading:
    """One look at all processes of a session."""

    cpu_seconds: float
    rss_bytes: int
    processes: int


@dataclass(frozen=True)
class CpuLook:
    """A job's CPU time at one moment, to take the next look's rate against."""

    leader: int
    """The session (stage) it was taken of: a new stage process starts afresh."""
    cpu_seconds: float
    at: float
    """``time.monotonic()`` of the look."""


# ---------------------------------------------------------------------------------------
# Pure parsers


def parse_proc_stat(text: str) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None for text that is not one.

    The command name sits in parentheses and may itself hold spaces and parentheses,
    so the fields are counted from the last ``)``.
    """
    head, sep, tail = text.rpartition(")")
    if not sep:
        return None
    fields = tail.split()
    try:
        pid = int(head.split("(", 1)[0])
        # fields[0] is stat field 3 (state); utime is field 14, rss field 24.
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        return ProcStat(
            pid=pid,
            ppid=int(fields[1]),
            session=int(fields[3]),
            state=fields[0],
            cpu_ticks=utime + stime + cutime + cstime,
            rss_pages=int(fields[21]),
        )
    except (ValueError, IndexError):
        return None


def session_reading(
    stats: Iterable[ProcStat], session: int, ticks_per_second: int, page_bytes: int
) -> SessionReading | None:
    """Add up the processes of ``session``; None when none is left."""
    members = [s for s in stats if s.session == session]
    if not members:
        return None
    return SessionReading(
        cpu_seconds=sum(s.cpu_ticks for s in members) / ticks_per_second,
        rss_bytes=sum(s.rss_pages for s in members) * page_bytes,
        processes=len(members),
    )


def cpu_percent(before: CpuLook, after: CpuLook) -> float:
    """CPU use between two looks, in percent of one core; 0 when no time passed.

    Never negative: time of processes that left the session unreaped (reparented, or
    reaped by a process outside it) drops out of the sum, which must not read as a
    stage giving CPU time back.
    """
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    return max(after.cpu_seconds - before.cpu_seconds, 0.0) / elapsed * 100.0


def parse_gpu_usage(text: str, indices: Sequence[int]) -> tuple[float | None, float | None]:
    """Read ``nvidia-smi --query-gpu=index,utilization.gpu,memory.used`` CSV (no header,
    no units) for the GPUs ``indices``: their mean utilisation and summed memory in MB.

    A field a GPU cannot report (``[N/A]``, ``[Not Supported]``) leaves that GPU out of
    that figure; a figure no GPU of ``indices`` reports is None.
    """
    wanted = set(indices)
    utilisation: list[float] = []
    memory: list[float] = []
    for raw in text.splitlines():
        parts = [p.strip() for p in raw.split(",")]
        if len(parts) != 3:
            continue
        try:
            index = int(parts[0])
        except ValueError:
            continue
        if index not in wanted:
            continue
        with contextlib.suppress(ValueError):
            utilisation.append(float(parts[1]))
        with contextlib.suppress(ValueError):
            memory.append(float(parts[2]))
    return (
        sum(utilisation) / len(utilisation) if utilisation else None,
        sum(memory) if memory else None,
    )


def parse_docker_size(text: str) -> float | None:
    """Bytes in a size as ``docker stats`` prints it (``1.5GiB``, ``512kB``, ``0B``); None
    for text that is not one. Docker's ``kB``/``MB`` are powers of 1000, its ``KiB``/``MiB``
    powers of 1024 (``units.parse_reported_bytes``)."""
    try:
        return parse_reported_bytes(text)
    except ValueError:
        return None


def parse_docker_stats(text: str) -> tuple[float, float] | None:
    """Read one line of ``docker stats --no-stream --format '{{json .}}'``: the container's
    CPU (``CPUPerc``, percent of one core) and memory (``MemUsage`` before the ``/``, in
    MB); None when either is missing (``--`` while the container starts or stops)."""
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        cpu_text = str(entry.get("CPUPerc", "")).strip().rstrip("%")
        used_text = str(entry.get("MemUsage", "")).split("/", 1)[0]
        try:
            cpu = float(cpu_text)
        except ValueError:
            return None
        used = parse_docker_size(used_text)
        if used is None:
            return None
        return cpu, used / MIB
    return None


# ---------------------------------------------------------------------------------------
# Readers


def read_proc_stats(proc: Path = PROC) -> list[ProcStat]:
    """Every process's stat; processes that end while being read are left out."""
    stats: list[ProcStat] = []
    try:
        entries = os.listdir(proc)
    except OSError:
        return stats
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            text = (proc / entry / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        stat = parse_proc_stat(text)
        if stat is not None:
            stats.append(stat)
    return stats


def read_session(session: int) -> SessionReading | None:
    """All processes of ``session`` now; None when none is left or ``/proc`` is absent."""
    return session_reading(
        read_proc_stats(), session, os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    )


def query_gpu_usage() -> str | None:
    """``nvidia-smi``'s usage CSV for every GPU; None without the tool or its driver."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    return _run([binary, *NVIDIA_SMI_USAGE_QUERY], NVIDIA_SMI_TIMEOUT_SECONDS)


def query_docker_stats(container: str) -> str | None:
    """``docker stats`` of one container as a JSON line; None when docker cannot say."""
    binary = shutil.which("docker")
    if binary is None:
        return None
    argv = [binary, "stats", "--no-stream", "--format", "{{json .}}", container]
    return _run(argv, DOCKER_STATS_TIMEOUT_SECONDS)


def _run(argv: list[str], timeout: float) -> str | None:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("usage: %s failed: %s", argv[1] if len(argv) > 1 else argv[0], exc)
        return None
    if done.returncode != 0:
        log.debug(
            "usage: %s exited with %d: %s",
            " ".join(argv[:2]),
            done.returncode,
            (done.stderr or "").strip()[:300],
        )
        return None
    return done.stdout


# ---------------------------------------------------------------------------------------
# The meter


@dataclass(frozen=True)
class _LastLook:
    """A job's latest look and the CPU rate measured up to it (None: none yet)."""

    look: CpuLook
    percent: float | None


class UsageMeter:
    """Keeps each job's last CPU look and the latest GPU answer between samples.

    Thread-safe: the sampler and an API request may ask at the same time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._looks: dict[str, _LastLook] = {}
        self._gpu_answer: tuple[float, str | None] | None = None

    def measure(
        self,
        job_id: str,
        leader: int,
        gpu_indices: Sequence[int] = (),
        container: str | None = None,
    ) -> UsageSample | None:
        """What the stage led by process ``leader`` (or run in ``container``) uses now."""
        if container is not None:
            host = self._container(container)
        else:
            host = self._session(job_id, leader)
        if host is None:
            return None
        cpu, memory_mb = host
        gpu_percent, gpu_memory_mb = self._gpus(gpu_indices)
        return UsageSample(
            cpu_percent=round(cpu, 2),
            memory_mb=round(memory_mb, 2),
            gpu_percent=None if gpu_percent is None else round(gpu_percent, 2),
            gpu_memory_mb=gpu_memory_mb,
        )

    def forget(self, job_id: str) -> None:
        """Drop the job's last look (it stopped running)."""
        with self._lock:
            self._looks.pop(job_id, None)

    def _session(self, job_id: str, leader: int) -> tuple[float, float] | None:
        with self._lock:
            last = self._looks.get(job_id)
        if last is None or last.look.leader != leader:
            first = read_session(leader)
            if first is None:
                return None
            last = _LastLook(CpuLook(leader, first.cpu_seconds, time.monotonic()), None)
            time.sleep(FIRST_CPU_WINDOW_SECONDS)
        reading = read_session(leader)
        if reading is None:
            self.forget(job_id)
            return None
        after = CpuLook(leader, reading.cpu_seconds, time.monotonic())
        if last.percent is not None and after.at - last.look.at < FIRST_CPU_WINDOW_SECONDS:
            # Too soon after the last look for the kernel's 10 ms ticks to say anything:
            # its rate stands, and its look stays the baseline.
            return last.percent, reading.rss_bytes / MIB
        percent = cpu_percent(last.look, after)
        with self._lock:
            self._looks[job_id] = _LastLook(after, percent)
            stale = [
                j
                for j, seen in self._looks.items()
                if after.at - seen.look.at > READING_MAX_AGE_SECONDS
            ]
            for gone in stale:
                del self._looks[gone]
        return percent, reading.rss_bytes / MIB

    def _container(self, container: str) -> tuple[float, float] | None:
        text = query_docker_stats(container)
        return None if text is None else parse_docker_stats(text)

    def _gpus(self, indices: Sequence[int]) -> tuple[float | None, float | None]:
        if not indices:
            return None, None
        now = time.monotonic()
        with self._lock:
            cached = self._gpu_answer
        if cached is None or now - cached[0] > GPU_QUERY_CACHE_SECONDS:
            cached = (now, query_gpu_usage())
            with self._lock:
                self._gpu_answer = cached
        text = cached[1]
        return (None, None) if text is None else parse_gpu_usage(text, indices)
