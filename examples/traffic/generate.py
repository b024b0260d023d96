"""Make a synthetic top-down road video with known vehicles, for the traffic example.

The scene is a four-lane road seen from straight above: grass on both sides, asphalt with a
fine static texture, dashed lane lines and a double centre line. The two upper lanes run west
(right to left), the two lower lanes east. Each vehicle is a coloured rectangle with a roof of
a slightly different shade; it enters at one edge, drives along the middle of its lane at a
constant speed in pixels per second and leaves at the other edge, all within the video. Within
a lane vehicles keep a clear gap from entry to exit, so detection and tracking have a single
right answer, and every frame gets a little Gaussian sensor noise. The seed fixes everything.

The truth file lists each vehicle (lane, direction, size, speed in px/s and km/h, first and
last visible frame) and the metres-per-pixel scale that turns pixels into metres, so the
pipeline's count and speeds can be checked against it::

    python examples/traffic/generate.py road.mp4 --vehicles 8 --seconds 10 --seed 7 \
        --truth road_truth.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

LANE_WIDTH_PX = 40
"""Width of one lane in pixels (4 m at the default scale)."""

LANE_COUNT = 4
"""Lanes on the road: the upper half runs west, the lower half east."""

MIN_GAP_PX = 80
"""Smallest bumper-to-bumper gap between two vehicles in one lane, in pixels."""

EDGE_MARGIN_S = 0.2
"""Seconds kept free at the start and end of the video before the first entry / after the
last exit, so every vehicle is seen entering and leaving."""

SPEED_RANGE_PX_PER_S = (110.0, 230.0)
"""Vehicle speeds are drawn from this range (pixels per second)."""

MAX_SPEED_PX_PER_S = 300.0
"""A short video raises the slowest speed so vehicles still cross it, up to this limit."""

SENSOR_NOISE_SIGMA = 2.5
"""Standard deviation of the per-frame Gaussian noise, in 8-bit grey levels."""

ASPHALT_BGR = (88, 88, 92)
"""Mean colour of the road surface."""

# (kind, length range px, width range px, weight)
VEHICLE_KINDS = (
    ("car", (38, 50), (18, 20), 6),
    ("van", (50, 62), (20, 23), 2),
    ("truck", (70, 95), (24, 27), 1),
)

BODY_COLOURS_BGR = (
    (40, 40, 200),  # red
    (190, 90, 30),  # blue
    (235, 235, 235),  # white
    (40, 200, 230),  # yellow
    (60, 150, 40),  # green
    (180, 180, 185),  # silver
    (30, 110, 230),  # orange
    (120, 30, 90),  # purple
    (25, 25, 25),  # black
)


@dataclass(frozen=True)
class Vehicle:
    """One vehicle of the scene, as written to the truth file."""

    id: int
    lane: int
    direction: str
    """``"east"`` (moving right) or ``"west"`` (moving left)."""
    kind: str
    length_px: int
    width_px: int
    center_y: float
    speed_px_per_s: float
    speed_kmh: float
    entry_time_s: float
    """When the front bumper crosses the frame edge."""
    entry_frame: int
    """First frame the vehicle is (partly) visible in."""
    exit_frame: int
    """Last frame the vehicle is (partly) visible in."""
    color_bgr: tuple[int, int, int]
    roof_bgr: tuple[int, int, int]


def lane_centers(height: int) -> list[float]:
    """Return the y coordinate of each lane's centre line, top lane first."""
    road_top = height / 2 - LANE_COUNT * LANE_WIDTH_PX / 2
    return [road_top + (i + 0.5) * LANE_WIDTH_PX for i in range(LANE_COUNT)]


def lane_direction(lane: int) -> str:
    """Return the direction of travel of ``lane``: the upper half runs west."""
    return "west" if lane < LANE_COUNT // 2 else "east"


