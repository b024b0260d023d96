"""What runs next to a stage on its node: stage-in, stage-exec, stage-out.

The local runner and the Nomad tasks (``winslow stage-in``, ``stage-exec``,
``stage-out``) do the same things around a stage, so they share this module: fill the
workspace from earlier workspaces and the inputs from the resource pool, run the command
while copying its output into the log (``node/joblog.py``), and publish the workspace
and the log afterwards. Storage comes from ``WINSLOW_S3_*`` in the environment; nothing
here takes credentials as arguments, so none end up in a process list or a job spec.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from winslow import defaults
from winslow.errors import NotFoundError, StorageError, ValidationError, WinslowError
from winslow.node import jobfiles
from winslow.node.container import docker_kill_command
from winslow.node.follow import catch_up, task_log_files
from winslow.node.joblog import EventLog, JobLog, LineSplitter, log_record
from winslow.node.progress import ProgressFile
from winslow.pipeline.interpolate import resolve_node_paths
from winslow.storage.keys import end_key
from winslow.units import counted, format_bytes

if TYPE_CHECKING:
    from winslow.storage.checkpoints import Checkpoint
    from winslow.storage.objects import ObjectEntry, ObjectStore

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSFER_RETRY_DELAYS = defaults.TRANSFER_RETRY_DELAYS

KILL_GRACE_SECONDS = 10.0
"""How long ``stage-exec`` waits after SIGTERM before it sends SIGKILL, seconds."""

TIMEOUT_EXIT_CODE = 124
"""``stage-exec``'s exit status when it stopped the command for its timeout (as timeout(1))."""

NOT_STARTED_EXIT_CODE = 127
"""``stage-exec``'s exit status when the command could not be started (as a shell)."""

WAIT_STEP_SECONDS = 0.1
"""How often ``stage-exec`` checks the timeout while the command runs, seconds."""

READER_JOIN_SECONDS = 5.0
"""How long to wait for the command's output to drain after it ended, seconds."""

EXIT_STATUS_SUFFIX = ".exit"
"""``stage-exec`` leaves the command's exit status in a file named like the log plus this,
for ``stage-out``'s end record: a poststop task cannot see how its sibling ended."""

_ARG_VARIABLE = re.compile(r"WINSLOW_ARG_[0-9]+")
_PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------------------------------
# Stage-in


def stage_in(
    workspace: Path,
    inputs: Path,
    *,
    sources: Sequence[str],
    input_paths: Sequence[str],
    store: Callable[[], ObjectStore],
    event: Callable[[str], None],
    cache_dir: Path | None = None,
    cache_max_bytes: int = 0,
    resume_from: Sequence[str] = (),
) -> Checkpoint | None:
    """Fill ``workspace`` from the workspace ``sources`` in order, ``inputs`` from the pool.

    With ``resume_from`` (checkpoint prefixes, newest first) the latest checkpoint of the
    first that has one goes on top, into ``.winslow/checkpoint/``; it is returned.

    ``store`` is called only when something is to be transferred. With ``cache_dir``
    everything goes through the node's cache there (``NodeCache``, capped at
    ``cache_max_bytes``): inputs are hard-linked from it, workspace files copied; without,
    they are downloaded straight into place. Raises ``NotFoundError`` for an input that is
    neither a file nor a folder of the pool, before anything is downloaded from the pool.
    """
    from winslow.core.paths import clean_relative_path
    from winslow.node.checkpoint import restore_point
    from winslow.storage import keys
    from winslow.storage.nodecache import NodeCache, link_or_copy
    from winslow.storage.sync import materialize

    cache = NodeCache(cache_dir, cache_max_bytes) if cache_dir is not None else None
    workspace.mkdir(parents=True, exist_ok=True)
    inputs.mkdir(parents=True, exist_ok=True)
    checkpoint = restore_point(workspace, resume_from, store, event)
    layers = [*sources, checkpoint.prefix] if checkpoint is not None else list(sources)
    if layers:
        materialize(workspace, layers, store, event, cache)
    if not input_paths:
        return checkpoint
    # Look every input up before fetching any, so a missing one fails the run at once and
    # the log can say how much is coming.
    planned: list[tuple[str, str, ObjectEntry]] = []
    for raw in input_paths:
        path = clean_relative_path(raw)
        key = keys.resource_key(path)
        try:
            planned.append((path, key, store().head(key)))
            continue
        except NotFoundError:
            listing = store().list(keys.resource_prefix(path), recursive=True)
            files = [e for e in listing if not e.is_dir]
            if not files:
                raise
        for entry in files:
            file_path = f"{path}/{clean_relative_path(entry.path)}"
            planned.append((file_path, keys.resource_key(file_path), entry))
    total = sum(entry.size for _, _, entry in planned)
    event(
        f"staging in {counted(len(input_paths), 'input')} "
        f"({counted(len(planned), 'file')}, {format_bytes(total)})"
    )
    for path, key, entry in planned:
        if cache is not None:
            cached, hit = cache.resource(store(), key, path, entry)
            (inputs / path).unlink(missing_ok=True)
            link_or_copy(cached, inputs / path)
            how = "node cache hit" if hit else "downloaded"
        else:
            store().download_file(key, inputs / path)
            how = "downloaded"
        event(f"input {path}: {how} ({format_bytes(entry.size)})")
    return checkpoint


