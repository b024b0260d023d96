"""Frames per second of the traffic example's detection kernel on every path present.

Synthetic road frames from ``examples/traffic/generate.py`` (4K, 3840x2160, by default:
the road, six vehicles, sensor noise) go through each execution path of
``examples/traffic/detector`` that opens here (TensorRT, onnxruntime on CUDA, CuPy,
PyTorch on CUDA, onnxruntime on the CPU, the OpenCV reference). Per path: one frame first,
not timed (it builds the TensorRT engine, or loads it from the cache, and warms the GPU),
and its mask is checked against OpenCV's; then ``--frames`` frames are timed, each the whole
``mask()`` call with the host-to-device and device-to-host copies. The contours and boxes,
the same CPU code for every path, are not in the figure.

Printed: one line per path with frames per second and the ratio to onnxruntime on the CPU,
the lines for paths that cannot run here with the reason, then the figures as JSON. Exits 1
if a path's mask differs from the reference.

    python bench/detect.py [--frames 10] [--width 3840] [--height 2160] [--paths tensorrt,...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "traffic"))

import generate  # noqa: E402
from detector import ORDER, Unavailable, blur_background, open_path, reference_mask  # noqa: E402

BASELINE = "onnxruntime-cpu"
THRESHOLD = 30


def road_frames(width: int, height: int, count: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The blurred background and ``count`` frames with vehicles along the road."""
    rng = np.random.default_rng(21)
    seconds = max(10.0, 1.2 * (width + 100) / generate.MAX_SPEED_PX_PER_S + 1)
    background = generate.draw_background(width, height, rng)
    vehicles = generate.plan_vehicles(6, width, height, seconds, 15.0, 0.1, rng)
    frames = []
    for index in range(count):
        frame = background.copy()
        for vehicle in vehicles:
            generate.draw_vehicle(frame, vehicle, seconds * (index + 1) / (count + 1))
        noise = rng.standard_normal(frame.shape, dtype=np.float32)
        noise *= generate.SENSOR_NOISE_SIGMA
        noise += frame
        frames.append(np.clip(noise, 0, 255).astype(np.uint8))
    return blur_background(background), frames


def measure(name: str, background: np.ndarray, frames: list[np.ndarray]) -> dict[str, Any]:
    try:
        path = open_path(name, os.environ, log=lambda text: print(text, file=sys.stderr))
    except Unavailable as exc:
        return {"path": name, "skipped": str(exc)}
    expected = reference_mask(frames[0], background, THRESHOLD)
    started = time.perf_counter()
    exact = bool(np.array_equal(path.mask(frames[0], background, THRESHOLD), expected))
    first = time.perf_counter() - started
    started = time.perf_counter()
    for frame in frames:
        path.mask(frame, background, THRESHOLD)
    seconds = time.perf_counter() - started
    return {
        "path": name,
        "fps": round(len(frames) / seconds, 2),
        "first_frame_s": round(first, 3),
        "equals_reference": exact,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="timed frames per path (10)")
    parser.add_argument("--width", type=int, default=3840, help="frame width in px (3840)")
    parser.add_argument("--height", type=int, default=2160, help="frame height in px (2160)")
    parser.add_argument("--paths", default=",".join(ORDER), help="paths to try, comma separated")
    args = parser.parse_args()
    names = [name.strip() for name in args.paths.split(",") if name.strip()]
    if args.frames < 1 or not names:
        parser.error("--frames must be at least 1 and --paths name at least one path")

    background, frames = road_frames(args.width, args.height, args.frames)
    results = [measure(name, background, frames) for name in names]
    baseline = next((r["fps"] for r in results if r["path"] == BASELINE and "fps" in r), None)
    print(f"{args.width}x{args.height}, {args.frames} frames per path, CPU cores: {os.cpu_count()}")
    for result in results:
        if "skipped" in result:
            print(f"  {result['path']:<17} skipped: {result['skipped']}")
            continue
        fps = float(result["fps"])
        if baseline:
            result["ratio_to_" + BASELINE] = round(fps / float(baseline), 2)
        ratio = f"{fps / float(baseline):6.2f}x {BASELINE}" if baseline else ""
        same = "" if result["equals_reference"] else "  MASK DIFFERS FROM THE REFERENCE"
        print(f"  {result['path']:<17} {fps:8.2f} frames/s  {ratio}{same}")
    print(json.dumps(results, indent=2))
    return 0 if all(r.get("equals_reference", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
