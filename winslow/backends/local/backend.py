"""``LocalBackend``: run stages on this machine, and find them again after a restart.

Each job is a directory under ``<data_dir>/jobs/`` (see ``jobfiles``) and a detached
runner process (see ``runner``) that outlives the server. Nothing about a job lives only
in this object's memory: ``status`` reads the directory and asks the kernel whether the
recorded runner is still the same process (pid plus create time, so a reused pid is not
taken for it), which is why a new ``LocalBackend`` on the same data dir adopts whatever a
killed server left running. Submitting is idempotent by job ID, and a runner refuses a job
another runner has started, so no stage runs twice. A server that died after writing a job
but before launching its runner is covered too: ``start`` (or a second ``submit``) launches
it, which is safe for the same reason.

A stage that names an ``image`` while no container engine answers is refused at submit
with ``SubmitRejectedError``: it could never run here, and the engine records the message
as the run's reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from winslow import defaults
from winslow.backends.base import (
    TERMINAL_JOB_STATES,
    JobEventCallback,
    JobState,
    JobStatus,
    RunSpec,
    UsageSample,
)
from winslow.backends.local.gpus import detect_gpus
from winslow.backends.local.launch import Runner, WarmRunner, launch_cold
from winslow.backends.local.telemetry import HostSampler
from winslow.backends.local.usage import UsageMeter
from winslow.core.resources import GpuInfo, NodeInfo
from winslow.errors import BackendUnavailableError, ConflictError, SubmitRejectedError
from winslow.node import container, jobfiles
from winslow.node.jobfiles import JobPaths, JobSpec

if TYPE_CHECKING:
    from datetime import datetime

    from winslow.core.telemetry import NodeSample
    from winslow.storage.s3 import S3Config

log = logging.getLogger(__name__)

LAUNCH_STALE_SECONDS = 30.0
"""A launch whose runner has not recorded itself after this long never started, seconds."""

GPU_DETECT_CACHE_SECONDS = 60.0
"""How long ``nodes`` reuses the last GPU detection (``nvidia-smi`` is slow), seconds."""

CREATE_TIME_TOLERANCE_SECONDS = 1.0
"""How far a live pid's create time may differ from the recorded one and still be ours."""

ENGINE_RECHECK_SECONDS = 5.0
"""Shortest time between two ``docker info`` calls while docker does not answer, seconds:
a burst of image stages asks once."""

RUNNER_OUTPUT_TAIL_CHARS = 300
"""Characters of ``runner.out`` quoted when a runner never started."""

_MIB = 1024 * 1024


