"""The runner: one detached process per local job that stages in, runs, stages out, records.

``python -m winslow.node.runner <job_dir>`` is started by ``LocalBackend.submit``
in a session of its own, so it outlives the server: a server killed with ``kill -9`` finds
its stages still running when it comes back, and reads how the others ended from
``status.json``. The runner holds an ``flock`` on ``runner.lock`` for its whole life and
refuses to start when ``runner.json`` or ``status.json`` already exist, which is what makes
a second launch of the same job harmless: a stage runs at most once.

The stage runs in a process group of its own (SIGTERM goes to all of it on cancel or
timeout, SIGKILL after the grace period) and dies with the runner (``PR_SET_PDEATHSIG``),
so a runner killed outright does not leave a stage holding GPUs that the server already
counts as free. Its stdout and stderr are read here, line by line, into ``log.txt`` with
a UTC timestamp each, and the runner's own events go there too, marked ``winslow``.
S3 credentials come on the runner's stdin (``jobfiles.storage_handover``), read once at
start, and are in neither its environment nor the stage's: a host stage runs as the
same user and could read ``/proc/<runner pid>/environ``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from winslow.backends.base import JobState, RunSpec
from winslow.core.outputs import RESULTS_FILE
from winslow.errors import StorageError
from winslow.node import checkpoint, container, jobfiles, logarchive, stagetools
from winslow.node.jobfiles import JobPaths, JobSpec
from winslow.node.joblog import JobLog
from winslow.node.progress import ProgressFile
from winslow.node.stagetools import pump_lines, signal_group, signal_name
from winslow.pipeline.interpolate import resolve_node_paths
from winslow.units import format_megabytes

if TYPE_CHECKING:
    from winslow.storage.objects import ObjectStore
    from winslow.storage.s3 import S3Config

log = logging.getLogger(__name__)

HOST_ENV_PASSTHROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_PATH",
)
"""Variables a host stage inherits from the runner; everything else comes from the spec."""

STORAGE_HANDOVER_MAX_BYTES = 64 * 1024
"""Most bytes read from stdin for the storage handover; it is a few hundred."""

READER_JOIN_SECONDS = 5.0
"""How long to wait for the stage's output to drain after its process ended, seconds."""

WAIT_STEP_SECONDS = 0.1
"""How often the runner checks for cancel and timeout while the stage runs, seconds."""


class CancelRequestedError(BaseException):
    """Raised by the SIGTERM handler while the runner is in stage-in or stage-out.

    A ``BaseException``, like ``KeyboardInterrupt``, so that the ``except Exception`` of a
    transfer library cannot turn a cancel into an ordinary storage failure.
    """


@dataclass(frozen=True)
class Outcome:
    """How a job ended, before stage-out had its say."""

    state: JobState
    exit_code: int | None
    reason: str | None
    results_left: bool | None = None
    """Whether the published workspace holds a ``results.json``; None when nothing was
    published or it is not known. False spares the engine looking in storage for one."""


# ---------------------------------------------------------------------------------------
# Pure helpers


def host_stage_env(
    base: Mapping[str, str],
    spec: RunSpec,
    workspace: Path,
    inputs: Path,
    stage_cache: Path | None = None,
) -> dict[str, str]:
    """Return a host stage's environment.

    A few basics from ``base`` (``HOST_ENV_PASSTHROUGH``), then ``spec.env``, then what only
    the backend knows: ``WINSLOW_WORKSPACE``, ``WINSLOW_INPUTS``, ``WINSLOW_CACHE_DIR`` (the
    node's ``stage_cache``, which outlives the run, where given) and the GPUs. The GPU
    variables are always set, to ``""`` when none were given, so that a stage cannot take a
    GPU the engine gave another; ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` makes CUDA number GPUs as
    ``nvidia-smi`` does, which is how the engine picked them.
    """
    env = {k: base[k] for k in HOST_ENV_PASSTHROUGH if k in base}
    env.update(spec.env)
    env["WINSLOW_WORKSPACE"] = str(workspace.resolve())
    env["WINSLOW_INPUTS"] = str(inputs.resolve())
    if stage_cache is not None:
        env["WINSLOW_CACHE_DIR"] = str(stage_cache.resolve())
    gpus = ",".join(str(i) for i in spec.gpu_indices)
    env["CUDA_VISIBLE_DEVICES"] = gpus
    env["NVIDIA_VISIBLE_DEVICES"] = gpus
    env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    return env