# ---------------------------------------------------------------------------------------
# Stage-out


def publish_workspace(
    workspace: Path,
    prefix: str,
    store: Callable[[], ObjectStore],
    event: Callable[[str], None],
    *,
    cache_dir: Path | None = None,
    cache_max_bytes: int = 0,
    delays: Sequence[float] = TRANSFER_RETRY_DELAYS,
) -> int:
    """Publish ``workspace`` as the next version at ``prefix``; return its file count.

    An empty workspace publishes nothing and needs no storage. Files are hashed once;
    the upload is tried again after each of ``delays``; what storage already holds is
    not sent again.
    """
    from winslow.storage.checkpoints import is_checkpoint_path
    from winslow.storage.nodecache import NodeCache, release_published
    from winslow.storage.sync import publish_snapshot, snapshot

    if not prefix:
        return 0
    # Checkpoints are the stage's private state, published on their own, never results.
    snap = snapshot(workspace, event, exclude=is_checkpoint_path)
    if not snap.records:
        return 0
    cache = NodeCache(cache_dir, cache_max_bytes) if cache_dir is not None else None
    published = with_retries(
        "stage-out: workspace upload",
        lambda: publish_snapshot(snap, prefix, store, event, cache),
        event,
        delays,
    )
    release_published(workspace, snap.records, cache)  # stored now: free the node's copy
    return published.files if published is not None else 0


def write_task_output(logs_dir: Path, task: str, out: IO[bytes]) -> None:
    """Write ``task``'s stdout, then its stderr, to ``out`` as log lines.

    Nomad's log files carry no time per line, so each line gets the time its file was
    last written: later than the line itself, never earlier. Streamed: the files may
    hold hundreds of MB.
    """
    for stream in ("stdout", "stderr"):
        for path in task_log_files(logs_dir, task, stream):
            stamp = jobfiles.format_timestamp(datetime.fromtimestamp(path.stat().st_mtime, UTC))
            splitter = LineSplitter()
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    out.writelines(log_record(stream, line, stamp) for line in splitter.feed(chunk))
            out.writelines(log_record(stream, line, stamp) for line in splitter.flush())