def draw_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Return the static scene: textured grass, asphalt, lane and edge markings."""
    # Grass: green with low-frequency blotches and fine blades.
    blotches = cv2.resize(
        rng.normal(0, 1, (height // 16 + 1, width // 16 + 1)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    fine = rng.normal(0, 1, (height, width)).astype(np.float32)
    grass = np.empty((height, width, 3), np.float32)
    for channel, (base, swing) in enumerate(((45, 10), (120, 25), (70, 12))):
        grass[..., channel] = base + swing * blotches + 0.5 * swing * fine
    image = grass

    top = round(height / 2 - LANE_COUNT * LANE_WIDTH_PX / 2) - 6
    bottom = round(height / 2 + LANE_COUNT * LANE_WIDTH_PX / 2) + 6
    grain = rng.normal(0, 6, (bottom - top, width)).astype(np.float32)
    patches = cv2.resize(
        rng.normal(0, 4, ((bottom - top) // 8 + 1, width // 8 + 1)).astype(np.float32),
        (width, bottom - top),
        interpolation=cv2.INTER_LINEAR,
    )
    for channel, base in enumerate(ASPHALT_BGR):
        image[top:bottom, :, channel] = base + grain + patches
    image = np.clip(image, 0, 255).astype(np.uint8)

    white, yellow = (215, 215, 215), (40, 190, 220)
    centers = lane_centers(height)
    for edge_y in (centers[0] - LANE_WIDTH_PX / 2 - 2, centers[-1] + LANE_WIDTH_PX / 2 + 2):
        cv2.line(image, (0, int(edge_y)), (width, int(edge_y)), white, 2)
    middle = round(height / 2)
    cv2.line(image, (0, middle - 2), (width, middle - 2), yellow, 1)
    cv2.line(image, (0, middle + 2), (width, middle + 2), yellow, 1)
    for lane in range(LANE_COUNT - 1):
        boundary_y = round(centers[lane] + LANE_WIDTH_PX / 2)
        if boundary_y == middle:
            continue
        for x in range(10, width, 50):
            cv2.line(image, (x, boundary_y), (x + 24, boundary_y), white, 2)
    return image


def roof_shade(body: tuple[int, int, int]) -> tuple[int, int, int]:
    """Return a roof colour a little lighter or darker than ``body``, whichever stays
    further from the asphalt, so the whole vehicle stands out from the road."""
    lighter = tuple(int(c + 0.3 * (255 - c)) for c in body)
    darker = tuple(int(c * 0.75) for c in body)

    def contrast(colour: tuple[int, ...]) -> int:
        return max(abs(a - b) for a, b in zip(colour, ASPHALT_BGR, strict=True))

    best = lighter if contrast(lighter) >= contrast(darker) else darker
    return best[0], best[1], best[2]


def front_position(vehicle: Vehicle, t: float) -> float:
    """Distance in pixels the front bumper has travelled into the frame at time ``t``."""
    return vehicle.speed_px_per_s * (t - vehicle.entry_time_s)


def fits_lane(candidate: Vehicle, others: list[Vehicle], width: int) -> bool:
    """Whether ``candidate`` keeps at least ``MIN_GAP_PX`` to every vehicle in its lane.

    Positions are linear in time, so the gap is checked where it is smallest: when the later
    vehicle enters and when the earlier one's rear leaves.
    """
    for other in others:
        if other.lane != candidate.lane:
            continue
        first, second = sorted((other, candidate), key=lambda v: v.entry_time_s)
        gap_at_entry = front_position(first, second.entry_time_s) - first.length_px
        first_gone = first.entry_time_s + (width + first.length_px) / first.speed_px_per_s
        gap_at_exit = width - front_position(second, first_gone)
        if min(gap_at_entry, gap_at_exit) < MIN_GAP_PX:
            return False
    return True


def plan_vehicles(
    count: int,
    width: int,
    height: int,
    seconds: float,
    fps: float,
    mpp: float,
    rng: np.random.Generator,
) -> list[Vehicle]:
    """Draw ``count`` vehicles that each cross the whole frame within the video without
    coming closer than ``MIN_GAP_PX`` to another in their lane.

    Raises ``ValueError`` when the video is too short or too crowded for that.
    """
    usable = seconds - 2 * EDGE_MARGIN_S
    longest = max(kind[1][1] for kind in VEHICLE_KINDS)
    slowest = max(SPEED_RANGE_PX_PER_S[0], 1.05 * (width + longest) / max(usable, 1e-6))
    if slowest > MAX_SPEED_PX_PER_S:
        enough = ((width + longest) / MAX_SPEED_PX_PER_S + 2 * EDGE_MARGIN_S) * 1.1
        raise ValueError(
            f"{seconds:g} s is too short for vehicles to cross a {width} px frame; "
            f"use --seconds {math.ceil(enough)} or more"
        )
    fastest = max(SPEED_RANGE_PX_PER_S[1], slowest + 20)
    weights = np.array([kind[3] for kind in VEHICLE_KINDS], float)
    centers = lane_centers(height)
    vehicles: list[Vehicle] = []
    for vehicle_id in range(1, count + 1):
        for _attempt in range(2000):
            kind, length_range, width_range, _ = VEHICLE_KINDS[
                rng.choice(len(VEHICLE_KINDS), p=weights / weights.sum())
            ]
            length = int(rng.integers(length_range[0], length_range[1] + 1))
            breadth = int(rng.integers(width_range[0], width_range[1] + 1))
            speed = round(float(rng.uniform(slowest, fastest)), 1)
            crossing = (width + length) / speed
            latest = seconds - EDGE_MARGIN_S - crossing
            entry = float(rng.uniform(EDGE_MARGIN_S, latest))
            lane = int(rng.integers(LANE_COUNT))
            body = BODY_COLOURS_BGR[int(rng.integers(len(BODY_COLOURS_BGR)))]
            candidate = Vehicle(
                id=vehicle_id,
                lane=lane,
                direction=lane_direction(lane),
                kind=kind,
                length_px=length,
                width_px=breadth,
                center_y=centers[lane],
                speed_px_per_s=speed,
                speed_kmh=round(speed * mpp * 3.6, 2),
                entry_time_s=round(entry, 4),
                entry_frame=-1,
                exit_frame=-1,
                color_bgr=body,
                roof_bgr=roof_shade(body),
            )
            if fits_lane(candidate, vehicles, width):
                vehicles.append(candidate)
                break
        else:
            raise ValueError(
                f"cannot fit {count} vehicles into {seconds:g} s with a {MIN_GAP_PX} px gap; "
                "use fewer --vehicles or more --seconds"
            )
    # Number vehicles in order of appearance and note the frames each is visible in.
    frames = round(seconds * fps)
    numbered = []
    for number, vehicle in enumerate(sorted(vehicles, key=lambda v: v.entry_time_s), 1):
        seen = [f for f in range(frames) if is_visible(vehicle, f / fps, width)]
        numbered.append(replace(vehicle, id=number, entry_frame=seen[0], exit_frame=seen[-1]))
    return numbered


def vehicle_box(vehicle: Vehicle, t: float, width: int) -> tuple[float, float, float, float]:
    """Return the vehicle's rectangle (x0, y0, x1, y1) at time ``t``, unclipped."""
    front = front_position(vehicle, t)
    if vehicle.direction == "east":
        x0, x1 = front - vehicle.length_px, front
    else:
        x0, x1 = width - front, width - front + vehicle.length_px
    half = vehicle.width_px / 2
    return x0, vehicle.center_y - half, x1, vehicle.center_y + half


