"""Detect moving vehicles in every frame of a fixed-camera video by background subtraction.

The camera does not move, so the background is the per-pixel median of frames sampled across
the whole video: a vehicle covers any one pixel only briefly and drops out of the median. Each
frame is then compared with that background (largest difference over the colour channels after
a light blur), thresholded, cleaned with an opening (removes noise specks) and a closing
(fills the seam between a vehicle's body and roof), and every outer contour of at least
``MIN_AREA`` square pixels becomes one detection: its bounding box and the box's centre.

The mask (blur, difference, threshold, opening, closing) runs on the best path present
(``detector.best_path``: TensorRT, onnxruntime on CUDA, CuPy, PyTorch on CUDA, then on the
CPU OpenCV, the faster there; onnxruntime on the CPU when asked), all giving the same
mask; the contours and boxes are OpenCV on the CPU. The
stage logs which path ran and why the better ones were skipped, and reports it as the result
``detector``. ``DETECT_PATH`` (one of ``detector.ORDER``) forces a path.

Reads ``$WINSLOW_INPUTS/$INPUT_VIDEO``. Settings: ``MIN_AREA`` (px², default 150),
``DIFF_THRESHOLD`` (grey levels, default 30), ``BACKGROUND_SAMPLES`` (frames, default 50),
``DETECT_PATH`` (default: the best present).
Writes ``detections.csv`` (frame, x, y, w, h, cx, cy, area), ``background.png``,
``video.json`` (fps, size and frame count, for the later stages) and, for the person at the
review gate, ``frames/frame-NNNNN.jpg``: the busiest frame of each of ``REVIEW_FRAMES``
equal parts of the video with its detections' boxes drawn.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (
    BACKGROUND_FILE,
    DETECTIONS_FILE,
    VIDEO_INFO_FILE,
    Progress,
    StageError,
    env_float,
    env_int,
    inputs_dir,
    run_stage,
    workspace,
    write_csv,
)
from detector import (
    ORDER,
    Choice,
    MaskPath,
    Unavailable,
    best_path,
    blobs_from_mask,
    blur_background,
    open_path,
)

STAGE = "detect"
DETECTION_FIELDS = ["frame", "x", "y", "w", "h", "cx", "cy", "area"]
REVIEW_FRAMES = 4
"""Frames with boxes drawn that the review gate shows, one per equal part of the video."""
REVIEW_DIR = "frames"
BOX_COLOUR = (0, 0, 255)
"""Red in OpenCV's BGR: stands out on grey roads and on any vehicle colour."""


def find_video() -> Path:
    """Return the input video's path; raise ``StageError`` when it is unset or missing."""
    pool_path = os.environ.get("INPUT_VIDEO", "").strip()
    if not pool_path:
        raise StageError(
            "INPUT_VIDEO is not set; set it to the resource pool path of the video "
            "(and list it in the stage's inputs)"
        )
    path = inputs_dir() / pool_path
    if not path.is_file():
        raise StageError(
            f"input video not found at {path}; set INPUT_VIDEO to a resource pool path "
            "that the stage lists in its inputs"
        )
    return path


def open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise StageError(f"cannot decode {path}; is it a video file OpenCV can read?")
    return capture


def median_background(path: Path, samples: int, progress: Progress) -> tuple[np.ndarray, int]:
    """Return the median of up to ``samples`` evenly spaced frames, and the frame count.

    Every frame is decoded (seeking in MPEG-4 is unreliable), only the sampled ones are kept.
    """
    capture = open_video(path)
    every = max(1, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) // samples)
    kept: list[np.ndarray] = []
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if count % every == 0:
            kept.append(frame)
        count += 1
        progress.update(count)
    capture.release()
    if not kept:
        raise StageError(f"{path} holds no frames OpenCV can decode")
    return np.median(np.stack(kept), axis=0).astype(np.uint8), count


def detect_frame(
    path: MaskPath, frame: np.ndarray, background: np.ndarray, threshold: int, min_area: float
) -> list[dict[str, float]]:
    """Return the blobs of ``frame`` that differ from ``background``, largest first."""
    return blobs_from_mask(path.mask(frame, background, threshold), min_area)