def with_retries(
    what: str,
    action: Callable[[], T],
    event: Callable[[str], None],
    delays: Sequence[float] = TRANSFER_RETRY_DELAYS,
) -> T:
    """Return ``action()``, trying again after each delay when storage fails.

    ``StorageError`` (storage unreachable or refusing) and ``OSError`` are retried; a
    missing object or a name storage refuses (``NotFoundError``, ``ValidationError``)
    would fail the same way again and is raised at once, as is the last failure.
    """
    attempts = len(delays) + 1
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (StorageError, OSError) as exc:
            if attempt == attempts:
                raise
            delay = delays[attempt - 1]
            event(
                f"{what}: attempt #{attempt}/{attempts} failed; will retry in {delay:g} s: "
                f"{error_message(exc)}"
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def error_message(exc: BaseException) -> str:
    """Return a Winslow error's message, or ``Type: text`` for anything else."""
    message = getattr(exc, "message", None)
    return str(message) if message else f"{type(exc).__name__}: {exc}"


def storage_from_env(env: Mapping[str, str]) -> Callable[[], ObjectStore]:
    """Return a function building the ``ObjectStore`` of ``WINSLOW_S3_*`` on first use.

    It raises ``ValidationError`` naming the variables when they are incomplete (a
    setting to fix, not a failure to retry), which only matters once something is to be
    transferred.
    """
    stores: list[ObjectStore] = []

    def store() -> ObjectStore:
        if not stores:
            from winslow.storage.objects import ObjectStore

            cfg = jobfiles.storage_config_from_env(env)
            if cfg is None:
                raise ValidationError(
                    "No object storage configured: set WINSLOW_S3_ENDPOINT, "
                    "WINSLOW_S3_ACCESS_KEY, WINSLOW_S3_SECRET_KEY and WINSLOW_S3_BUCKET."
                )
            stores.append(ObjectStore(cfg))
        return stores[0]

    return store


def run_stage_out(
    *,
    workspace: Path,
    prefix: str | None,
    log_key: str | None,
    store: Callable[[], ObjectStore],
    events: EventLog,
    log_path: Path | None = None,
    logs_dir: Path | None = None,
    task: str | None = None,
    merge_task_logs: bool = False,
    cache_dir: Path | None = None,
    cache_max_bytes: int = 0,
    delays: Sequence[float] = TRANSFER_RETRY_DELAYS,
) -> list[str]:
    """Publish the workspace to ``prefix`` and the run's log to ``log_key``; return problems.

    With ``logs_dir`` and ``task``, a task that never wrote a log file never started (its
    prestart failed), and its workspace holds no results to publish. With
    ``merge_task_logs`` (a container stage) what ``stage-follow`` did not copy of the
    task's output into ``log_path`` is added first (``follow.catch_up``). The archive is
    ``log_path`` as it was then, then stage-out's events, which go to ``log_path`` too: the
    very bytes a live reader saw, at the same offsets; spooled to a file beside
    ``log_path``. Last, the run's ``EndRecord`` goes beside the log. Each transfer is tried
    again after each of ``delays``; an empty list means everything was published.
    """
    if merge_task_logs and logs_dir is not None and task is not None and log_path is not None:
        _catch_up_task_output(logs_dir, task, log_path, events)
    # Only what was there before our own events: those are added after the task's output.
    head_size = log_path.stat().st_size if log_path is not None and log_path.is_file() else 0
    started = True
    if logs_dir is not None and task is not None:
        started = bool(
            task_log_files(logs_dir, task, "stdout") or task_log_files(logs_dir, task, "stderr")
        )
    problems: list[str] = []
    if prefix:
        if not started:
            events(f"stage-out: task '{task}' never started; the workspace is not published")
        else:
            try:
                publish_workspace(
                    workspace,
                    prefix,
                    store,
                    events,
                    cache_dir=cache_dir,
                    cache_max_bytes=cache_max_bytes,
                    delays=delays,
                )
            except (WinslowError, OSError) as exc:
                problems.append(
                    f"could not publish the workspace to {prefix}: {error_message(exc)}; "
                    "its files stay on the node"
                )
                events(f"stage-out failed: {problems[-1]}")
    if log_key:
        events(f"stage-out: archiving the log to {log_key}")
        spool = log_path.parent if log_path is not None else None
        with tempfile.NamedTemporaryFile(prefix=".archive-", dir=spool) as archive:
            if head_size and log_path is not None:
                with log_path.open("rb") as source:
                    _copy_bytes(source, archive, head_size)
            if merge_task_logs and log_path is None and logs_dir is not None and task is not None:
                write_task_output(logs_dir, task, archive)  # no log file to add it to
            archive.writelines(events.lines)
            archive.flush()
            try:
                with_retries(
                    "stage-out: log archive",
                    lambda: store().upload_file(Path(archive.name), log_key),
                    events,
                    delays,
                )
            except (WinslowError, OSError) as exc:
                problems.append(f"could not archive the log to {log_key}: {error_message(exc)}")
                events(f"stage-out failed: {problems[-1]}")
        _write_end_record(log_key, log_path, started, problems, store, events, delays)
    return problems


def _catch_up_task_output(logs_dir: Path, task: str, log_path: Path, events: EventLog) -> None:
    """Append to the run's log what of ``task``'s output is not in it yet. A failure is
    said in the log, which is then archived as it is: part of it may be in already."""
    try:
        catch_up(logs_dir, task, log_path)
    except OSError as exc:
        events(
            f"stage-out: could not add the stage's output to the log from "
            f"{logs_dir}: {error_message(exc)}"
        )


@dataclass(frozen=True)
class EndRecord:
    """How a run ended as its stage-out saw it, kept beside its log (``keys.end_key``).

    The one trace of a Nomad run that outlives its job: Nomad garbage-collects a dead job
    after 4 h, and a Winslow that was not watching then reads this instead.
    """

    written_at: datetime | None
    stage_started: bool
    """Whether the stage's task ever started (it wrote a log file)."""
    exit_code: int | None
    """The stage's exit status where ``stage-exec`` ran it; None for a container stage,
    whose exit status no other task of the allocation can see."""
    exit_message: str | None
    """``stage-exec``'s own words where the status is its (timeout, could not start)."""
    problems: tuple[str, ...]
    """What stage-out could not do (publish the workspace, archive the log)."""


def read_end_record(data: bytes) -> EndRecord | None:
    """The end record in ``data``; None for anything that is not one."""
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("version") != 1:
        return None
    exit_code = raw.get("exit_code")
    message = raw.get("exit_message")
    try:
        written = datetime.fromisoformat(str(raw.get("written_at")))
    except ValueError:
        written = None
    return EndRecord(
        written_at=written,
        stage_started=raw.get("stage_started") is True,
        exit_code=exit_code if type(exit_code) is int else None,
        exit_message=message if isinstance(message, str) else None,
        problems=tuple(str(p) for p in raw.get("problems") or () if isinstance(p, str)),
    )


def _write_end_record(
    log_key: str,
    log_path: Path | None,
    started: bool,
    problems: Sequence[str],
    store: Callable[[], ObjectStore],
    events: EventLog,
    delays: Sequence[float],
) -> None:
    """Write the end record beside the archived log, last of all stage-out does."""
    key = end_key(log_key)
    if key is None:
        return
    exit_code: int | None = None
    message: str | None = None
    if log_path is not None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            left = json.loads(log_path.with_name(log_path.name + EXIT_STATUS_SUFFIX).read_text())
            exit_code, message = int(left["exit_code"]), left.get("message")
    body = json.dumps(
        {
            "version": 1,
            "written_at": datetime.now(UTC).isoformat(),
            "stage_started": started,
            "exit_code": exit_code,
            "exit_message": message,
            "problems": list(problems),
        }
    ).encode()
    try:
        with_retries("stage-out: end record", lambda: store().put_bytes(key, body), events, delays)
    except (WinslowError, OSError) as exc:
        # The run itself is unharmed; only a Winslow that missed its end learns less.
        events(f"stage-out: could not write the end record to {key}: {error_message(exc)}")


def _copy_bytes(source: IO[bytes], target: IO[bytes], size: int) -> None:
    left = size
    while left > 0 and (chunk := source.read(min(left, 1 << 20))):
        target.write(chunk)
        left -= len(chunk)


# ---------------------------------------------------------------------------------------
# stage-exec


@dataclass(frozen=True)
class ExecResult:
    """How ``run_command`` ended: the exit status to pass on, and why, in words."""

    exit_code: int
    message: str | None = None
    """Set when the status is ours rather than the command's (timeout, could not start)."""


def exec_environment(
    base: Mapping[str, str],
    *,
    workspace: str | None = None,
    inputs: str | None = None,
    isolate_gpus: bool = False,
) -> dict[str, str]:
    """Return the command's environment built from ``base`` (ours, as Nomad gave it).

    ``WINSLOW_ARG_<n>`` variables only carried arguments past Nomad and are dropped. With
    ``workspace``/``inputs`` the ``${WINSLOW_WORKSPACE}``/``${WINSLOW_INPUTS}`` references
    in values are resolved and the two variables set, as the local runner does. With
    ``isolate_gpus`` the command sees only the GPUs Nomad's device plugin gave the task
    (``NVIDIA_VISIBLE_DEVICES``, UUIDs, which CUDA accepts), or none: without it a host
    command would see every GPU of the node.
    """
    env = {k: v for k, v in base.items() if not _ARG_VARIABLE.fullmatch(k)}
    if workspace is not None and inputs is not None:
        env = {k: resolve_node_paths(v, workspace, inputs) for k, v in env.items()}
        env["WINSLOW_WORKSPACE"] = workspace
        env["WINSLOW_INPUTS"] = inputs
    if isolate_gpus:
        gpus = env.get("NVIDIA_VISIBLE_DEVICES", "")
        if gpus in ("all", "none", "void"):
            gpus = ""  # the runtime's keywords, not devices Nomad gave this task
        env["CUDA_VISIBLE_DEVICES"] = gpus
    return env


def run_command(
    argv: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str],
    log_path: Path | None = None,
    timeout: float | None = None,
    grace: float = KILL_GRACE_SECONDS,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    workspace: Path | None = None,
) -> ExecResult:
    """Run ``argv`` in ``workdir`` to its end; return the status to exit with.

    The command's stdout and stderr are copied through to ours as they come and, with
    ``log_path``, appended to that log as timestamped lines. SIGTERM and SIGINT are passed
    on to the command's process group; SIGKILL follows ``grace`` seconds after, as it does
    after ``timeout``. The status is the command's, ``128 + n`` when signal ``n`` ended it,
    ``TIMEOUT_EXIT_CODE`` after its timeout, ``NOT_STARTED_EXIT_CODE`` when it could not
    start. With a log, what the command writes to ``workspace``'s progress file (see
    ``ProgressFile``; ``workdir`` without ``workspace``) is logged too. Must be called from
    the main thread (it installs signal handlers).
    """
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr.buffer
    jlog = JobLog(log_path, shared=True) if log_path is not None else None

    def event(message: str) -> None:
        if jlog is not None:
            jlog.event(message)

    try:
        event(f"starting: {shlex.join(argv)}")
        # Looked at before the command starts: what is there now was left by someone else.
        progress: ProgressFile | contextlib.nullcontext[None] = (
            ProgressFile(workspace or workdir, jlog)
            if jlog is not None
            else contextlib.nullcontext()
        )
        # Handlers go in before the command starts: a SIGTERM that comes as it starts (a
        # cancel, a node draining) is passed on once it has a process group, not lost.
        forwarder = _SignalForwarder()
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=workdir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=die_with_parent,
                close_fds=True,
            )
        except OSError as exc:
            forwarder.restore()
            what = repr(argv[0]) if argv else "an empty command"
            message = f"could not start {what}: {exc.strerror or exc}"
            event(message)
            return _leave_exit_status(log_path, ExecResult(NOT_STARTED_EXIT_CODE, message))
        forwarder.started(proc.pid)  # start_new_session made it the leader of a fresh group
        readers = _pump_outputs(proc, jlog, out, err)
        try:
            with progress:
                returncode, why = _supervise(proc, timeout, grace, event, forwarder)
        finally:
            forwarder.restore()
            signal_group(proc.pid, signal.SIGKILL)  # whatever it left in its group goes too
            for reader in readers:
                reader.join(READER_JOIN_SECONDS)
        return _leave_exit_status(log_path, _command_result(returncode, why, timeout, event))
    finally:
        if jlog is not None:
            jlog.close()