def visible_columns(vehicle: Vehicle, t: float, width: int) -> tuple[int, int]:
    """Return the pixel columns [left, right) the vehicle covers at ``t``; empty if none."""
    x0, _, x1, _ = vehicle_box(vehicle, t, width)
    return max(0, round(x0)), min(width, round(x1))


def is_visible(vehicle: Vehicle, t: float, width: int) -> bool:
    """Whether any column of the vehicle is inside the frame at ``t``."""
    left, right = visible_columns(vehicle, t, width)
    return right > left


def draw_vehicle(frame: np.ndarray, vehicle: Vehicle, t: float) -> bool:
    """Paint ``vehicle`` at time ``t`` into ``frame``; return whether any of it is visible."""
    width = frame.shape[1]
    x0, y0, x1, y1 = vehicle_box(vehicle, t, width)
    left, right = visible_columns(vehicle, t, width)
    if right <= left:
        return False
    top, bottom = round(y0), round(y1)
    frame[top:bottom, left:right] = vehicle.color_bgr
    # The roof covers the middle of the body, inset from the sides.
    inset_y = max(2, vehicle.width_px // 6)
    roof_x0 = x0 + 0.3 * vehicle.length_px
    roof_x1 = x1 - 0.25 * vehicle.length_px
    if vehicle.direction == "west":
        roof_x0, roof_x1 = x0 + 0.25 * vehicle.length_px, x1 - 0.3 * vehicle.length_px
    roof_left, roof_right = max(0, round(roof_x0)), min(width, round(roof_x1))
    if roof_right > roof_left:
        frame[top + inset_y : bottom - inset_y, roof_left:roof_right] = vehicle.roof_bgr
    return True


def write_video(
    path: Path,
    vehicles: list[Vehicle],
    background: np.ndarray,
    fps: float,
    frames: int,
    rng: np.random.Generator,
) -> None:
    """Render every frame and write them as MPEG-4 Part 2 ('mp4v'), which the
    opencv-python-headless wheels can both write and read."""
    height, width = background.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot open a video writer for {path} with codec 'mp4v'")
    noise = np.empty((height, width, 3), np.float32)
    try:
        for index in range(frames):
            frame = background.copy()
            t = index / fps
            for vehicle in vehicles:
                if vehicle.entry_frame <= index <= vehicle.exit_frame:
                    draw_vehicle(frame, vehicle, t)
            noise[...] = rng.standard_normal(noise.shape, dtype=np.float32)
            noise *= SENSOR_NOISE_SIGMA
            noise += frame
            writer.write(np.clip(noise, 0, 255).astype(np.uint8))
    finally:
        writer.release()


def count_frames(path: Path) -> int:
    """Return how many frames the container of ``path`` says it holds."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="video file to write (.mp4)")
    parser.add_argument("--vehicles", type=int, default=8, help="number of vehicles (8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="video length (10)")
    parser.add_argument("--fps", type=float, default=15.0, help="frames per second (15)")
    parser.add_argument("--width", type=int, default=640, help="frame width in px (640)")
    parser.add_argument("--height", type=int, default=360, help="frame height in px (360)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--meters-per-pixel", type=float, default=0.1, help="ground scale for km/h (0.1)"
    )
    parser.add_argument(
        "--truth", type=Path, help="where to write the truth JSON (OUTPUT stem + _truth.json)"
    )
    args = parser.parse_args(argv)
    if args.vehicles < 0 or args.fps <= 0 or args.seconds <= 0:
        parser.error("--vehicles must be >= 0; --fps and --seconds must be > 0")
    if args.height < LANE_COUNT * LANE_WIDTH_PX + 40 or args.width < 160:
        parser.error(
            f"the road needs at least --height {LANE_COUNT * LANE_WIDTH_PX + 40} and --width 160"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    frames = round(args.seconds * args.fps)
    truth_path = args.truth or args.output.with_name(args.output.stem + "_truth.json")
    try:
        vehicles = plan_vehicles(
            args.vehicles,
            args.width,
            args.height,
            args.seconds,
            args.fps,
            args.meters_per_pixel,
            rng,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    background = draw_background(args.width, args.height, rng)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_video(args.output, vehicles, background, args.fps, frames, rng)
    written = count_frames(args.output)
    if written != frames:
        print(
            f"error: {args.output} reads back with {written} frames, expected {frames}; "
            "this OpenCV build may lack the 'mp4v' codec",
            file=sys.stderr,
        )
        return 1
    truth = {
        "video": args.output.name,
        "width": args.width,
        "height": args.height,
        "fps": args.fps,
        "frames": frames,
        "seed": args.seed,
        "meters_per_pixel": args.meters_per_pixel,
        "lanes": [
            {"lane": i, "center_y": y, "direction": lane_direction(i)}
            for i, y in enumerate(lane_centers(args.height))
        ],
        "vehicles": [asdict(v) for v in vehicles],
    }
    truth_path.write_text(json.dumps(truth, indent=2) + "\n")
    print(
        f"generate: {len(vehicles)} vehicles, {frames} frames at {args.fps:g} fps, "
        f"{args.width}x{args.height} -> {args.output} ({args.output.stat().st_size // 1024} KiB),"
        f" truth -> {truth_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
