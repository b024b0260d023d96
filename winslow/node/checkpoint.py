"""The node's side of checkpoints: watch the stage's checkpoint folder, publish it, answer.

While a stage that keeps checkpoints runs, a ``CheckpointWatcher`` thread publishes its
``.winslow/checkpoint/`` folder (``storage.checkpoints``) at most every ``every`` seconds,
and at once when the stage asks: ``winslow checkpoint`` (``request_checkpoint``) writes a
token to the request file and waits for the answer file to carry it back. Files, not a
socket, so that a stage in a container, which has no Winslow, can ask with ``echo``
alone. A failed publish never stops the stage; it is logged and tried again.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from winslow import defaults
from winslow.atomic import write_text_atomic
from winslow.errors import WinslowError
from winslow.storage.checkpoints import (
    ANSWER_FILE,
    REQUEST_FILE,
    RESUMED_FILE,
    Checkpoint,
    CheckpointChangedError,
    CheckpointPublisher,
    find_latest,
)
from winslow.storage.keys import describe_key
from winslow.units import counted

if TYPE_CHECKING:
    from winslow.backends.base import RunSpec
    from winslow.storage.objects import ObjectStore

WATCH_STEP_SECONDS = 0.2
"""How often the watcher looks for a request, seconds."""

RETRY_SECONDS = 30.0
"""How soon a periodic publish that failed is tried again, seconds (``every`` if shorter)."""

REQUEST_POLL_SECONDS = 0.1
"""How often ``winslow checkpoint`` looks for its answer, seconds."""


class CheckpointRequestError(WinslowError):
    """``winslow checkpoint`` got no checkpoint published: an error, or no answer in time."""

    code = "checkpoint_failed"


class CheckpointWatcher:
    """A thread publishing ``workspace``'s checkpoint folder to ``prefix`` while in ``with``.

    Usage::

        with CheckpointWatcher(workspace, prefix, 600, staging, store, jlog.event):
            outcome = run_stage(...)
    """

    def __init__(
        self,
        workspace: Path,
        prefix: str,
        every: float,
        staging: Path,
        store: Callable[[], ObjectStore],
        event: Callable[[str], None],
    ) -> None:
        self.every = every
        self.workspace = workspace
        self.event = event
        self.publisher = CheckpointPublisher(workspace, prefix, staging, store, event)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)

    def __enter__(self) -> CheckpointWatcher:
        self.event(
            f"checkpoint: publishing {self.workspace.name}/.winslow/checkpoint/ at most every "
            f"{self.every:g} s, and when the stage runs `winslow checkpoint`"
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        # A publish under way finishes: its manifest is written last, so cutting it short
        # would only waste what it uploaded.
        self._thread.join()

    def _run(self) -> None:
        next_due = time.monotonic() + self.every
        while not self._stop.wait(WATCH_STEP_SECONDS):
            token = _read_request(self.workspace)
            if token is None and time.monotonic() < next_due:
                continue
            version, error = self._publish()
            if error is None or token is not None:
                next_due = time.monotonic() + self.every
            else:
                next_due = time.monotonic() + min(self.every, RETRY_SECONDS)
            if token is not None:
                _answer(self.workspace, token, version, error)

    def _publish(self) -> tuple[int | None, str | None]:
        try:
            return self.publisher.publish(), None
        except CheckpointChangedError as exc:
            self.event(f"checkpoint: {exc.message}")
            return None, exc.message
        except Exception as exc:  # storage, disk, anything: the stage must go on regardless
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self.event(f"checkpoint: could not publish: {message}; will try again")
            return None, str(message)


def _read_request(workspace: Path) -> str | None:
    try:
        return (workspace / REQUEST_FILE).read_text(encoding="utf-8").strip() or "-"
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError):
        return "-"


def _answer(workspace: Path, token: str, version: int | None, error: str | None) -> None:
    body = {"token": token, "version": version, "error": error}
    with contextlib.suppress(OSError):
        write_text_atomic(workspace / ANSWER_FILE, json.dumps(body) + "\n")
    # A request written since we read ours stays for the next round.
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if (workspace / REQUEST_FILE).read_text(encoding="utf-8").strip() in (token, ""):
            (workspace / REQUEST_FILE).unlink()


def request_checkpoint(
    workspace: Path, timeout: float = defaults.CHECKPOINT_WAIT_SECONDS
) -> int | None:
    """Ask the node to publish the checkpoint folder now; return the version then latest.

    None when the folder is empty. Raises ``CheckpointRequestError`` when the node could
    not publish, or did not answer within ``timeout`` seconds.
    """
    token = secrets.token_hex(8)
    request = workspace / REQUEST_FILE
    request.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(request, token + "\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            answer = json.loads((workspace / ANSWER_FILE).read_text(encoding="utf-8"))
            if isinstance(answer, dict) and answer.get("token") == token:
                if answer.get("error"):
                    raise CheckpointRequestError(
                        f"The checkpoint was not published: {answer['error']}"
                    )
                version = answer.get("version")
                return version if isinstance(version, int) else None
        time.sleep(REQUEST_POLL_SECONDS)
    with contextlib.suppress(OSError):
        request.unlink()
    raise CheckpointRequestError(
        f"No checkpoint was published within {timeout:g} s: the node watches "
        f"{REQUEST_FILE} only for stages whose pipeline sets `checkpoint:`; set it for "
        "this stage, or give a longer --timeout."
    )


def restore_point(
    workspace: Path,
    resume_from: Sequence[str],
    store: Callable[[], ObjectStore],
    event: Callable[[str], None],
) -> Checkpoint | None:
    """Find the checkpoint stage-in restores (``find_latest``) and say so in the log and
    in ``RESUMED_FILE``; None when there is none (the file is then removed)."""
    found = find_latest(store(), resume_from) if resume_from else None
    (workspace / RESUMED_FILE).unlink(missing_ok=True)
    if found is not None:
        (workspace / RESUMED_FILE).parent.mkdir(parents=True, exist_ok=True)
        (workspace / RESUMED_FILE).write_text(found.label + "\n", encoding="utf-8")
        event(
            f"resuming from checkpoint {found.version} of "
            f"{describe_key(found.prefix).removeprefix('checkpoints of ')}, "
            f"written {found.created} ({counted(found.files, 'file')})"
        )
    elif resume_from:
        event("no checkpoint was published before; the stage starts afresh")
    return found


def checkpoint_prefixes(spec: RunSpec) -> list[str]:
    """The checkpoints a run that succeeded makes useless: its own and those it resumed from."""
    return [p for p in (spec.checkpoint_prefix, *spec.resume_from) if p]


def watching(
    spec: RunSpec,
    workspace: Path,
    job_dir: Path,
    store: Callable[[], ObjectStore],
    event: Callable[[str], None],
) -> contextlib.AbstractContextManager[object]:
    """The checkpoint watcher of a stage that keeps checkpoints; nothing for others.

    Copies wait in ``job_dir/checkpoint-staging`` for their upload.
    """
    if spec.checkpoint_every is None or not spec.checkpoint_prefix:
        return contextlib.nullcontext()
    return CheckpointWatcher(
        workspace,
        spec.checkpoint_prefix,
        spec.checkpoint_every,
        job_dir / "checkpoint-staging",
        store,
        event,
    )


def drop_checkpoints(
    prefixes: Sequence[str], store: Callable[[], ObjectStore], event: Callable[[str], None]
) -> None:
    """Delete the checkpoints of a run that succeeded and of the lost attempts it resumed
    from (``checkpoint_prefixes``): nothing resumes from them any more. A failure leaves
    them to retention and to the project's deletion, which remove the run's whole
    workspace prefix."""
    for prefix in prefixes:
        if not prefix:
            continue
        try:
            if store().delete_prefix(prefix):
                event(f"checkpoint: deleted the {describe_key(prefix)}")
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            event(f"checkpoint: could not delete the {describe_key(prefix)}: {message}")