def with_node_paths(spec: RunSpec, workspace: str, inputs: str) -> RunSpec:
    """Return ``spec`` with ``${WINSLOW_WORKSPACE}`` and ``${WINSLOW_INPUTS}`` resolved.

    Only the node knows these paths, so the engine leaves the references in place in the
    command and env values, and the runner fills them in here; an escaped
    ``$${WINSLOW_WORKSPACE}`` becomes the literal ``${WINSLOW_WORKSPACE}``
    (``resolve_node_paths``).
    """

    def resolve(text: str) -> str:
        return resolve_node_paths(text, workspace, inputs)

    return dataclasses.replace(
        spec,
        command=tuple(resolve(arg) for arg in spec.command),
        env={name: resolve(value) for name, value in spec.env.items()},
    )


def exit_reason(returncode: int, *, in_container: bool = False, memory_mb: int = 0) -> str | None:
    """Return the reason for a stage's exit status; None for success."""
    if returncode == 0:
        return None
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal_name(-returncode)})"
    if in_container and returncode == 125:
        return "docker could not start the container (exit code 125); the log says why"
    if in_container and returncode == 137:
        return (
            "exited with code 137 (SIGKILL inside the container; it may have run out of "
            f"its {format_megabytes(memory_mb)} memory limit)"
        )
    return f"exited with code {returncode}"


# ---------------------------------------------------------------------------------------
# Stage-in (the log, the input cache and the transfers live in ``winslow.node.stagetools``)


def stage_in(
    job: JobSpec, paths: JobPaths, store: Callable[[], ObjectStore], jlog: JobLog
) -> JobSpec:
    """Fill ``workspace/`` from the workspace sources and ``inputs/`` from the pool.

    Tried again after each of the job's retry delays when storage or the disk fails, as
    stage-out is. Returns the job to run: with ``WINSLOW_RESUMED_FROM`` set when a
    checkpoint was restored.
    """
    spec = job.spec
    restored = stagetools.with_retries(
        "stage-in",
        lambda: stagetools.stage_in(
            paths.workspace,
            paths.inputs,
            sources=spec.workspace_sources,
            input_paths=spec.inputs,
            store=store,
            event=jlog.event,
            cache_dir=Path(job.cache_dir),
            cache_max_bytes=job.cache_max_bytes,
            resume_from=spec.resume_from,
        ),
        jlog.event,
        job.retry_delays,
    )
    if restored is None:
        return job
    env = {**spec.env, RESUMED_FROM_VARIABLE: restored.label}
    return dataclasses.replace(job, spec=dataclasses.replace(spec, env=env))


RESUMED_FROM_VARIABLE = "WINSLOW_RESUMED_FROM"
"""Set for a stage that starts from a restored checkpoint (``Checkpoint.label``)."""


def infrastructure_failure(exc: BaseException) -> bool:
    """True when ``exc`` is the node's or storage's failure, never the stage's: storage
    unreachable or refusing (``StorageError``), or the node's disk (``OSError``). A missing
    input (``NotFoundError``) or a bad name (``ValidationError``) is the pipeline's."""
    return isinstance(exc, (StorageError, OSError))


# ---------------------------------------------------------------------------------------
# Running the stage


class Signals:
    """What SIGTERM asked for; while ``interrupt`` is set it also interrupts the runner.

    ``interrupt`` is on only around stage-in and stage-out, where a cancel should cut the
    transfer short; everywhere else the flag is enough and the runner must not be cut off
    between two of its own files.
    """

    def __init__(self) -> None:
        self.cancel_requested = False
        self.interrupt = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        # The runner has no terminal; a hangup from a closing session must not end it.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Only the first request interrupts: a repeated cancel must not cut the runner off
        # while it records the first one.
        first = not self.cancel_requested
        self.cancel_requested = True
        if self.interrupt and first:
            raise CancelRequestedError()


# The stage dies with the runner (PR_SET_PDEATHSIG); see ``stagetools.die_with_parent``.
_die_with_runner = stagetools.die_with_parent


@dataclass(frozen=True)
class _Launch:
    """How the runner starts one stage: its spec with the node's paths, and the process."""

    spec: RunSpec
    argv: list[str]
    env: dict[str, str]
    in_container: bool


