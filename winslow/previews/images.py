"""Thumbnails and frames as small JPEG data URLs, and boxes drawn on them, with OpenCV.

OpenCV is imported on first use, not with the module, so a server without it still serves
every other preview; ``opencv()`` raises ``OpenCVMissingError`` saying what to install.
"""

from __future__ import annotations

import base64
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from winslow.previews import INSTALL_OPENCV, OpenCVMissingError, PreviewError
from winslow.previews.models import ImagePreview

JPEG_QUALITY = 85
"""Quality of the JPEGs a preview sends (0-100): small, with boxes and text still crisp."""

BOX_COLOUR = (0, 230, 255)
"""Colour of drawn detections, as OpenCV's BGR: a strong yellow, seen on asphalt and grass."""

BOX_THICKNESS = 2
"""Line width of a drawn box in pixels of the scaled frame, so it shows at every size."""


@dataclass(frozen=True)
class Box:
    """One detection: its top-left corner, width and height in pixels of the full frame."""

    x: float
    y: float
    w: float
    h: float
    label: str = ""


def opencv() -> ModuleType:
    """Return the ``cv2`` module; raise ``OpenCVMissingError`` when it is not installed."""
    try:
        return importlib.import_module("cv2")
    except ImportError as exc:
        raise OpenCVMissingError(
            "Previews of images and videos need OpenCV on the Winslow server, which lacks "
            f"it: `{INSTALL_OPENCV}` there (the 'examples' extra of winslow has both), "
            "then restart it. Download the file to look at it meanwhile."
        ) from exc


def scaled(image: Any, max_side: int) -> tuple[Any, float]:
    """Return ``image`` shrunk so its longer side is at most ``max_side``, and the factor."""
    cv2 = opencv()
    height, width = image.shape[:2]
    factor = min(1.0, max_side / max(height, width, 1))
    if factor >= 1.0:
        return image, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def jpeg_url(image: Any) -> str:
    """Return ``image`` (BGR) as a ``data:image/jpeg;base64,...`` URL."""
    cv2 = opencv()
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PreviewError("OpenCV could not encode the preview as JPEG.")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def thumbnail(data: bytes, max_side: int) -> ImagePreview:
    """Return a thumbnail of the image file ``data`` whose longer side is at most ``max_side``.

    Raises ``PreviewError`` when OpenCV cannot decode it.
    """
    cv2 = opencv()
    np = importlib.import_module("numpy")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise PreviewError("OpenCV cannot decode this file as an image; download it instead.")
    height, width = image.shape[:2]
    small, _ = scaled(image, max_side)
    return ImagePreview(
        url=jpeg_url(small),
        width=small.shape[1],
        height=small.shape[0],
        original_width=width,
        original_height=height,
    )


def draw_boxes(image: Any, boxes: Sequence[Box], factor: float) -> None:
    """Draw ``boxes`` (full-frame pixels) on ``image``, which is the frame scaled by ``factor``."""
    cv2 = opencv()
    for box in boxes:
        top_left = (round(box.x * factor), round(box.y * factor))
        bottom_right = (round((box.x + box.w) * factor), round((box.y + box.h) * factor))
        cv2.rectangle(image, top_left, bottom_right, BOX_COLOUR, BOX_THICKNESS)
        if box.label:
            where = (top_left[0], max(12, top_left[1] - 4))
            cv2.putText(image, box.label[:24], where, cv2.FONT_HERSHEY_SIMPLEX, 0.45, BOX_COLOUR, 1)
