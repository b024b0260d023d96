"""Writing files so that a reader, or a crash, never sees half of one.

The content goes to a temporary file in the same folder, is fsync-ed, and replaces the
target by rename; the folder is fsync-ed after, so after a power cut the name points at
the old file or the whole new one, never at an empty one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_text_atomic(path: Path, text: str, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` (UTF-8, newlines as given) in one step.

    ``durable=False`` skips both fsyncs, for a file no one needs after a power cut (one
    that names processes, which the cut ended too): readers still never see half of it.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file owner-only; callers say who may read it.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