def run_stage(job: JobSpec, paths: JobPaths, jlog: JobLog, signals: Signals) -> Outcome:
    """Run the stage to its end, enforcing the timeout and honouring cancel."""
    launch = _launch(job, paths, jlog)
    oom_before = stagetools.oom_kill_count()
    # Looked at before the stage starts: a progress file there now is an earlier stage's.
    progress = ProgressFile(paths.workspace, jlog)
    try:
        proc = _start_process(launch, paths)
    except OSError as exc:
        argv = launch.argv
        what = "docker" if launch.in_container else repr(argv[0]) if argv else "an empty command"
        reason = f"could not start {what} on node '{job.node}': {exc.strerror or exc}"
        jlog.event(reason)
        return Outcome(JobState.FAILED, None, reason)
    returncode, stopping = _follow(proc, launch, job, paths, jlog, signals, progress)
    return _outcome(launch, returncode, stopping, oom_before, jlog)


def _launch(job: JobSpec, paths: JobPaths, jlog: JobLog) -> _Launch:
    """Fill in the node's paths and build the stage's process: in a container or on the host."""
    if job.spec.image is not None:
        launch = _container_launch(job, paths)
        name = container.container_name(launch.spec.job_id)
        jlog.event(f"starting container {name}: {shlex.join(launch.argv)}")
    else:
        spec = with_node_paths(
            job.spec, str(paths.workspace.resolve()), str(paths.inputs.resolve())
        )
        env = host_stage_env(os.environ, spec, paths.workspace, paths.inputs, _stage_cache(job))
        launch = _Launch(spec, list(spec.command), env, in_container=False)
        jlog.event(f"starting: {shlex.join(launch.argv)}")
    gpus = ",".join(str(i) for i in launch.spec.gpu_indices) or "none"
    jlog.event(f"gpus: {gpus}")
    return launch


def _stage_cache(job: JobSpec) -> Path | None:
    """The node's folder the stage keeps files in from run to run (``WINSLOW_CACHE_DIR``),
    made where missing; None when it cannot be made (the stage runs without one)."""
    from winslow.storage.nodecache import STAGE_CACHE

    folder = Path(job.cache_dir) / STAGE_CACHE
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("no stage cache at %s: %s", folder, exc)
        return None
    return folder


def _container_launch(job: JobSpec, paths: JobPaths) -> _Launch:
    spec = with_node_paths(job.spec, container.CONTAINER_WORKSPACE, container.CONTAINER_INPUTS)
    run = container.docker_run_command(
        job_id=spec.job_id,
        image=str(spec.image),
        command=spec.command,
        env=spec.env,
        workspace=paths.workspace,
        inputs=paths.inputs,
        cpus=spec.resources.cpus,
        memory_mb=spec.resources.memory_mb,
        gpu_indices=spec.gpu_indices,
        docker=shutil.which("docker") or "docker",
        stage_cache=_stage_cache(job),
    )
    # The docker client reads the -e values from its own environment.
    env = {k: os.environ[k] for k in HOST_ENV_PASSTHROUGH if k in os.environ}
    env.update(run.env)
    return _Launch(spec, list(run.argv), env, in_container=True)


def _start_process(launch: _Launch, paths: JobPaths) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        launch.argv,
        cwd=paths.workspace,
        env=launch.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_runner,
        close_fds=True,
    )


