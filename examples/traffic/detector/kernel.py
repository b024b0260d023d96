"""The detection kernel: a frame and the blurred background in, the cleaned foreground mask
out, then boxes from the mask.

Every execution path computes the same mask as ``reference_mask`` (OpenCV), bit for bit:

- The 5x5 Gaussian blur OpenCV applies to 8-bit images with an automatic sigma is the
  binomial kernel [1 4 6 4 1]/16 in each direction, summed in fixed point and rounded half
  up: ``(S + 128) >> 8`` with S the integer-weighted sum over the reflected (BORDER_REFLECT_101)
  neighbourhood. S is at most 65 280, so float32 holds every step exactly. The kernels add
  shifted slices (numpy, CuPy, torch) or average 2x2 four times (the ONNX graph) rather than
  call a convolution, because GPU convolutions may run in TF32 (10-bit mantissa) and round.
- Erosion and dilation with a rectangle ignore what lies outside the image in OpenCV (its
  default border value); padding the 0/1 mask with the value that never wins (0 before a
  dilation, 1 before an erosion) gives the same.

The boxes come from ``blobs_from_mask`` on the CPU for every path, so paths that agree on
the mask agree on the detections.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

BLUR_WEIGHTS = (1, 4, 6, 4, 1)
"""OpenCV's 5-tap Gaussian for sigma 0 (``getGaussianKernel(5, 0)`` x 16)."""
BLUR_RADIUS = 2
OPEN_SIZE = 3
"""Side of the square opening: removes specks of sensor noise."""
CLOSE_SIZE = 7
"""Side of the square closing: fills the seam between a vehicle's body and its roof."""
OPEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (OPEN_SIZE, OPEN_SIZE))
CLOSE_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (CLOSE_SIZE, CLOSE_SIZE))


def blur_background(background: np.ndarray) -> np.ndarray:
    """The background as every path expects it: blurred once, like each frame is."""
    return cv2.GaussianBlur(background, (5, 5), 0)


def reference_mask(frame: np.ndarray, background: np.ndarray, threshold: int) -> np.ndarray:
    """The foreground mask (0 or 255, HxW uint8) by OpenCV on the CPU: what every other
    path must reproduce exactly. ``background`` is already blurred."""
    blurred = cv2.GaussianBlur(frame, (5, 5), 0)
    difference = cv2.absdiff(blurred, background).max(axis=2)
    _, mask = cv2.threshold(difference, threshold, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, OPEN_KERNEL)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, CLOSE_KERNEL)


def _shifted_sum(xp: Any, padded: Any, axis: int, length: int, weights: tuple[int, ...]) -> Any:
    """Sum of ``weights[k]`` x ``padded`` shifted by k along ``axis``, ``length`` long."""
    total = None
    for k, weight in enumerate(weights):
        index = [slice(None)] * padded.ndim
        index[axis] = slice(k, k + length)
        term = padded[tuple(index)] * weight if weight != 1 else padded[tuple(index)]
        total = term if total is None else total + term
    return total


def _max_filter(xp: Any, mask: Any, size: int, fill: float) -> Any:
    """Maximum over a ``size``x``size`` square (separable), outside the image ``fill``."""
    radius = size // 2
    height, width = mask.shape
    padded = xp.pad(mask, radius, mode="constant", constant_values=fill)
    rows = padded[:, 0:width]
    for k in range(1, size):
        rows = xp.maximum(rows, padded[:, k : k + width])
    result = rows[0:height]
    for k in range(1, size):
        result = xp.maximum(result, rows[k : k + height])
    return result


def array_mask(xp: Any, frame: Any, background: Any, threshold: float) -> Any:
    """The kernel over any numpy-like module ``xp`` (numpy, CuPy): HxWx3 uint8 arrays in,
    the HxW uint8 mask out, equal to ``reference_mask``."""
    height, width = frame.shape[:2]
    r = BLUR_RADIUS
    padded = xp.pad(frame.astype(xp.float32), ((r, r), (r, r), (0, 0)), mode="reflect")
    rows = _shifted_sum(xp, padded, 1, width, BLUR_WEIGHTS)
    summed = _shifted_sum(xp, rows, 0, height, BLUR_WEIGHTS)
    blurred = xp.floor((summed + 128) * (1 / 256))
    difference = xp.abs(blurred - background.astype(xp.float32)).max(axis=2)
    mask = (difference > threshold).astype(xp.float32)
    # Opening (erode, dilate) then closing (dilate, erode); erosion is a max of the negation.
    mask = -_max_filter(xp, -mask, OPEN_SIZE, -1.0)
    mask = _max_filter(xp, mask, OPEN_SIZE, 0.0)
    mask = _max_filter(xp, mask, CLOSE_SIZE, 0.0)
    mask = -_max_filter(xp, -mask, CLOSE_SIZE, -1.0)
    return (mask * 255).astype(xp.uint8)


def blobs_from_mask(mask: np.ndarray, min_area: float) -> list[dict[str, float]]:
    """Every outer contour of ``mask`` of at least ``min_area`` px²: its bounding box, the
    box's centre and the contour's area; largest first."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    blobs = []
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < min_area:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        blobs.append(
            {
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "cx": round(x + w / 2, 2),
                "cy": round(y + h / 2, 2),
                "area": area,
            }
        )
    return sorted(blobs, key=lambda blob: -blob["area"])
