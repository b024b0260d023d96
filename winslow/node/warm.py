"""The warm runner: one long-lived process per node that forks a runner for each job.

A cold runner (``python -m winslow.node.runner``) spends about 0.2 s importing boto3 and
loading the S3 model before it does anything, on every stage. This process pays that
once: it imports what a runner needs, builds one S3 client so the model is loaded, and
then forks a child per job, which starts with all of it in memory and goes straight to
``runner.run_job``. A fork of a process with no threads is safe; this one never starts
any.

``python -m winslow.node.warm <jobs_dir> <fd>`` is started by the local backend with its
end of the control socket as ``fd`` (a ``SOCK_SEQPACKET`` pair: one message per launch,
and unlike a pipe it cannot be opened again through ``/proc``, so nobody else reads the
S3 keys that travel on it). Messages are JSON:

- backend → here: ``{"job_id": "...", "job_dir": "...", "storage": {...}}`` launches a
  runner for that job;
- here → backend: ``{"job_id": "...", "pid": N}`` once forked, or ``{"job_id": "...",
  "error": "..."}``; ``{"exited": N, "code": C}`` when a runner ends (reaped here, so no
  zombie stays).

Each child is what a cold runner is: a session of its own, stdin ``/dev/null``, output
to the job's ``runner.out``, the control socket closed. So it outlives this process and
the server alike; the files in the job folder stay the truth. This process ends when the
backend closes its end (a stop, or the server's death), leaving its children running.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winslow.storage.objects import ObjectStore
    from winslow.storage.s3 import S3Config

MESSAGE_MAX_BYTES = 64 * 1024
"""Largest control message; a launch is a path and a few S3 settings."""


def preload() -> None:
    """Import and build what every runner needs, so that no child pays for it."""
    import encodings.idna  # noqa: F401  (the first connection by host name imports it)

    import psutil  # noqa: F401  (the runner imports it where it is used)

    from winslow.node import runner  # noqa: F401  (its imports are the point)
    from winslow.storage import direct, objects  # noqa: F401
    from winslow.storage.s3 import S3Config, make_client

    make_client(S3Config("http://127.0.0.1:9", "preload", "preload", "preload"))
    # What is loaded now lives as long as this process: out of the collector's sight, a
    # child's first collection does not touch (and so copy) every page it shares with us.
    gc.collect()
    gc.freeze()


def serve(control: socket.socket) -> int:
    """Launch runners on request until the backend closes its end; return 0."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # A handler, not SIG_IGN: children must not inherit an ignored SIGCHLD, and the
    # wakeup fd only fires for signals Python handles.
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            ready, _, _ = select.select([control.fileno(), wake_r], [], [])
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            _report_exits(control)
            if control.fileno() in ready:
                message = control.recv(MESSAGE_MAX_BYTES)
                if not message:
                    return 0
                _send(control, _launch(control, message))
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        signal.set_wakeup_fd(-1)


def _launch(control: socket.socket, message: bytes) -> dict[str, Any]:
    try:
        request = json.loads(message)
        job_id = str(request["job_id"])
        job_dir = Path(str(request["job_dir"]))
        storage = json.dumps(request.get("storage") or {}).encode()
    except (ValueError, KeyError, TypeError) as exc:
        return {"job_id": None, "error": f"unreadable launch request: {exc}"}
    try:
        out = os.open(job_dir / "runner.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        return {"job_id": job_id, "error": f"cannot open its runner.out: {exc}"}
    ready = _ready_store(storage)
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(out)
        return {"job_id": job_id, "error": f"fork failed: {exc}"}
    if pid == 0:
        _become_runner(control, job_dir, out, storage, ready)
    os.close(out)
    return {"job_id": job_id, "pid": pid}


_READY_STORES: dict[S3Config, ObjectStore] = {}
"""Object stores built here, by storage settings; a child inherits the one for its job."""
READY_STORES_MAX = 4


def _ready_store(storage: bytes) -> ObjectStore | None:
    """The object store for the storage a launch hands over, built once per setting.

    Building a client costs the child more than its whole stage-out (about 10 ms of CPU
    on every stage); built here, before the fork, it costs that once. The store has sent
    no request, so it holds no connection a child could share with its siblings.
    """
    from winslow.node import jobfiles
    from winslow.storage.objects import ObjectStore

    cfg = jobfiles.read_storage_handover(storage)
    if cfg is None:
        return None
    store = _READY_STORES.get(cfg)
    if store is None:
        try:
            store = ObjectStore(cfg)
        except Exception:  # the child builds its own then, and reports what is wrong
            return None
        if len(_READY_STORES) >= READY_STORES_MAX:
            _READY_STORES.clear()
        _READY_STORES[cfg] = store
    return store


def _become_runner(
    control: socket.socket, job_dir: Path, out: int, storage: bytes, ready: ObjectStore | None
) -> None:
    """In the child: shed this process's state and run the job, never returning."""
    from winslow.node import jobfiles, runner

    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        control.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.chdir(job_dir)
        code = runner.run_job(job_dir, lambda: jobfiles.read_storage_handover(storage), ready)
    except BaseException:  # nothing may return into the warm runner's loop
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    runner.exit_now(code)


def _report_exits(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(control, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    control.send(json.dumps(message).encode())


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m winslow.node.warm <jobs_dir> <control fd>`` (the folder
    only names it in ``ps``)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m winslow.node.warm <jobs_dir> <control fd>", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(args[1]))
    preload()
    return serve(control)


if __name__ == "__main__":
    sys.exit(main())
