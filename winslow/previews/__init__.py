"""Previews of workspace files, so a person can judge a stage's output without downloading it.

A preview is small whatever the file: a thumbnail of an image, the first rows and per-column
statistics of a table, a bounded pretty view of a JSON document, a few frames of a video with
the boxes of a detections file drawn on them. Every reader here takes bytes it was given (or a
source OpenCV opens) and a limit, and returns a value for the API; fetching from object storage
is the route's job (``api/routes/previews.py``), which reads only what the limits allow.

OpenCV (``opencv-python-headless`` and ``numpy``) is optional: tables and JSON need only the
standard library; images and videos raise ``OpenCVMissingError`` naming what to install.
"""

from __future__ import annotations

from typing import Literal

PreviewKind = Literal["image", "table", "json", "video"]

KINDS: tuple[PreviewKind, ...] = ("image", "table", "json", "video")

SUFFIX_KINDS: dict[str, PreviewKind] = {
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".csv", ".tsv"), "table"),
    **dict.fromkeys((".json", ".jsonl", ".ndjson"), "json"),
    **dict.fromkeys((".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"), "video"),
}
"""What a file's suffix (lower case) says it is; the console keeps the same table."""

TABLE_MAX_BYTES = 4 * 1024 * 1024
"""Bytes of a CSV/TSV or JSON Lines file a preview reads from its start; the rest is unread."""

JSON_MAX_BYTES = 8 * 1024 * 1024
"""Largest JSON document previewed: it has to be parsed whole (JSON Lines need not be)."""

IMAGE_MAX_BYTES = 64 * 1024 * 1024
"""Largest image file a thumbnail is made of (it is decoded in memory)."""

DETECTIONS_MAX_BYTES = 64 * 1024 * 1024
"""Bytes of a detections file read for a video preview; later boxes are not drawn."""

VIDEO_DOWNLOAD_MAX_BYTES = 2 * 1024**3
"""Largest video copied to a temporary file when OpenCV cannot read it by URL (bytes)."""

INSTALL_OPENCV = "pip install opencv-python-headless numpy"
"""What makes image and video previews work on a server without OpenCV."""


class PreviewError(Exception):
    """A file cannot be previewed; ``status`` is the HTTP status the API answers with."""

    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PreviewTooLargeError(PreviewError):
    """The file is larger than a preview of its kind may read."""

    status = 413


class OpenCVMissingError(PreviewError):
    """The server has no OpenCV, which image and video previews need."""

    status = 501


def preview_kind(path: str) -> PreviewKind | None:
    """Return the kind of preview the file at ``path`` gets from its suffix, or None."""
    name = path.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return SUFFIX_KINDS.get(name[dot:]) if dot > 0 else None