class LocalBackend:
    """Runs stages on this machine; the embedded default backend.

    Usage::

        backend = LocalBackend(Path("/var/lib/winslow"), s3_config)
        backend.start(on_event=engine.wake)
        backend.submit(spec)              # returns at once; the runner does the work
        backend.status(spec.job_id)       # JobStatus(state=RUNNING, ...)
        backend.stop()                    # the stages keep running

    ``container_engine`` says whether ``docker`` may be used; None asks ``docker info``
    now, and again when a stage with an image is submitted while it did not answer (a
    daemon started after the server is found). ``kill_grace_seconds`` is the time between
    SIGTERM and SIGKILL when a stage is cancelled or times out.
    """

    name = "local"
    places_runs = True
    purges_killed_jobs = False
    """A killed run's job directory stays until its project is deleted, like any other."""
    logs_on_this_machine = True
    usage_interval_seconds: float | None = None
    """A sample looks at this machine (/proc, docker, ``nvidia-smi``): cheap enough each round."""
    usage_requests_per_second: float | None = None

    def __init__(
        self,
        data_dir: Path,
        storage: S3Config,
        node_name: str = "local",
        container_engine: bool | None = None,
        kill_grace_seconds: float = defaults.KILL_GRACE_SECONDS,
        cache_max_bytes: int = defaults.NODE_CACHE_MAX_BYTES,
        transfer_retry_delays: tuple[float, ...] = defaults.TRANSFER_RETRY_DELAYS,
        warm_runner: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.cache_max_bytes = cache_max_bytes
        self.transfer_retry_delays = transfer_retry_delays
        self.jobs_dir = self.data_dir / "jobs"
        self.cache_dir = self.data_dir / "cache"
        self.node_name = node_name
        self.kill_grace_seconds = kill_grace_seconds
        self._engine_problem: str | None = None
        self._engine_checked = 0.0
        self._engine_auto = container_engine is None
        if container_engine is None:
            self._engine_problem = container.probe_container_engine()
            self._engine_checked = time.monotonic()
            container_engine = self._engine_problem is None
        self.container_engine = container_engine
        self._storage = storage
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._children: dict[str, Runner] = {}
        self._warm = WarmRunner(self.jobs_dir, self._runner_exited) if warm_runner else None
        self._watched: dict[str, JobState | None] = {}
        self._on_event: JobEventCallback | None = None
        self._stopped = threading.Event()
        self._stopped.set()
        self._poller: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._gpus: tuple[GpuInfo, ...] | None = None
        self._gpus_at = 0.0
        self._host: HostSampler | None = None
        self._meter = UsageMeter()

    # Watching ----------------------------------------------------------------------------

    def start(self, on_event: JobEventCallback) -> None:
        """Adopt every unfinished job on disk and begin calling ``on_event`` on changes.

        The warm runner (``launch.WarmRunner``) starts with the first launch, not here:
        a server that runs no stage on this node never pays its imports (half a second
        of CPU, 40 MB), and the first stage waits for them once. The end of a runner
        this instance launched is reported at once; the others (left by an earlier
        server) are polled every ``defaults.LOCAL_STATUS_POLL_SECONDS``, as is the start
        of every stage.
        """
        with self._lock:
            if self._poller is not None:
                raise RuntimeError("LocalBackend.start called twice without stop")
            self._on_event = on_event
            self._stopped.clear()
            self._finish_interrupted_launches()
            adopted = 0
            for status in self.list_jobs():
                if status.state not in TERMINAL_JOB_STATES:
                    self._watched.setdefault(status.job_id, status.state)
                    adopted += 1
            self._poller = threading.Thread(
                target=self._poll, name="winslow-local-poll", daemon=True
            )
            self._poller.start()
            self._listener = threading.Thread(
                target=self._listen, name="winslow-local-events", daemon=True
            )
            self._listener.start()
        log.info(
            "local backend %s: watching %d unfinished jobs in %s",
            self.node_name,
            adopted,
            self.jobs_dir,
        )

    def stop(self) -> None:
        """Stop watching and end the warm runner; runners and stages keep running and a
        later ``start`` adopts them."""
        with self._lock:
            poller, self._poller = self._poller, None
            self._stopped.set()
        if self._warm is not None:
            self._warm.close()
        if poller is not None:
            poller.join(timeout=5 * defaults.LOCAL_STATUS_POLL_SECONDS + 1)
        listener, self._listener = self._listener, None
        if listener is not None:
            # An empty datagram wakes it now rather than at its next half-second timeout.
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s,
            ):
                s.sendto(b"", str(jobfiles.events_socket(self.data_dir)))
            listener.join(timeout=2)

    def _listen(self) -> None:
        """Hear runners say their job changed, so the engine learns it at once.

        Polling stays as the safety net: a datagram can be lost, or the path can be too
        long for a Unix socket, and then the poller finds the change a little later.
        """
        path = jobfiles.events_socket(self.data_dir)
        if len(str(path)) > jobfiles.UNIX_SOCKET_PATH_MAX:
            log.info("local backend: %s is too long for a socket; polling only", path)
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock.bind(str(path))
            sock.settimeout(0.5)
            while not self._stopped.is_set():
                try:
                    job_id = sock.recv(512).decode(errors="replace")
                except TimeoutError:
                    continue
                if not jobfiles.is_valid_job_id(job_id):
                    continue
                with self._lock:
                    self._watched.setdefault(job_id, None)
                try:
                    self._observe(job_id)
                except Exception:
                    log.exception("job %s: could not read its status", job_id)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _finish_interrupted_launches(self) -> None:
        """Launch the runners of jobs an earlier server wrote but died before starting.

        Whatever the age of their launch mark: a runner that the earlier server did start
        and that is only slow to record itself makes the new one back off.
        """
        for entry in sorted(self.jobs_dir.iterdir()):
            paths = JobPaths(entry)
            if not jobfiles.is_valid_job_id(entry.name) or not paths.spec.exists():
                continue
            if paths.runner.exists() or paths.status.exists():
                continue
            child = self._children.get(entry.name)
            if child is not None and child.running():
                continue
            log.warning(
                "job %s: written by an earlier server that stopped before starting its runner; "
                "starting it now",
                entry.name,
            )
            try:
                self._launch(entry.name, paths)
            except BackendUnavailableError as exc:
                log.error("job %s: %s", entry.name, exc.message)

    def _poll(self) -> None:
        while not self._stopped.wait(defaults.LOCAL_STATUS_POLL_SECONDS):
            with self._lock:
                job_ids = list(self._watched)
            for job_id in job_ids:
                if self._stopped.is_set():
                    return
                try:
                    self._observe(job_id)
                except Exception:  # one unreadable job must not blind us to the rest
                    log.exception("job %s: could not read its status", job_id)

    def _observe(self, job_id: str, *, force: bool = False) -> None:
        """Compare the job's state with the last one seen; report it when it changed."""
        status = self.status(job_id)
        state = status.state if status is not None else None
        with self._lock:
            changed = force or self._watched.get(job_id) != state
            if state in TERMINAL_JOB_STATES or state is None:
                self._watched.pop(job_id, None)
            else:
                self._watched[job_id] = state
            callback = self._on_event
        if changed and state in TERMINAL_JOB_STATES:
            jobfiles.free_inputs(self._paths(job_id))  # the node's disk stays within its cap
        if changed and callback is not None and not self._stopped.is_set():
            try:
                callback(job_id)
            except Exception:
                log.exception("job %s: the on_event callback failed", job_id)

    def _runner_exited(self, job_id: str) -> None:
        """A runner we launched ended (and was reaped): report its job at once."""
        with self._lock:
            child = self._children.get(job_id)
            if child is not None and not child.running():
                del self._children[job_id]
        if not self._stopped.is_set():
            self._observe(job_id, force=True)

    # Submitting --------------------------------------------------------------------------

    def submit(self, spec: RunSpec) -> None:
        """Write the job's directory and launch its runner, unless the job already exists.

        Raises ``SubmitRejectedError`` for a job ID that cannot name a directory and for
        an ``image`` without a container engine; ``BackendUnavailableError`` when the
        runner process cannot be started.
        """
        if not jobfiles.is_valid_job_id(spec.job_id):
            raise SubmitRejectedError(
                f"Job ID {spec.job_id!r} cannot name a job directory on node "
                f"'{self.node_name}'; use letters, digits and . _ : @ + = - (at most 200)."
            )
        if spec.image is not None and not self._container_engine_now():
            problem = f" ({self._engine_problem})" if self._engine_problem else ""
            raise SubmitRejectedError(
                f"stage '{spec.stage}' names image '{spec.image}' but no container engine "
                f"(docker) answers on node '{self.node_name}'{problem}; start docker "
                "(`sudo systemctl start docker`) and resume the project, which looks for it "
                "again, or remove `image:` to run `command` on the host"
            )
        paths = self._paths(spec.job_id)
        with self._lock:
            if paths.spec.exists():
                if not self._needs_relaunch(spec.job_id, paths):
                    log.debug("job %s: already submitted; not starting it again", spec.job_id)
                    return
                log.warning(
                    "job %s: was submitted before but its runner never started; starting it now",
                    spec.job_id,
                )
                self._launch(spec.job_id, paths)
                return
            paths.root.mkdir(parents=True, exist_ok=True)
            # The launch mark goes first: from the moment spec.json exists, status() must
            # see a launch under way (PENDING), never a job that was not started (LOST).
            self._mark_launch(paths)
            job = JobSpec(
                spec=spec,
                node=self.node_name,
                container_engine=self.container_engine,
                cache_dir=str(self.cache_dir),
                kill_grace_seconds=self.kill_grace_seconds,
                cache_max_bytes=self.cache_max_bytes,
                retry_delays=self.transfer_retry_delays,
            )
            # 0600: the stage's env may carry a project's secrets.
            jobfiles.write_json_atomic(paths.spec, jobfiles.job_spec_to_json(job), mode=0o600)
            self._launch(spec.job_id, paths, marked=True)

    def _container_engine_now(self) -> bool:
        """Whether docker answers; asked again (at most every few seconds) while it did not."""
        if self.container_engine or not self._engine_auto:
            return self.container_engine
        with self._lock:
            if time.monotonic() - self._engine_checked < ENGINE_RECHECK_SECONDS:
                return False
            self._engine_checked = time.monotonic()
        problem = container.probe_container_engine()
        with self._lock:
            self._engine_problem = problem
            self.container_engine = problem is None
        if problem is None:
            log.info("node %s: docker answers now; stages with image: run", self.node_name)
        return self.container_engine

    def _needs_relaunch(self, job_id: str, paths: JobPaths) -> bool:
        """True when the job was written but its runner never got going (a crash between)."""
        if paths.runner.exists() or paths.status.exists():
            return False
        child = self._children.get(job_id)
        if child is not None and child.running():
            return False
        return not self._launch_is_recent(paths)

    def _mark_launch(self, paths: JobPaths) -> None:
        """Stamp ``launch.lock`` with now. Only a mark: the runner's flock is the mutex.

        Not fsync-ed: a mark a power cut takes away makes the job look never launched,
        and submitting it again launches it once, as after any crash.
        """
        paths.launch_lock.write_text(f"{os.getpid()} {time.time()}\n")

    def _launch(self, job_id: str, paths: JobPaths, *, marked: bool = False) -> None:
        """Start the job's runner; the caller holds ``self._lock``.

        Launching twice is harmless (the second runner finds the first's flock, or its
        ``runner.json``, and exits), so this never has to be sure no launch is under way.
        The warm runner forks it when it can; a fresh process is the fallback.
        """
        if not marked:
            self._mark_launch(paths)
        storage = jobfiles.storage_handover(self._storage)
        runner: Runner | None = None
        if self._warm is not None:
            try:
                runner = self._warm.launch(job_id, paths, storage)
            except OSError as exc:
                log.warning("job %s: %s; starting a cold runner instead", job_id, exc)
        if runner is None:
            try:
                runner = launch_cold(job_id, paths, storage, self.node_name, self._runner_exited)
            except BackendUnavailableError:
                paths.launch_lock.unlink(missing_ok=True)
                raise
        if runner.running():
            self._children[job_id] = runner
        self._watched.setdefault(job_id, JobState.PENDING)
        log.info("job %s: runner started as pid %d on node %s", job_id, runner.pid, self.node_name)

    def use_storage(self, storage: S3Config) -> None:
        """Hand ``storage`` (rotated keys) to every runner started from now on."""
        self._storage = storage

    def _launch_is_recent(self, paths: JobPaths) -> bool:
        try:
            age = time.time() - paths.launch_lock.stat().st_mtime
        except FileNotFoundError:
            return False
        return age < LAUNCH_STALE_SECONDS

    # Reading -----------------------------------------------------------------------------

    def status(self, job_id: str) -> JobStatus | None:
        """Return the job's status from its directory, or None for a job never submitted here.

        ``status.json`` → its terminal state; a live runner → RUNNING; a runner that is
        gone without ``status.json`` → LOST; a job whose runner has not started yet →
        PENDING, or LOST once the launch is ``LAUNCH_STALE_SECONDS`` old (submitting it
        again then starts it).
        """
        if not jobfiles.is_valid_job_id(job_id):
            return None
        paths = self._paths(job_id)
        ended = self._read_status(job_id, paths)
        if ended is not None:
            return ended
        if not paths.spec.exists():
            return None
        runner = jobfiles.read_json(paths.runner)
        if runner is not None:
            started_at = jobfiles.parse_timestamp(runner.get("started_at"))
            if _is_alive(runner):
                return JobStatus(job_id, JobState.RUNNING, self.node_name, started_at=started_at)
            # It may have recorded its end and exited between our two reads.
            ended = self._read_status(job_id, paths)
            if ended is not None:
                return ended
            return JobStatus(
                job_id,
                JobState.LOST,
                self.node_name,
                started_at=started_at,
                reason=(
                    f"the stage's runner process (pid {runner.get('pid')}) vanished without "
                    "recording an exit status"
                ),
            )
        with self._lock:
            child = self._children.get(job_id)
        if (child is not None and child.running()) or self._launch_is_recent(paths):
            return JobStatus(job_id, JobState.PENDING, self.node_name)
        # Look once more: the runner may have started (or even finished) just now.
        ended = self._read_status(job_id, paths)
        if ended is not None:
            return ended
        if paths.runner.exists():
            return self.status(job_id)
        return JobStatus(
            job_id,
            JobState.LOST,
            self.node_name,
            reason=(
                f"the stage's runner never started on node '{self.node_name}'"
                f"{self._runner_output_hint(paths)}; submitting the job again starts it"
            ),
        )

    def list_jobs(self) -> list[JobStatus]:
        """Return the status of every job directory, in job ID order."""
        statuses: list[JobStatus] = []
        for entry in sorted(self.jobs_dir.iterdir()):
            if entry.is_dir():
                status = self.status(entry.name)
                if status is not None:
                    statuses.append(status)
        return statuses

    def logs(self, job_id: str, offset: int = 0, limit: int | None = None) -> bytes:
        """Return ``log.txt`` from byte ``offset`` on (at most ``limit`` bytes); ``b""``
        before the first line or for a job this backend does not know."""
        if not jobfiles.is_valid_job_id(job_id):
            return b""
        try:
            with self._paths(job_id).log.open("rb") as f:
                f.seek(max(offset, 0))
                return f.read(-1 if limit is None else limit)
        except FileNotFoundError:
            return b""

    def log_size(self, job_id: str) -> int | None:
        """Return how many bytes ``log.txt`` holds now, or None for an unknown job."""
        if not jobfiles.is_valid_job_id(job_id):
            return None
        try:
            return self._paths(job_id).log.stat().st_size
        except FileNotFoundError:
            return None

    def nodes(self) -> list[NodeInfo]:
        """Return this machine as the one node: its CPUs, memory and GPUs."""
        return [
            NodeInfo(
                name=self.node_name,
                cpus=float(os.cpu_count() or 1),
                memory_mb=int(psutil.virtual_memory().total // _MIB),
                gpus=self._detected_gpus(),
                attributes={"container_engine": "docker" if self.container_engine else "none"},
            )
        ]

    def usage(self, job_id: str) -> UsageSample | None:
        """Return what the job's stage uses now (see ``usage.UsageMeter``); None unless the
        stage process itself runs: not before or during stage-in, not during stage-out.

        A job seen for the first time takes ``usage.FIRST_CPU_WINDOW_SECONDS`` to measure.
        """
        status = self.status(job_id)
        if status is None or status.state is not JobState.RUNNING:
            self._meter.forget(job_id)
            return None
        paths = self._paths(job_id)
        stage = jobfiles.read_json(paths.stage)
        if stage is None or not _is_alive(stage):
            self._meter.forget(job_id)
            return None
        try:
            spec = jobfiles.job_spec_from_json(jobfiles.read_json(paths.spec) or {}).spec
        except (ValueError, KeyError, TypeError):
            return None
        return self._meter.measure(
            job_id,
            int(stage["pid"]),
            gpu_indices=spec.gpu_indices,
            container=stage.get("container") or None,
        )

    def node_stats(self, at: datetime) -> list[NodeSample]:
        """This machine's figures (``telemetry.HostSampler``; rates from the second call)."""
        with self._lock:
            if self._host is None:
                self._host = HostSampler(self.node_name, self.data_dir)
            host = self._host
        return [host.sample(at)]

    def _detected_gpus(self) -> tuple[GpuInfo, ...]:
        with self._lock:
            fresh = time.monotonic() - self._gpus_at < GPU_DETECT_CACHE_SECONDS
            if self._gpus is not None and fresh:
                return self._gpus
        gpus = detect_gpus()
        with self._lock:
            self._gpus, self._gpus_at = gpus, time.monotonic()
        return gpus

    # Stopping ----------------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """Stop the job: SIGTERM to its runner, which stops the stage and records CANCELLED.

        A job that has not started is recorded cancelled at once (its runner, if it
        comes, sees that and does nothing); a job whose runner vanished has what is left
        of its stage killed and is recorded cancelled. Cancelling an ended or unknown job
        does nothing.
        """
        if not jobfiles.is_valid_job_id(job_id):
            return
        paths = self._paths(job_id)
        if paths.status.exists() or not paths.spec.exists():
            return
        runner = jobfiles.read_json(paths.runner)
        if runner is None:
            # Leave the request first, then look again: a runner that starts now either
            # is seen here or sees the request itself.
            paths.cancel_request.touch()
            runner = jobfiles.read_json(paths.runner)
            if runner is None:
                self._record_cancelled(job_id, paths, "cancelled before it started")
                return
        if _is_alive(runner):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(runner["pid"]), signal.SIGTERM)
            log.info("job %s: cancel sent to runner pid %s", job_id, runner["pid"])
            return
        self._kill_stage_leftovers(job_id, paths)
        self._record_cancelled(job_id, paths, "cancelled after its runner vanished")

    def _record_cancelled(self, job_id: str, paths: JobPaths, reason: str) -> None:
        runner = jobfiles.read_json(paths.runner) or {}
        written = jobfiles.write_json_exclusive(
            paths.status,
            jobfiles.StatusRecord(
                state=JobState.CANCELLED.value,
                exit_code=None,
                started_at=runner.get("started_at"),
                ended_at=jobfiles.now_timestamp(),
                reason=reason,
            ),
        )
        if written:
            log.info("job %s: %s", job_id, reason)

    def _kill_stage_leftovers(self, job_id: str, paths: JobPaths) -> None:
        """Kill a stage whose runner died: its process group, and its container if any."""
        stage = jobfiles.read_json(paths.stage)
        if stage is None:
            return
        if _is_alive(stage):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(stage["pgid"]), signal.SIGKILL)
            log.warning(
                "job %s: killed stage process group %s left by a vanished runner",
                job_id,
                stage["pgid"],
            )
        if stage.get("container"):
            docker = shutil.which("docker")
            if docker is not None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    subprocess.run(
                        container.docker_kill_command(job_id, docker),
                        stdin=subprocess.DEVNULL,
                        capture_output=True,
                        timeout=15,
                        check=False,
                    )

    def remove(self, job_id: str) -> None:
        """Delete the job's directory (its project is being deleted).

        Raises ``ConflictError`` while the job is pending or running: cancel it first.
        """
        status = self.status(job_id)
        if status is None:
            return
        if status.state in (JobState.PENDING, JobState.RUNNING):
            raise ConflictError(
                f"Job {job_id} is {status.state.value} on node '{self.node_name}'; "
                "cancel it and wait for it to stop before removing it."
            )
        with self._lock:
            self._watched.pop(job_id, None)
        shutil.rmtree(self._paths(job_id).root, ignore_errors=True)
        log.info("job %s: removed", job_id)

    # Helpers -----------------------------------------------------------------------------

    def _paths(self, job_id: str) -> JobPaths:
        return JobPaths(self.jobs_dir / job_id)

    def _read_status(self, job_id: str, paths: JobPaths) -> JobStatus | None:
        data = jobfiles.read_json(paths.status)
        if data is None:
            return None
        return JobStatus(
            job_id=job_id,
            state=JobState(data["state"]),
            node=self.node_name,
            started_at=jobfiles.parse_timestamp(data.get("started_at")),
            ended_at=jobfiles.parse_timestamp(data.get("ended_at")),
            exit_code=data.get("exit_code"),
            reason=data.get("reason"),
            results_left=left if isinstance(left := data.get("results_left"), bool) else None,
        )

    def _runner_output_hint(self, paths: JobPaths) -> str:
        try:
            text = paths.runner_output.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            return ""
        if not text:
            return ""
        last = text.splitlines()[-1][-RUNNER_OUTPUT_TAIL_CHARS:]
        return f" (its output ends: {last!r})"


def _is_alive(record: dict[str, Any]) -> bool:
    """True when the pid in ``record`` runs and is the process recorded (same create time)."""
    try:
        proc = psutil.Process(int(record["pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        recorded = float(record.get("create_time") or 0.0)
        return abs(float(proc.create_time()) - recorded) < CREATE_TIME_TOLERANCE_SECONDS
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return False
    except psutil.AccessDenied:
        return True  # it exists; we may not look closer, so do not call it gone
