"""``winslow stage-follow``: a container stage's stdout and stderr into the run's log as they come.

A container stage runs its own image, with no Winslow inside, so nothing copies its output
into the run's log (``alloc/logs/winslow.log``) the way ``stage-exec`` does for a host
stage. Nomad keeps that output in files of its own, ``alloc/logs/main.stdout.0`` and
``main.stderr.0``, which its logmon rotates to ``.1``, ``.2``... (client/logmon/logging/
rotator.go). A small sidecar task of the stage's job (lifecycle ``poststart``, ``sidecar
= true``) runs ``winslow stage-follow``: it reads those files as they grow, follows the
rotation, and appends each line to the run's log as stage-exec writes it
(``<stamp> stdout | text``), stamped when it was read. The run's log stays one
append-only file, which the server reads live by byte offset and stage-out archives as it
is, so an offset a reader holds stays valid in the archive. Lines of the two streams
interleave in the order they were read, which is close to, not exactly, the order the
stage wrote them.

Where it got to is kept beside the log (``winslow.log.follow``): for each stream the file
and byte where its next line starts, and the log's size when that was saved. Nomad kills
the sidecar once the stage's task is dead (client/allocrunner/alloc_runner.go
``handleTaskStateUpdates``, ``TaskMainDead``); it then reads what is left until the files
stay still, adds an unterminated last line, and exits 0. ``winslow stage-out`` catches up
from the kept positions (``catch_up``) before it archives, so a follower that died, ran
out of time, or never started loses nothing and repeats nothing: the lines it appended
after its last save are counted in the log by stream and skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from winslow import defaults
from winslow.node.jobfiles import format_timestamp
from winslow.node.joblog import JobLog, LineSplitter
from winslow.node.progress import ProgressFile

STREAMS = ("stdout", "stderr")
"""The task's output streams, in the order each look reads them."""

STATE_SUFFIX = ".follow"
"""The follower's positions are kept in a file named like the run's log plus this."""

READ_CHUNK_BYTES = 1 << 20
"""The most one stream is read per look, bytes; positions are saved after each look."""

Record = tuple[str, bytes, str | None]
"""A line for the run's log: its stream, its text, and its stamp (None: the time it is
written; the time its file was last written for lines of an ended task)."""

_TASK_LOG = re.compile(r"(?P<task>.+)\.(?P<stream>stdout|stderr)\.(?P<index>[0-9]+)")


def task_log_files(logs_dir: Path, task: str, stream: str) -> list[Path]:
    """Return Nomad's rotated log files of ``task`` (``<task>.<stream>.<n>``), oldest first."""
    found: list[tuple[int, Path]] = []
    if logs_dir.is_dir():
        for path in logs_dir.iterdir():
            match = _TASK_LOG.fullmatch(path.name)
            if match and match["task"] == task and match["stream"] == stream:
                found.append((int(match["index"]), path))
    return [path for _, path in sorted(found)]


def state_path(log_path: Path) -> Path:
    """Where the follower of the log at ``log_path`` keeps its positions."""
    return log_path.with_name(log_path.name + STATE_SUFFIX)


@dataclass(frozen=True)
class StreamPosition:
    """Where the next line of one stream starts: byte ``offset`` of ``<task>.<stream>.<index>``.

    ``after_cr``: the byte before it is a ``\\r`` that ended a line, so a ``\\n`` at the
    position ends none.
    """

    index: int
    offset: int
    after_cr: bool = False


@dataclass(frozen=True)
class FollowState:
    """What the follower saved: its streams' positions and the log's size at that moment."""

    positions: dict[str, StreamPosition]
    log_size: int


