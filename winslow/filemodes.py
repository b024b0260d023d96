"""Owner-only folders and files: what Winslow keeps on disk is for its own user alone.

The data folder holds the S3 keys, the admin token, the database (token hashes, every
project's variables) and the stages' logs. Folders are made 0700 and files 0600; one that
already exists with bits for its group or others loses those bits, and the change is
logged once, at INFO, so an operator sees what was tightened and where.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
"""Mode of a folder only its owner may list, enter or change."""

PRIVATE_FILE_MODE = 0o600
"""Mode of a file only its owner may read or write."""


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or tighten it if it exists; return it.

    Parents that already exist are left as they are; only ``path`` itself is tightened.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    tighten(path)
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 if it is missing, else tighten it; content is kept.

    Nothing happens when its folder does not exist: whoever opens it next reports that.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        return
    os.close(fd)
    tighten(path)


def tighten(path: Path) -> bool:
    """Take the group's and others' permission bits off ``path``; return whether it had any.

    A path that cannot be changed (someone else owns it) is logged at WARNING and left.
    """
    current = stat.S_IMODE(path.stat().st_mode)
    wanted = current & ~0o077
    if wanted == current:
        return False
    try:
        path.chmod(wanted)
    except OSError as exc:
        log.warning(
            "%s: mode %03o lets other users in and could not be tightened (%s); "
            "chmod go-rwx it yourself",
            path,
            current,
            exc.strerror or exc,
        )
        return False
    log.info("%s: mode %03o tightened to %03o (owner only)", path, current, wanted)
    return True