def choose_path() -> Choice:
    """The path ``DETECT_PATH`` names (a ``StageError`` saying why where it cannot run),
    else the best one present."""
    forced = os.environ.get("DETECT_PATH", "").strip()
    if not forced:
        return best_path(os.environ)
    if forced not in ORDER:
        raise StageError(f"DETECT_PATH={forced!r} is not a path; use one of {', '.join(ORDER)}", 2)
    try:
        return Choice(open_path(forced, os.environ))
    except Unavailable as exc:
        raise StageError(f"DETECT_PATH={forced} cannot run here: {exc}", 2) from None


def with_boxes(frame: np.ndarray, blobs: list[dict[str, float]]) -> np.ndarray:
    """A copy of ``frame`` with a rectangle around every blob."""
    drawn = frame.copy()
    for blob in blobs:
        x, y, w, h = int(blob["x"]), int(blob["y"]), int(blob["w"]), int(blob["h"])
        cv2.rectangle(drawn, (x, y), (x + w - 1, y + h - 1), BOX_COLOUR, 2)
    return drawn


def write_review_frames(out: Path, busiest: dict[int, tuple[int, int, np.ndarray]]) -> None:
    """Write each part's busiest frame (count, index, drawn frame) as a JPEG."""
    folder = out / REVIEW_DIR
    folder.mkdir(exist_ok=True)
    for _count, index, drawn in sorted(busiest.values(), key=lambda kept: kept[1]):
        cv2.imwrite(str(folder / f"frame-{index:05d}.jpg"), drawn)


def main() -> None:
    video = find_video()
    min_area = env_float("MIN_AREA", 150, minimum=0)
    threshold = env_int("DIFF_THRESHOLD", 30, minimum=1)
    samples = env_int("BACKGROUND_SAMPLES", 50, minimum=3)
    out = workspace()
    choice = choose_path()
    print(f"detect: {choice.describe()}", flush=True)

    capture = open_video(video)
    fps = capture.get(cv2.CAP_PROP_FPS)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    expected_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    print(f"detect: {video} ({width}x{height}, {fps:g} fps); building the background", flush=True)

    # The background pass is the first half of the progress, detection the second.
    progress = Progress(STAGE, 2 * expected_frames)
    background, frames = median_background(video, samples, progress)
    progress.total = 2 * frames
    cv2.imwrite(str(out / BACKGROUND_FILE), background)
    background_blurred = blur_background(background)

    rows = []
    frames_with_detections = 0
    busiest: dict[int, tuple[int, int, np.ndarray]] = {}
    capture = open_video(video)
    for index in range(frames):
        ok, frame = capture.read()
        if not ok:
            break
        blobs = detect_frame(choice.path, frame, background_blurred, threshold, min_area)
        frames_with_detections += bool(blobs)
        part = index * REVIEW_FRAMES // frames
        if blobs and len(blobs) > busiest.get(part, (0, 0, None))[0]:
            busiest[part] = (len(blobs), index, with_boxes(frame, blobs))
        rows.extend({"frame": index, **blob} for blob in blobs)
        progress.update(frames + index + 1)
    capture.release()

    write_csv(out / DETECTIONS_FILE, DETECTION_FIELDS, rows)
    write_review_frames(out, busiest)
    info = {
        "video": os.environ["INPUT_VIDEO"],
        "fps": fps,
        "width": width,
        "height": height,
        "frames": frames,
    }
    (out / VIDEO_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"detect: {frames} frames, {len(rows)} detections in {frames_with_detections} frames "
        f"(MIN_AREA {min_area:g} px²) -> {DETECTIONS_FILE}",
        flush=True,
    )
    # Results Winslow keeps with the run; the pipeline's `when:` on track reads them.
    print(f"WINSLOW_RESULT: frames={frames}", flush=True)
    print(f"WINSLOW_RESULT: detections={len(rows)}", flush=True)
    print(f"WINSLOW_RESULT: detector={choice.path.name}", flush=True)


if __name__ == "__main__":
    run_stage(STAGE, main)
