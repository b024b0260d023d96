"""Starting a job's runner: forked by the warm runner, or a fresh Python process.

The warm runner (``winslow.node.warm``) has imported boto3 and loaded the S3 model once;
each runner it forks starts working at once. A fresh process (the cold path) pays about
0.2 s of imports per stage and stays as the fallback: for a warm runner that cannot be
started or has died, and for ``WINSLOW_WARM_RUNNER=0``. Either way the runner is a
session of its own that outlives the server, and ``on_exit(job_id)`` is called when it
ends, so the backend reads the job's status at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import psutil

import winslow
from winslow.errors import BackendUnavailableError
from winslow.node import warm
from winslow.node.jobfiles import JobPaths

log = logging.getLogger(__name__)

WITHHELD_ENV_PREFIX = "WINSLOW_"
"""The server's own settings (S3 keys, tokens, a database URL with its password) stay out
of the runner's environment, which a host stage of the same user can read in /proc."""

LAUNCH_REPLY_SECONDS = 30.0
"""How long a launch waits for the warm runner's answer; it is busy importing at first."""

RESTART_BACKOFF_SECONDS = 60.0
"""After the warm runner died, runners start cold this long before it is started again:
one that dies at start (a broken install) must not cost every stage a process."""

ExitCallback = Callable[[str], None]


class Runner(Protocol):
    """A launched runner, as the backend needs to know it before it records itself."""

    @property
    def pid(self) -> int: ...

    def running(self) -> bool: ...