def read_state(path: Path) -> FollowState | None:
    """The state saved at ``path``; None when there is none or it cannot be read."""
    try:
        raw = json.loads(path.read_bytes())
        positions = {
            stream: StreamPosition(int(p["index"]), int(p["offset"]), p.get("after_cr") is True)
            for stream, p in raw["positions"].items()
            if stream in STREAMS
        }
        return FollowState(positions, int(raw["log_size"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_state(path: Path, state: FollowState) -> None:
    """Replace the state at ``path`` in one step. Not fsync-ed: it guards against the
    follower dying, not the node (whose allocation is gone with it), and it is written
    several times a second."""
    body = {
        "version": 1,
        "log_size": state.log_size,
        "positions": {
            stream: {"index": p.index, "offset": p.offset, "after_cr": p.after_cr}
            for stream, p in state.positions.items()
        },
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(body, handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class StreamReader:
    """Reads one stream of a task from Nomad's rotated files, a line at a time.

    It goes on to the next file once a newer one exists and the current one is read to
    its end (Nomad's rotator flushes and closes a file before it creates the next). A file
    purged before it was opened is skipped, and a ``winslow`` line says so. ``position`` is
    where the first line not yet returned starts, possibly in an earlier file when one
    unterminated line spans files.
    """

    def __init__(
        self,
        logs_dir: Path,
        task: str,
        stream: str,
        start: StreamPosition | None,
        *,
        mtime_stamps: bool = False,
    ) -> None:
        self.stream = stream
        self._dir = logs_dir
        self._task = task
        if start is None:
            oldest = self._indexes()
            start = StreamPosition(oldest[0] if oldest else 0, 0)
        self.position = start
        self._splitter = LineSplitter(after_cr=start.after_cr)
        self._index = start.index
        self._offset = start.offset
        self._opened_at = start.offset
        self._file: IO[bytes] | None = None
        self._complete = False  # a newer file exists: this one grows no more
        self._mtime_stamps = mtime_stamps
        self._out: list[Record] = []

    def read(self, budget: int = READ_CHUNK_BYTES) -> tuple[list[Record], int]:
        """Return the lines completed since the last call and the bytes read."""
        lines = self._out = []
        got = 0
        while got < budget:
            if self._file is None and not self._open():
                break
            assert self._file is not None
            chunk = self._file.read(min(READ_CHUNK_BYTES, budget - got))
            if chunk:
                got += len(chunk)
                self._offset += len(chunk)
                stamp = self._stamp()
                lines.extend((self.stream, line, stamp) for line in self._splitter.feed(chunk))
                self._mark()
                continue
            newer = self._newer()
            if newer is None:
                break
            if not self._complete:
                self._complete = True  # read it once more: it may have grown before the rotation
                continue
            self._switch(newer, gap_from=self._index + 1)
        return lines, got

    def flush(self) -> list[Record]:
        """Return the unterminated last line, if any, as a line of its own."""
        stamp = self._stamp()
        lines: list[Record] = [(self.stream, line, stamp) for line in self._splitter.flush()]
        self._mark()
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _path(self, index: int) -> Path:
        return self._dir / f"{self._task}.{self.stream}.{index}"

    def _indexes(self) -> list[int]:
        files = task_log_files(self._dir, self._task, self.stream)
        return [int(path.name.rsplit(".", 1)[1]) for path in files]

    def _newer(self) -> int | None:
        return next((i for i in self._indexes() if i > self._index), None)

    def _open(self) -> bool:
        """Open the current file at the read offset; False while it does not exist yet."""
        while True:
            try:
                handle = self._path(self._index).open("rb")
            except FileNotFoundError:
                newer = self._newer()
                if newer is None:
                    return False
                self._switch(newer, gap_from=self._index)
                continue
            handle.seek(self._offset)
            self._file = handle
            self._opened_at = self._offset
            return True

    def _switch(self, index: int, gap_from: int) -> None:
        """Go on in file ``index``; files from ``gap_from`` up to it were purged unread."""
        if gap_from < index:
            first, last = self._path(gap_from).name, self._path(index - 1).name
            what = first if gap_from == index - 1 else f"{first} to {last}"
            note = (
                f"stage-follow: Nomad rotated {what} away unread; the stage's lines in it "
                "are missing from this log"
            )
            self._out.append(("winslow", note.encode(), None))
        self.close()
        self._index, self._offset, self._opened_at, self._complete = index, 0, 0, False
        self._mark()

    def _mark(self) -> None:
        pending = self._splitter.pending
        if pending <= self._offset - self._opened_at:  # the held line started in this file
            self.position = StreamPosition(
                self._index, self._offset - pending, self._splitter.after_cr
            )

    def _stamp(self) -> str | None:
        if not self._mtime_stamps or self._file is None:
            return None
        mtime = os.fstat(self._file.fileno()).st_mtime
        return format_timestamp(datetime.fromtimestamp(mtime, UTC))


class TaskLogFollower:
    """Appends a task's stdout and stderr lines to the run's log, saving where it got to.

    It goes on from the state saved beside the log, if any; lines a follower appended after
    its last save are counted in the log and not appended again. With ``catching_up``
    (stage-out, the task ended) lines are stamped with the time their file was last
    written, later than the line itself, never earlier.
    """

    def __init__(
        self, logs_dir: Path, task: str, log_path: Path, *, catching_up: bool = False
    ) -> None:
        self.state_path = state_path(log_path)
        self._log_path = log_path
        saved = read_state(self.state_path)
        self.log = JobLog(log_path, shared=True)
        self._skip = dict.fromkeys(STREAMS, 0)
        if saved is not None:
            self._skip.update(_records_after(log_path, saved.log_size))
        positions = saved.positions if saved is not None else {}
        self._readers = [
            StreamReader(logs_dir, task, s, positions.get(s), mtime_stamps=catching_up)
            for s in STREAMS
        ]
        try:
            # Saved before anything is appended, so every line appended later is counted.
            self.save()
        except BaseException:
            self.close()
            raise

    def poll(self, budget: int = READ_CHUNK_BYTES) -> int:
        """Append the lines written since the last look; return the bytes read."""
        total = 0
        for reader in self._readers:
            lines, got = reader.read(budget)
            total += got
            self._append(lines)
        if total:
            self.save()
        return total

    def read_to_end(self) -> None:
        """Append all that is left of each stream in turn, stdout first, each with its
        unterminated last line: for a task that has ended."""
        for reader in self._readers:
            while True:
                lines, got = reader.read()
                self._append(lines)
                if not got:
                    break
                self.save()
            self._append(reader.flush())
        self.save()

    def drain(self, deadline: float, quiet: float = defaults.FOLLOW_QUIET_SECONDS) -> bool:
        """Read until the files stayed still for ``quiet`` seconds, then append the
        unterminated last lines; True when done by ``deadline`` (``time.monotonic``).
        Past it, what is left stays for stage-out, unterminated lines included."""
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.poll():
                still_since = time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                self.finish()
                return True
            else:
                time.sleep(min(0.05, quiet))
        return False

    def finish(self) -> None:
        """Append each stream's unterminated last line and save."""
        for reader in self._readers:
            self._append(reader.flush())
        self.save()

    def save(self) -> None:
        """Keep the positions, unless lines already in the log are still to be skipped (a
        save then would count them as new)."""
        if any(self._skip.values()):
            return
        positions = {reader.stream: reader.position for reader in self._readers}
        write_state(self.state_path, FollowState(positions, self._log_path.stat().st_size))

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self.log.close()

    def _append(self, lines: Iterable[Record]) -> None:
        for stream, line, stamp in lines:
            if self._skip.get(stream):
                self._skip[stream] -= 1
                continue
            self.log.line(stream, line, stamp)


def _records_after(log_path: Path, size: int) -> dict[str, int]:
    """How many lines of each stream the log holds past byte ``size``."""
    counts = dict.fromkeys(STREAMS, 0)
    with contextlib.suppress(OSError), log_path.open("rb") as log:
        log.seek(size)
        for record in log:
            parts = record.split(b" ", 2)
            stream = parts[1].decode("ascii", "replace") if len(parts) == 3 else ""
            if stream in counts and parts[2].startswith(b"| "):
                counts[stream] += 1
    return counts


def follow_task(
    logs_dir: Path,
    task: str,
    log_path: Path,
    stop: threading.Event,
    *,
    workspace: Path | None = None,
    poll_seconds: float = defaults.FOLLOW_POLL_SECONDS,
    drain_seconds: float = defaults.FOLLOW_DRAIN_SECONDS,
) -> bool:
    """Copy ``task``'s output into the log at ``log_path`` until ``stop`` is set, then
    drain for at most ``drain_seconds``; True when everything was copied.

    With ``workspace``, what the stage writes to its progress file is logged too, as
    ``stage-exec`` does for a host stage (``ProgressFile``).
    """
    follower = TaskLogFollower(logs_dir, task, log_path)
    try:
        progress: ProgressFile | contextlib.nullcontext[None] = (
            ProgressFile(workspace, follower.log)
            if workspace is not None
            else contextlib.nullcontext()
        )
        with progress:
            while not stop.is_set():
                if not follower.poll():
                    stop.wait(poll_seconds)
        return follower.drain(time.monotonic() + drain_seconds)
    finally:
        follower.close()


def catch_up(logs_dir: Path, task: str, log_path: Path) -> None:
    """Append what no follower appended of ``task``'s ended output to the log: stdout,
    then stderr, all of it when none ran (a job from before the follower). For stage-out,
    before it archives."""
    follower = TaskLogFollower(logs_dir, task, log_path, catching_up=True)
    try:
        follower.read_to_end()
    finally:
        follower.close()