def _follow(
    proc: subprocess.Popen[bytes],
    launch: _Launch,
    job: JobSpec,
    paths: JobPaths,
    jlog: JobLog,
    signals: Signals,
    progress: ProgressFile,
) -> tuple[int, str | None]:
    """Record the started stage, log its output and wait for its end (``_wait``).

    Whatever the stage leaves in its process group dies with it; if the runner fails
    meanwhile, the stage is killed first.
    """
    started = time.monotonic()
    pgid = proc.pid  # start_new_session made it the leader of a fresh group
    readers = [
        threading.Thread(target=pump_lines, args=(proc.stdout, "stdout", jlog), daemon=True),
        threading.Thread(target=pump_lines, args=(proc.stderr, "stderr", jlog), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        _record_stage(paths, proc, launch)
        with progress:
            return _wait(proc, job, jlog, signals, started)
    except BaseException:
        # The runner is failing; the stage must not outlive the record of its run.
        signal_group(pgid, signal.SIGKILL)
        if launch.in_container:
            stagetools.docker_kill(launch.spec.job_id)
        raise
    finally:
        # Whatever the stage left behind in its group goes with it; then the pipes reach EOF.
        signal_group(pgid, signal.SIGKILL)
        for reader in readers:
            reader.join(READER_JOIN_SECONDS)


def _record_stage(paths: JobPaths, proc: subprocess.Popen[bytes], launch: _Launch) -> None:
    """Write ``stage.json``: the stage's own process, for cleanup after a crash."""
    name = container.container_name(launch.spec.job_id) if launch.in_container else None
    record = jobfiles.StageRecord(
        pid=proc.pid,
        pgid=proc.pid,
        create_time=stagetools.process_create_time(proc.pid),
        container=name,
    )
    # Not durable: it names a process, and a power cut ends the process too.
    jobfiles.write_json_atomic(paths.stage, record, durable=False)


def _outcome(
    launch: _Launch, returncode: int, stopping: str | None, oom_before: int, jlog: JobLog
) -> Outcome:
    """Log how the stage's process ended and say what that means for the job."""
    if returncode >= 0:
        jlog.event(f"exited with code {returncode}")
    else:
        jlog.event(f"killed by signal {-returncode} ({signal_name(-returncode)})")
    exit_code = returncode if returncode >= 0 else None
    spec = launch.spec
    if stopping == "cancel":
        return Outcome(JobState.CANCELLED, exit_code, "cancelled")
    if stopping == "timeout":
        return Outcome(JobState.FAILED, exit_code, f"timed out after {spec.timeout_seconds} s")
    failure = exit_reason(
        returncode, in_container=launch.in_container, memory_mb=spec.resources.memory_mb
    )
    if failure is None:
        return Outcome(JobState.SUCCEEDED, 0, None)
    reason = failure
    if returncode == -signal.SIGKILL and stagetools.oom_kill_count() > oom_before:
        reason += "; the kernel's OOM killer ran meanwhile, so it most likely ran out of memory"
    return Outcome(JobState.FAILED, exit_code, reason)


def _wait(
    proc: subprocess.Popen[bytes], job: JobSpec, jlog: JobLog, signals: Signals, started: float
) -> tuple[int, str | None]:
    """Wait for the stage; return its return code and why we stopped it, if we did."""
    spec = job.spec
    pgid = proc.pid
    stopping: str | None = None  # "cancel" or "timeout", once we started killing it
    stop_began = 0.0
    killed = False
    with stagetools.ExitWaiter(proc) as ended:
        while True:
            try:
                returncode = ended(WAIT_STEP_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if stopping is None:
                if signals.cancel_requested:
                    stopping = "cancel"
                    jlog.event("cancel requested; sending SIGTERM to the stage")
                elif spec.timeout_seconds is not None and now - started >= spec.timeout_seconds:
                    stopping = "timeout"
                    jlog.event(
                        f"timed out after {spec.timeout_seconds} s; sending SIGTERM to the stage"
                    )
                if stopping is not None:
                    stop_began = now
                    signal_group(pgid, signal.SIGTERM)
            elif not killed and now - stop_began >= job.kill_grace_seconds:
                killed = True
                jlog.event(
                    f"still running {job.kill_grace_seconds:g} s after SIGTERM; sending SIGKILL"
                )
                signal_group(pgid, signal.SIGKILL)
                if spec.image is not None:
                    stagetools.docker_kill(spec.job_id)
    return returncode, stopping


# ---------------------------------------------------------------------------------------
# The whole job


def execute(
    paths: JobPaths,
    signals: Signals,
    storage: S3Config | None = None,
    ready_store: ObjectStore | None = None,
) -> int:
    """Run the job in ``paths`` once; return the runner's exit status (0 unless it broke).

    ``storage`` is where inputs come from and outputs and the log go; without it a job
    that needs storage fails saying so. ``ready_store``, a store already built for it,
    saves building a client.
    """
    import psutil

    paths.root.mkdir(parents=True, exist_ok=True)
    lock_file = paths.runner_lock.open("a")
    try:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("job %s: another runner holds it; leaving it to that one", paths.root.name)
        return 0
    if paths.status.exists():
        log.info("job %s: already ended; nothing to do", paths.root.name)
        return 0
    if paths.runner.exists():
        # A runner started this job before and died: running it again could run the stage
        # twice. The backend reports it LOST.
        log.warning(
            "job %s: an earlier runner started it and vanished; not starting it again",
            paths.root.name,
        )
        return 0

    started_at = jobfiles.now_timestamp()
    me = psutil.Process()
    jobfiles.write_json_atomic(
        paths.runner,
        jobfiles.RunnerRecord(
            pid=me.pid,
            pgid=os.getpgid(0),
            create_time=float(me.create_time()),
            boot_time=float(psutil.boot_time()),
            started_at=started_at,
        ),
    )
    backend_dir = paths.root.parent.parent
    jobfiles.notify(backend_dir, paths.root.name)
    jlog = JobLog(paths.log)
    store = _LazyStore(storage, ready_store)
    try:
        outcome = _execute_started(paths, signals, jlog, store)
    except CancelRequestedError:
        outcome = Outcome(JobState.CANCELLED, None, "cancelled")
    except Exception as exc:  # the runner itself broke: record it, never leave the job open
        log.exception("job %s: runner failed", paths.root.name)
        outcome = Outcome(JobState.FAILED, None, f"the runner failed: {type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):
            jlog.event(outcome.reason or "")
    jlog.close()
    try:
        log_key = jobfiles.job_spec_from_json(jobfiles.read_json(paths.spec) or {}).spec.log_key
    except (ValueError, KeyError, TypeError):
        log_key = ""
    _write_status(paths, outcome, started_at)
    jobfiles.notify(backend_dir, paths.root.name)
    log.info(
        "job %s: %s%s",
        paths.root.name,
        outcome.state.value,
        f" ({outcome.reason})" if outcome.reason else "",
    )
    if log_key:
        logarchive.archive_log(paths, log_key, store, storage)
    return 0


class _LazyStore:
    """The runner's one ``ObjectStore``, built on first use: a job without inputs or
    outputs needs no storage until its log is archived, and a client costs tens of ms."""

    def __init__(self, cfg: S3Config | None, ready: ObjectStore | None = None) -> None:
        self._cfg = cfg
        # A warm runner builds the store before it forks: the child only sends requests.
        self._store: ObjectStore | None = ready if ready is not None and ready.cfg == cfg else None

    def __call__(self) -> ObjectStore:
        if self._store is None:
            from winslow.storage.objects import ObjectStore

            if self._cfg is None:
                raise RuntimeError(
                    "no object storage was handed to the runner on its stdin; "
                    "the server that launched it may have died at that moment"
                )
            self._store = ObjectStore(self._cfg)
        return self._store


def take_storage_handover() -> S3Config | None:
    """Read the storage handover from stdin, then put /dev/null in its place.

    Done once, first thing, so the stage finds no pipe to read (it gets /dev/null as its
    stdin anyway). Returns None when nothing usable came; a terminal is not read.
    """
    data = b""
    with contextlib.suppress(OSError, ValueError):
        if sys.stdin is not None and stat.S_ISFIFO(os.fstat(0).st_mode):
            data = sys.stdin.buffer.read(STORAGE_HANDOVER_MAX_BYTES)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
    finally:
        os.close(devnull)
    return jobfiles.read_storage_handover(data)


def _execute_started(
    paths: JobPaths, signals: Signals, jlog: JobLog, store: Callable[[], ObjectStore]
) -> Outcome:
    try:
        data = jobfiles.read_json(paths.spec)
        if data is None:
            raise ValueError("spec.json is missing")
        job = jobfiles.job_spec_from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        reason = f"the runner could not read {paths.spec}: {exc}"
        jlog.event(reason)
        return Outcome(JobState.FAILED, None, reason)
    spec = job.spec
    jlog.project = (spec.project_id, spec.project_name)
    jlog.event(
        f"runner started on node '{job.node}' (pid {os.getpid()}) for stage '{spec.stage}' "
        f"of project '{spec.project_name}', run {spec.run_id}, attempt {spec.attempt}"
    )
    try:
        return _stage_in_run_stage_out(job, paths, signals, jlog, store)
    finally:
        signals.interrupt = False


def _stage_in_run_stage_out(
    job: JobSpec,
    paths: JobPaths,
    signals: Signals,
    jlog: JobLog,
    store: Callable[[], ObjectStore],
) -> Outcome:
    spec = job.spec
    ran = False
    signals.interrupt = True
    try:
        if signals.cancel_requested or paths.cancel_request.exists():
            raise CancelRequestedError()
        try:
            job = stage_in(job, paths, store, jlog)
        except Exception as exc:
            outcome = _stage_in_failed(job, exc)
            jlog.event(outcome.reason or "")
        else:
            # While the stage runs, SIGTERM only sets the flag; the wait loop forwards it.
            signals.interrupt = False
            if signals.cancel_requested or paths.cancel_request.exists():
                raise CancelRequestedError()
            ran = True
            with checkpoint.watching(job.spec, paths.workspace, paths.root, store, jlog.event):
                outcome = run_stage(job, paths, jlog, signals)
            signals.interrupt = True
    except CancelRequestedError:
        signals.interrupt = True
        jlog.event("cancelled before the stage started")
        outcome = Outcome(JobState.CANCELLED, None, "cancelled")

    try:
        if ran:
            # Looked at before the publish frees the node's copy.
            results_left = os.path.lexists(paths.workspace / RESULTS_FILE)
            stagetools.publish_workspace(
                paths.workspace,
                spec.workspace_prefix,
                store,
                jlog.event,
                cache_dir=Path(job.cache_dir),
                cache_max_bytes=job.cache_max_bytes,
                delays=job.retry_delays,
            )
            outcome = dataclasses.replace(outcome, results_left=results_left)
    except CancelRequestedError:
        jlog.event("cancelled during stage-out; the workspace upload is incomplete")
        outcome = Outcome(JobState.CANCELLED, outcome.exit_code, "cancelled during stage-out")
    except Exception as exc:
        problem = (
            f"stage-out failed: could not publish the workspace: {_message(exc)}; "
            "its files stay on the node"
        )
        jlog.event(problem)
        outcome = _with_problem(outcome, problem)

    if outcome.state is JobState.SUCCEEDED:
        checkpoint.drop_checkpoints(checkpoint.checkpoint_prefixes(spec), store, jlog.event)
    summary = outcome.state.value + (f": {outcome.reason}" if outcome.reason else "")
    jlog.event(summary)
    return outcome


def _stage_in_failed(job: JobSpec, exc: Exception) -> Outcome:
    """A stage-in that failed for storage or the node is LOST (retried per ``on_lost``);
    one that failed for the pipeline (a missing input) FAILED."""
    if infrastructure_failure(exc):
        return Outcome(
            JobState.LOST,
            None,
            f"stage-in failed on node '{job.node}' after {len(job.retry_delays) + 1} attempts "
            f"(object storage or the node, not the stage): {_message(exc)}",
        )
    return Outcome(JobState.FAILED, None, f"stage-in failed: {_message(exc)}")


def _with_problem(outcome: Outcome, problem: str) -> Outcome:
    """A stage-out failure makes a run that succeeded LOST: storage failed, not the stage,
    and a retry (``on_lost``) may publish what this one could not. For others it is added
    to the reason."""
    if outcome.state is JobState.SUCCEEDED:
        return Outcome(JobState.LOST, outcome.exit_code, problem)
    return Outcome(outcome.state, outcome.exit_code, f"{outcome.reason}; {problem}")


def _write_status(paths: JobPaths, outcome: Outcome, started_at: str | None) -> None:
    jobfiles.write_json_atomic(
        paths.status,
        jobfiles.StatusRecord(
            state=outcome.state.value,
            exit_code=outcome.exit_code,
            started_at=started_at,
            ended_at=jobfiles.format_timestamp(datetime.now(UTC)),
            reason=outcome.reason,
            results_left=outcome.results_left,
        ),
    )


def _message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    return str(message) if message else f"{type(exc).__name__}: {exc}"


def run_job(
    job_dir: Path,
    take_storage: Callable[[], S3Config | None],
    ready_store: ObjectStore | None = None,
) -> int:
    """Run the job in ``job_dir`` as this process's whole work; return its exit status.

    Both runners end here: the cold one (``main``) and the child a warm runner forks
    (``winslow.node.warm``). ``take_storage`` is called once the signal handlers are in
    place, so a cancel that comes while the storage is handed over is not lost.
    """
    signals = Signals()
    signals.install()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    storage = take_storage()
    try:
        return execute(JobPaths(job_dir.resolve()), signals, storage, ready_store)
    except CancelRequestedError:
        log.warning("runner: cancelled before it recorded the job as started")
        return 0
    except Exception:
        traceback.print_exc()
        return 1


def exit_now(code: int) -> NoReturn:
    """Flush what was said and leave without waiting for threads.

    ``os._exit``: transfer threads of a stage-in cut short by cancel must not keep a
    finished runner alive; everything that matters is on disk by now.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m winslow.node.runner <job_dir>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m winslow.node.runner <job_dir>", file=sys.stderr)
        return 2
    return run_job(Path(args[0]), take_storage_handover)


if __name__ == "__main__":
    exit_now(main())