def runner_env() -> dict[str, str]:
    """The environment a runner starts with: ours without our settings, and a
    ``PYTHONPATH`` that finds winslow wherever this server did, installed or not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(WITHHELD_ENV_PREFIX)}
    package_root = str(Path(winslow.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


@dataclass
class ColdRunner:
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class ForkedRunner:
    pid: int
    exited: threading.Event = field(default_factory=threading.Event)

    def running(self) -> bool:
        if self.exited.is_set():
            return False
        # The warm runner may have died and left this one to init: ask the kernel too.
        try:
            return bool(psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False


def launch_cold(
    job_id: str, paths: JobPaths, storage: bytes, node: str, on_exit: ExitCallback
) -> ColdRunner:
    """Start ``python -m winslow.node.runner`` for the job and hand it ``storage``."""
    try:
        with paths.runner_output.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "winslow.node.runner", str(paths.root)],
                cwd=paths.root,
                env=runner_env(),
                stdin=subprocess.PIPE,  # the storage handover
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: the runner must survive this server's death and
                # signals meant for the server's process group.
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        raise BackendUnavailableError(
            f"Could not start the runner of job {job_id} on node '{node}': {exc}. "
            "The engine will try again."
        ) from exc
    if proc.stdin is not None:
        # A few hundred bytes fit the pipe's buffer, so this never waits for the runner.
        try:
            with proc.stdin:
                proc.stdin.write(storage)
        except OSError as exc:  # it died at once; its status says so
            log.warning("job %s: could not hand the runner its storage: %s", job_id, exc)

    def wait() -> None:
        proc.wait()  # reaped at once: no zombie
        on_exit(job_id)

    threading.Thread(target=wait, name=f"winslow-local-wait-{job_id}", daemon=True).start()
    return ColdRunner(proc)


class WarmRunner:
    """The backend's side of ``winslow.node.warm``: start it, ask it to fork runners.

    Usage::

        warm = WarmRunner(jobs_dir, on_exit=backend.runner_exited)
        warm.start()                          # it imports in the background
        runner = warm.launch(job_id, paths, storage_handover)
        warm.close()                          # it exits; its runners keep going

    ``launch`` raises ``OSError`` when the warm runner cannot be reached; the caller
    falls back to a cold runner.
    """

    def __init__(self, jobs_dir: Path, on_exit: ExitCallback) -> None:
        self.jobs_dir = jobs_dir
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._replies: dict[str, ForkedRunner | str] = {}
        self._replied = threading.Condition()
        self._runners: dict[int, tuple[str, ForkedRunner]] = {}
        self._died_at: float | None = None

    def start(self) -> None:
        """Start the warm runner unless it runs; raises ``OSError`` when it cannot."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            if self._died_at is not None:
                wait = self._died_at + RESTART_BACKOFF_SECONDS - time.monotonic()
                if wait > 0:
                    raise OSError(f"the warm runner died; it is started again in {wait:.0f} s")
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                with self._output() as out:
                    command = [sys.executable, "-m", "winslow.node.warm", str(self.jobs_dir)]
                    self._process = subprocess.Popen(
                        [*command, str(theirs.fileno())],
                        cwd=self.jobs_dir,
                        env=runner_env(),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        pass_fds=(theirs.fileno(),),
                    )
            except OSError:
                ours.close()
                raise
            finally:
                theirs.close()
            self._control = ours
            threading.Thread(
                target=self._read,
                args=(ours, self._process),
                name="winslow-warm-runner",
                daemon=True,
            ).start()
        log.info("warm runner started as pid %d", self._process.pid)

    def _output(self) -> IO[bytes]:
        path = self.jobs_dir.parent / "warm-runner.out"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")

    def launch(self, job_id: str, paths: JobPaths, storage: bytes) -> ForkedRunner:
        """Have the warm runner fork a runner for the job; return it once forked."""
        self.start()
        request = {"job_id": job_id, "job_dir": str(paths.root), "storage": json.loads(storage)}
        with self._lock:
            control = self._control
            if control is None:
                raise OSError("the warm runner is not running")
            control.send(json.dumps(request).encode())
        with self._replied:
            self._replied.wait_for(
                lambda: job_id in self._replies or control.fileno() == -1, LAUNCH_REPLY_SECONDS
            )
            reply = self._replies.pop(job_id, None)
        if reply is None:
            raise OSError("the warm runner did not answer")
        if isinstance(reply, str):
            raise OSError(f"the warm runner could not start it: {reply}")
        return reply

    def _read(self, control: socket.socket, process: subprocess.Popen[bytes]) -> None:
        """Take the warm runner's messages until it goes; then let launches fail over."""
        with contextlib.suppress(OSError, ValueError):
            while message := control.recv(warm.MESSAGE_MAX_BYTES):
                self._take(json.loads(message))
        process.wait()
        with self._lock:
            if self._control is control:
                self._control = None
                self._died_at = time.monotonic()
            control.close()
        with self._replied:
            self._replied.notify_all()
        if process.returncode not in (0, None):
            log.warning("warm runner pid %d ended with %s", process.pid, process.returncode)

    def _take(self, message: dict[str, object]) -> None:
        """Register a forked runner here, in message order, so its exit (the next
        messages) always finds it."""
        if "exited" in message:
            with self._replied:
                job_id, runner = self._runners.pop(int(str(message["exited"])), ("", None))
            if runner is not None:
                runner.exited.set()
                # Not on this thread: the callback may wait for a lock held by a launch
                # that waits for this thread to deliver its answer.
                threading.Thread(
                    target=self._on_exit,
                    args=(job_id,),
                    name=f"winslow-exited-{job_id}",
                    daemon=True,
                ).start()
            return
        job_id = str(message.get("job_id"))
        with self._replied:
            if "pid" in message:
                runner = ForkedRunner(int(str(message["pid"])))
                self._runners[runner.pid] = (job_id, runner)
                self._replies[job_id] = runner
            else:
                self._replies[job_id] = str(message.get("error"))
            self._replied.notify_all()

    def close(self) -> None:
        """End the warm runner; the runners it forked keep running."""
        with self._lock:
            control, self._control = self._control, None
            process, self._process = self._process, None
        if control is not None:
            with contextlib.suppress(OSError):
                control.shutdown(socket.SHUT_RDWR)
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
