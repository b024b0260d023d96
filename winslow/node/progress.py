"""A stage's progress file: what it writes to ``.winslow/progress`` becomes log lines.

Progress is read from the log everywhere (API, CLI, console; see ``core/progress.py``),
so a stage that cannot print its progress writes it to a file in its workspace instead,
and the node copies each new value into the log as a ``progress`` line.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path

from winslow import defaults
from winslow.node.joblog import JobLog

PROGRESS_FILE = ".winslow/progress"
"""Where in its workspace a stage may write its progress instead of printing it: a fraction
(``0.45``), a percentage (``45%`` or ``45``) or ``done/total`` (``450/1000``)."""

PROGRESS_STREAM = "progress"
"""The log stream the node writes a progress file's values to."""

_DONE_OF_TOTAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")
_BARE_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


def progress_line(text: str) -> str | None:
    """The log line for what a progress file holds, or None when it holds no progress.

    >>> progress_line("450/1000")
    'WINSLOW_PROGRESS: 0.45'
    >>> progress_line("45")
    'WINSLOW_PROGRESS: 45%'
    """
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not text:
        return None
    done = _DONE_OF_TOTAL.match(text)
    if done:
        total = float(done.group(2))
        return f"WINSLOW_PROGRESS: {float(done.group(1)) / total:.6g}" if total > 0 else None
    bare = _BARE_NUMBER.match(text)
    if bare:
        value = float(bare.group(1))
        return f"WINSLOW_PROGRESS: {value:g}" + ("%" if value > 1 else "")
    return f"WINSLOW_PROGRESS: {text[:40]}"


class ProgressFile:
    """Copies what a stage writes to ``.winslow/progress`` in its workspace into its log.

    Progress is read from the log everywhere (API, CLI, console), so a value written to the
    file becomes a ``progress`` line whenever it changes. A file carried over from an
    earlier stage's workspace counts only once this stage writes it; the file is removed
    when the stage ends, so it is not handed on.
    """

    def __init__(
        self,
        workspace: Path,
        jlog: JobLog,
        poll_seconds: float = defaults.PROGRESS_FILE_POLL_SECONDS,
    ) -> None:
        self.path = workspace / PROGRESS_FILE
        self.jlog = jlog
        self.poll_seconds = poll_seconds
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="progress-file", daemon=True)

    def __enter__(self) -> ProgressFile:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(self.poll_seconds + 1)
        self.check()
        with contextlib.suppress(OSError):
            self.path.unlink()
            self.path.parent.rmdir()  # only when the stage left nothing else in it

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.check()

    def check(self) -> None:
        """Log the file's value if it changed since the last look."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        self._seen = stamp
        try:
            with self.path.open("rb") as file:
                text = file.read(256).decode("utf-8", errors="replace")
        except OSError:
            return
        line = progress_line(text)
        if line is not None:
            self.jlog.line(PROGRESS_STREAM, line)
