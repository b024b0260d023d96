"""Rules for paths a person gives us (resource pool and workspace paths).

One function decides whether a path is acceptable, so the API, the CLI and the stage
tools refuse the same things with the same words.
"""

from __future__ import annotations

import unicodedata

from winslow import defaults
from winslow.errors import ValidationError


def clean_relative_path(path: str, *, allow_empty: bool = False) -> str:
    """Return ``path`` normalised to ``a/b/c`` form, or raise ``ValidationError``.

    Refused: absolute paths, ``..`` segments, NUL and other control characters, and
    paths longer than ``defaults.MAX_PATH_LENGTH``. Unicode names are kept as given;
    ``.`` and empty segments are dropped.
    """
    if len(path) > defaults.MAX_PATH_LENGTH:
        raise ValidationError(
            f"Path is {len(path)} characters long; at most {defaults.MAX_PATH_LENGTH} are allowed."
        )
    for char in path:
        if unicodedata.category(char) == "Cc":
            raise ValidationError(
                f"Path {path!r} contains the control character {char!r}; rename the file."
            )
    if path.startswith("/") or path.startswith("\\"):
        raise ValidationError(
            f"Path {path!r} is absolute; give it relative to the pool or workspace."
        )
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValidationError(f"Path {path!r} contains '..'; paths may not leave their folder.")
    if not parts and not allow_empty:
        raise ValidationError("Path is empty; name a file or folder.")
    return "/".join(parts)