def _leave_exit_status(log_path: Path | None, result: ExecResult) -> ExecResult:
    """Leave ``result`` beside the log for stage-out's end record; return it."""
    if log_path is not None:
        status = {"exit_code": result.exit_code, "message": result.message}
        with contextlib.suppress(OSError):
            log_path.with_name(log_path.name + EXIT_STATUS_SUFFIX).write_text(json.dumps(status))
    return result


def _pump_outputs(
    proc: subprocess.Popen[bytes], jlog: JobLog | None, out: IO[bytes], err: IO[bytes]
) -> list[threading.Thread]:
    """Start copying the command's stdout and stderr to ``out`` and ``err`` and the log."""
    readers = [
        threading.Thread(target=pump_lines, args=(proc.stdout, "stdout", jlog, out), daemon=True),
        threading.Thread(target=pump_lines, args=(proc.stderr, "stderr", jlog, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    return readers


def _command_result(
    returncode: int, why: str | None, timeout: float | None, event: Callable[[str], None]
) -> ExecResult:
    """Log how the command ended and return the status to exit with."""
    if returncode >= 0:
        event(f"exited with code {returncode}")
    else:
        event(f"killed by signal {-returncode} ({signal_name(-returncode)})")
    if why == "timeout":
        return ExecResult(TIMEOUT_EXIT_CODE, f"timed out after {timeout:g} s")
    return ExecResult(returncode if returncode >= 0 else 128 - returncode)


class _SignalForwarder:
    """Passes SIGTERM and SIGINT on to the command's process group, from the moment it is
    made (before the command starts) until ``restore``; one that comes before the group
    exists is held and passed on by ``started``. ``stopping`` is (why, when) of the first."""

    def __init__(self) -> None:
        self.stopping: list[tuple[str, float]] = []
        self._pgid: int | None = None
        self._held: list[int] = []
        self._previous = {
            sig: signal.signal(sig, self._forward) for sig in (signal.SIGTERM, signal.SIGINT)
        }

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        if self._pgid is None:
            self._held.append(signum)
        else:
            signal_group(self._pgid, signum)
        if not self.stopping:
            self.stopping.append((f"signal {signal_name(signum)}", time.monotonic()))

    def started(self, pgid: int) -> None:
        self._pgid = pgid
        held, self._held = self._held, []
        for signum in held:
            signal_group(pgid, signum)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _supervise(
    proc: subprocess.Popen[bytes],
    timeout: float | None,
    grace: float,
    event: Callable[[str], None],
    forwarder: _SignalForwarder,
) -> tuple[int, str | None]:
    """Wait for ``proc`` (signals go on through ``forwarder``); enforce the timeout. Return
    its code and why we stopped it."""
    pgid = proc.pid
    started = time.monotonic()
    stopping = forwarder.stopping
    killed = False
    while True:
        try:
            return proc.wait(timeout=WAIT_STEP_SECONDS), (stopping[0][0] if stopping else None)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if not stopping and timeout is not None and now - started >= timeout:
            event(f"timed out after {timeout:g} s; sending SIGTERM to the stage")
            stopping.append(("timeout", now))
            signal_group(pgid, signal.SIGTERM)
        elif stopping and not killed and now - stopping[0][1] >= grace:
            killed = True
            event(f"still running {grace:g} s after SIGTERM; sending SIGKILL")
            signal_group(pgid, signal.SIGKILL)


def pump_lines(stream: Any, name: str, jlog: JobLog | None, out: IO[bytes] | None = None) -> None:
    """Copy one of a command's pipes, a line at a time, into the log (and to ``out``)."""
    splitter = LineSplitter()
    fd = stream.fileno()
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            if out is not None:
                with contextlib.suppress(OSError, ValueError):
                    out.write(chunk)
                    out.flush()
            if jlog is not None:
                for line in splitter.feed(chunk):
                    jlog.line(name, line)
        if jlog is not None:
            for line in splitter.flush():
                jlog.line(name, line)
    finally:
        stream.close()


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group that may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 99`` for numbers with no name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _load_libc() -> Any:
    # Loaded at import, before any fork: dlopen in a forked child of a threaded process
    # can deadlock.
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def die_with_parent() -> None:
    """In a child before exec: be killed when the process that started it dies (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# The stage's process, as the runner watches it ---------------------------------------

DOCKER_KILL_TIMEOUT_SECONDS = 15.0
"""How long ``docker kill`` may take when the grace period is over, seconds."""


def oom_kill_count() -> int:
    """Return the kernel's OOM-kill count (system-wide plus this cgroup), 0 if unreadable."""
    total = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                total += int(line.split()[1])
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                events = Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "memory.events"
                for event in events.read_text().splitlines():
                    if event.startswith("oom_kill "):
                        total += int(event.split()[1])
    return total


class ExitWaiter:
    """A wait with a timeout that returns the moment the stage exits.

    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which a stage of a few
    milliseconds would feel; a pidfd (Linux 5.3+) becomes readable when the process
    ends, so ``select`` wakes at once. Elsewhere the polling wait stays.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        try:
            self.pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def __call__(self, timeout: float) -> int:
        if self.pidfd is None:
            return self.proc.wait(timeout=timeout)
        readable, _, _ = select.select([self.pidfd], [], [], timeout)
        if not readable:
            raise subprocess.TimeoutExpired(self.proc.args, timeout)
        return self.proc.wait()

    def __enter__(self) -> ExitWaiter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)


def docker_kill(job_id: str) -> None:
    """SIGKILL to the docker client does not stop its container; ask the daemon."""
    argv = docker_kill_command(job_id, shutil.which("docker") or "docker")
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=DOCKER_KILL_TIMEOUT_SECONDS,
            check=False,
        )


def process_create_time(pid: int) -> float:
    """psutil's create time of ``pid``; 0.0 for a process that is gone."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0
