"""Turn vehicle tracks into a count, a speed per vehicle and a heat map of where traffic went.

Each track is one vehicle. Its speed is the slope of a straight-line fit of the box centre
against time, using only the frames where the box keeps clear of the frame border: while a
vehicle is entering or leaving, its visible box grows or shrinks and the centre moves at half
the real speed. Pixels per second become km/h through ``METERS_PER_PIXEL``; the frame rate
comes from ``video.json`` (what detect read from the video) unless ``FPS`` overrides it. The
heat map counts, per pixel, how many tracks passed over it (each track's path drawn once,
then blurred), coloured with the JET map and laid over the detect stage's median background.

Reads ``tracks.csv``, ``video.json`` and ``background.png``. Settings: ``METERS_PER_PIXEL``
(default 0.1), ``FPS`` (default: the video's), ``BORDER_MARGIN`` (px, default 2). Writes
``summary.json`` ({vehicles, speeds_kmh, mean_speed_kmh, per_vehicle, ...}) and ``heatmap.png``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (
    BACKGROUND_FILE,
    HEATMAP_FILE,
    SUMMARY_FILE,
    TRACKS_FILE,
    VIDEO_INFO_FILE,
    StageError,
    env_float,
    read_csv,
    read_json,
    require_file,
    run_stage,
    workspace,
)

STAGE = "analyze"
MIN_FIT_POINTS = 3
"""Fewer interior points than this and the speed is fitted over the whole track."""
HEAT_LINE_PX = 9
"""Thickness of one track's path on the heat map, before blurring."""


def interior(points: np.ndarray, width: int, height: int, margin: float) -> np.ndarray:
    """Return the boolean mask of rows whose box (columns x, y, w, h) clears the border."""
    x, y, w, h = points[:, 3], points[:, 4], points[:, 5], points[:, 6]
    return (x > margin) & (y > margin) & (x + w < width - margin) & (y + h < height - margin)


def compass(vx: float, vy: float) -> str:
    """Name the main direction of image motion; y grows downwards (south)."""
    if abs(vx) >= abs(vy):
        return "east" if vx > 0 else "west"
    return "south" if vy > 0 else "north"


def measure(
    track_id: int,
    points: np.ndarray,
    fps: float,
    mpp: float,
    width: int,
    height: int,
    margin: float,
) -> dict[str, Any]:
    """Return one vehicle's entry of ``summary.json`` from its track points
    (columns: frame, cx, cy, x, y, w, h)."""
    clear = interior(points, width, height, margin)
    fit = points[clear] if clear.sum() >= MIN_FIT_POINTS else points
    t = fit[:, 0] / fps
    if len(fit) >= 2 and np.ptp(t) > 0:
        vx = float(np.polyfit(t, fit[:, 1], 1)[0])
        vy = float(np.polyfit(t, fit[:, 2], 1)[0])
    else:
        vx = vy = 0.0
    speed_px = float(np.hypot(vx, vy))
    return {
        "track_id": track_id,
        "first_frame": int(points[0, 0]),
        "last_frame": int(points[-1, 0]),
        "detections": len(points),
        "fitted_points": len(fit),
        "direction": compass(vx, vy),
        "mean_cx": round(float(points[:, 1].mean()), 1),
        "mean_cy": round(float(points[:, 2].mean()), 1),
        "speed_px_per_s": round(speed_px, 2),
        "speed_kmh": round(speed_px * mpp * 3.6, 2),
    }


def draw_heatmap(
    tracks: dict[int, np.ndarray], background: np.ndarray | None, width: int, height: int
) -> np.ndarray:
    """Return a BGR image of ``height`` x ``width``: track density over the background."""
    density = np.zeros((height, width), np.float32)
    path = np.zeros((height, width), np.uint8)
    for points in tracks.values():
        path[:] = 0
        centres = np.round(points[:, 1:3]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(path, [centres], False, 1, HEAT_LINE_PX)
        density += path
    density = cv2.GaussianBlur(density, (0, 0), 4)
    if background is None or background.shape[:2] != (height, width):
        background = np.full((height, width, 3), 64, np.uint8)
    if density.max() <= 0:
        return background
    level = density / density.max()
    colours = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (0.75 * np.sqrt(level))[..., None]
    blended = background * (1 - alpha) + colours * alpha
    return np.clip(blended, 0, 255).astype(np.uint8)


def load_tracks(path: Path) -> dict[int, np.ndarray]:
    """Return each track's points as rows of (frame, cx, cy, x, y, w, h), by frame."""
    columns = ["frame", "cx", "cy", "x", "y", "w", "h"]
    grouped: dict[int, list[list[float]]] = {}
    try:
        for row in read_csv(path):
            grouped.setdefault(int(row["track_id"]), []).append([float(row[c]) for c in columns])
    except (KeyError, ValueError) as exc:
        raise StageError(
            f"{path.name} is malformed ({exc!r}); run the 'track' stage again"
        ) from exc
    return {tid: np.array(sorted(rows)) for tid, rows in sorted(grouped.items())}


def main() -> None:
    out = workspace()
    tracks = load_tracks(require_file(out / TRACKS_FILE, "track"))
    info = read_json(require_file(out / VIDEO_INFO_FILE, "detect"))
    mpp = env_float("METERS_PER_PIXEL", 0.1, minimum=1e-9)
    fps = env_float("FPS", float(info.get("fps") or 0), minimum=0)
    if fps <= 0:
        raise StageError(f"the frame rate is unknown ({VIDEO_INFO_FILE} has none); set FPS", 2)
    margin = env_float("BORDER_MARGIN", 2.0, minimum=0)
    width, height = int(info["width"]), int(info["height"])

    vehicles = [
        measure(tid, points, fps, mpp, width, height, margin) for tid, points in tracks.items()
    ]
    speeds = [v["speed_kmh"] for v in vehicles]
    summary = {
        "vehicles": len(vehicles),
        "speeds_kmh": speeds,
        "mean_speed_kmh": round(float(np.mean(speeds)), 2) if speeds else None,
        "fps": fps,
        "meters_per_pixel": mpp,
        "per_vehicle": vehicles,
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")

    background_path = out / BACKGROUND_FILE
    background = cv2.imread(str(background_path)) if background_path.is_file() else None
    cv2.imwrite(str(out / HEATMAP_FILE), draw_heatmap(tracks, background, width, height))

    for v in vehicles:
        print(
            f"analyze: vehicle {v['track_id']}: {v['direction']}, frames "
            f"{v['first_frame']}-{v['last_frame']}, {v['speed_kmh']:.1f} km/h",
            flush=True,
        )
    mean = f"{summary['mean_speed_kmh']:.1f} km/h" if speeds else "n/a"
    print(
        f"analyze: {len(vehicles)} vehicles, mean speed {mean} -> {SUMMARY_FILE}, {HEATMAP_FILE}",
        flush=True,
    )
    print(f"WINSLOW_RESULT: vehicles={len(vehicles)}", flush=True)
    if speeds:
        print(f"WINSLOW_RESULT: mean_speed_kmh={summary['mean_speed_kmh']:.1f}", flush=True)


if __name__ == "__main__":
    run_stage(STAGE, main)
