"""The log of a stage run, as the node writes it: one timestamped line per record.

Every line reads ``2026-11-25T08:12:03.123Z stdout | text``, with ``winslow`` as the
stream of our own events, wherever the stage ran (the local runner, or the tasks of a
Nomad job); ``core/logformat.py`` has the format. ``LineSplitter`` cuts a stage's output
into such lines, ``log_record`` makes one record (escaping the text of every line that
is not the stage's, so one record is one line whatever it says), ``JobLog`` appends
records to the log file from any thread or process, and ``EventLog`` is how the node
tools (``winslow stage-in``, ``stage-out``) report what they do.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from winslow.core.logformat import EVENT_STREAM, STAGE_STREAMS, escape_text
from winslow.node import jobfiles
from winslow.storage.keys import name_projects

MAX_LINE_BYTES = 64 * 1024
"""A line longer than this is logged in pieces, so one runaway line cannot exhaust memory."""


class LineSplitter:
    """Cut a byte stream into lines at ``\\n``, ``\\r\\n`` or a bare ``\\r``.

    A bare ``\\r`` ends a line too, so a progress bar that redraws itself shows up in the
    live log instead of piling up until the stage exits. Lines longer than ``max_bytes``
    are cut into pieces.
    """

    def __init__(self, max_bytes: int = MAX_LINE_BYTES, *, after_cr: bool = False) -> None:
        self._buffer = bytearray()
        self._after_cr = after_cr
        self._max = max_bytes

    @property
    def pending(self) -> int:
        """Bytes of an unterminated line held until its end comes (or ``flush``)."""
        return len(self._buffer)

    @property
    def after_cr(self) -> bool:
        """Whether the last byte fed was a ``\\r``, so that a ``\\n`` next ends no line;
        give it back to a new splitter that goes on where this one stopped."""
        return self._after_cr

    def feed(self, data: bytes) -> list[bytes]:
        """Return the lines completed by ``data``, without their terminators."""
        lines: list[bytes] = []
        for byte in data:
            if byte == 0x0A:  # \n
                if self._after_cr:
                    self._after_cr = False  # the \n of a \r\n: its line went out at the \r
                    continue
                lines.append(bytes(self._buffer))
                self._buffer.clear()
            elif byte == 0x0D:  # \r
                lines.append(bytes(self._buffer))
                self._buffer.clear()
                self._after_cr = True
                continue
            else:
                self._buffer.append(byte)
                if len(self._buffer) >= self._max:
                    lines.append(bytes(self._buffer))
                    self._buffer.clear()
            self._after_cr = False
        return lines

    def flush(self) -> list[bytes]:
        """Return the unterminated last line, if any."""
        if not self._buffer:
            return []
        line = bytes(self._buffer)
        self._buffer.clear()
        return [line]


def log_record(stream: str, text: bytes | str, stamp: str | None = None) -> bytes:
    """Return one log line: ``<UTC stamp> <stream> | <text>\\n``.

    The text of a stage's stream (``stdout``, ``stderr``) is written as the stage printed
    it, but for a line break, which ``LineSplitter`` has cut at already (one left in
    becomes ``\\n`` or ``\\r``). The text of every other stream, Winslow's own, gets its
    control characters escaped (``escape_text``), so a value in it can neither end the
    line nor start one that reads as the stage's.
    """
    if stream in STAGE_STREAMS:
        body = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        if b"\n" in body or b"\r" in body:
            body = body.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    else:
        words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        body = escape_text(words).encode("utf-8", "replace")
    when = stamp if stamp is not None else jobfiles.now_timestamp()
    return when.encode() + b" " + stream.encode() + b" | " + body + b"\n"


class JobLog:
    """Appends timestamped lines to a log file, one ``write`` per line, from any thread.

    The file is opened ``O_APPEND`` and every line is written whole with one system call,
    so a reader never sees half a line from two writers, and two processes (stage-in,
    then stage-exec) can share one file.
    """

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if shared:
            # The tasks of a Nomad job may run as different users (an image's USER, root
            # for raw_exec); whoever created the file lets the others append. Fails
            # harmlessly for the others, who do not own it.
            with contextlib.suppress(OSError):
                os.fchmod(self._fd, 0o666)
        self._lock = threading.Lock()
        self.project: tuple[str, str] | None = None
        """The job's project as (id, name), once known: our lines name it by its name."""

    def line(self, stream: str, text: bytes | str, stamp: str | None = None) -> None:
        """Append one line of ``stream``, stamped now unless ``stamp`` is given."""
        record = log_record(stream, text, stamp)
        with self._lock:
            os.write(self._fd, record)

    def event(self, message: str) -> None:
        """One line of our own, marked ``winslow``, its control characters escaped."""
        self.line(EVENT_STREAM, named(message, self.project))

    def close(self) -> None:
        os.close(self._fd)


def named(message: str, project: tuple[str, str] | None) -> str:
    """``message`` with the job's project named by its name where storage words named it
    by id ("version 1 of workspace of run 4 of project 'flow'", as a person knows it)."""
    if project is None:
        return message
    project_id, name = project
    return name_projects(message, lambda found: name if found == project_id else None)


def project_from_env(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The job's project as (id, name) from Nomad's ``NOMAD_META_*`` variables, which
    every task of a Winslow job has (``jobspec._meta``); None elsewhere."""
    project_id = environ.get("NOMAD_META_winslow_project_id")
    name = environ.get("NOMAD_META_winslow_project")
    return (project_id, name) if project_id and name else None


class EventLog:
    """Our own events for the CLI tools: to stderr (Nomad keeps it) and to ``--log`` if given.

    ``lines`` keeps what was written, so stage-out can archive events it wrote after it
    read the log file.
    """

    def __init__(
        self,
        path: Path | None,
        stream: IO[str] | None = None,
        project: tuple[str, str] | None = None,
    ) -> None:
        self.project = project
        self._file: JobLog | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = JobLog(path, shared=True)
        self._stream = stream if stream is not None else sys.stderr
        self.lines: list[bytes] = []

    def __call__(self, message: str) -> None:
        # One stamp for both copies: the archive must hold the very bytes of the file.
        stamp = jobfiles.now_timestamp()
        message = named(message, self.project)
        self.lines.append(log_record(EVENT_STREAM, message, stamp))
        self._stream.write(f"winslow: {escape_text(message)}\n")
        self._stream.flush()
        if self._file is not None:
            self._file.line(EVENT_STREAM, message, stamp)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
