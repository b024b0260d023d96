"""Link per-frame detections into vehicle trajectories by greedy nearest-neighbour matching.

Frame by frame, each open track predicts where its vehicle is now (last position plus its
recent velocity times the frames since it was last seen). Every (track, detection) pair whose
distance to the prediction is within ``TRACK_GATE`` pixels, and which does not send the track
backwards against its established direction, is a candidate; candidates are taken closest
first, each track and detection at most once. A detection nobody takes starts a new track; a
track unmatched for more than ``MAX_MISSED`` frames is closed. Tracks shorter than
``MIN_TRACK_FRAMES`` are dropped as noise (a blob split in two, a flicker). Vehicles here move
at most a few tens of pixels per frame and keep their lane, so this simple scheme suffices.

Reads ``detections.csv``. Settings: ``TRACK_GATE`` (px, default 30), ``MAX_MISSED`` (frames,
default 3), ``MIN_TRACK_FRAMES`` (default 8). Writes ``tracks.csv`` (track_id, frame, cx, cy,
plus the detection's box x, y, w, h), tracks numbered in order of appearance.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (
    DETECTIONS_FILE,
    TRACKS_FILE,
    Progress,
    StageError,
    env_float,
    env_int,
    read_csv,
    require_file,
    run_stage,
    workspace,
    write_csv,
)

STAGE = "track"
TRACK_FIELDS = ["track_id", "frame", "cx", "cy", "x", "y", "w", "h"]
VELOCITY_WINDOW = 5
"""How many of a track's latest points its velocity is averaged over."""
MIN_DIRECTION_SPEED = 0.5
"""Pixels per frame a track must move before its direction counts as established."""


@dataclass
class Detection:
    frame: int
    cx: float
    cy: float
    box: tuple[int, int, int, int]


@dataclass
class Track:
    points: list[Detection] = field(default_factory=list)
    missed: int = 0

    def velocity(self) -> tuple[float, float]:
        """Pixels per frame over the latest ``VELOCITY_WINDOW`` points; (0, 0) with one."""
        recent = self.points[-VELOCITY_WINDOW:]
        frames = recent[-1].frame - recent[0].frame
        if frames == 0:
            return 0.0, 0.0
        return (recent[-1].cx - recent[0].cx) / frames, (recent[-1].cy - recent[0].cy) / frames

    def predict(self, frame: int) -> tuple[float, float]:
        last = self.points[-1]
        vx, vy = self.velocity()
        return last.cx + vx * (frame - last.frame), last.cy + vy * (frame - last.frame)

    def allows(self, detection: Detection) -> bool:
        """Whether moving to ``detection`` keeps the track's direction of travel."""
        vx, vy = self.velocity()
        if (vx * vx + vy * vy) ** 0.5 < MIN_DIRECTION_SPEED:
            return True
        last = self.points[-1]
        return (detection.cx - last.cx) * vx + (detection.cy - last.cy) * vy >= 0


def load_detections(rows: list[dict[str, str]]) -> dict[int, list[Detection]]:
    """Group the rows of ``detections.csv`` by frame."""
    by_frame: dict[int, list[Detection]] = {}
    try:
        for row in rows:
            detection = Detection(
                frame=int(row["frame"]),
                cx=float(row["cx"]),
                cy=float(row["cy"]),
                box=(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])),
            )
            by_frame.setdefault(detection.frame, []).append(detection)
    except (KeyError, ValueError) as exc:
        raise StageError(
            f"{DETECTIONS_FILE} is malformed ({exc!r}); run the 'detect' stage again"
        ) from exc
    return by_frame


def link(
    by_frame: dict[int, list[Detection]], gate: float, max_missed: int, progress: Progress
) -> list[Track]:
    """Return every track, open or closed, built frame by frame from ``by_frame``."""
    open_tracks: list[Track] = []
    closed: list[Track] = []
    frames = sorted(by_frame)
    for step, frame in enumerate(range(frames[0], frames[-1] + 1) if frames else []):
        detections = by_frame.get(frame, [])
        pairs = []
        for t_index, track in enumerate(open_tracks):
            px, py = track.predict(frame)
            for d_index, detection in enumerate(detections):
                distance = ((detection.cx - px) ** 2 + (detection.cy - py) ** 2) ** 0.5
                if distance <= gate and track.allows(detection):
                    pairs.append((distance, t_index, d_index))
        taken_tracks: set[int] = set()
        taken_detections: set[int] = set()
        for _, t_index, d_index in sorted(pairs):
            if t_index in taken_tracks or d_index in taken_detections:
                continue
            open_tracks[t_index].points.append(detections[d_index])
            open_tracks[t_index].missed = 0
            taken_tracks.add(t_index)
            taken_detections.add(d_index)
        still_open = []
        for t_index, track in enumerate(open_tracks):
            if t_index not in taken_tracks:
                track.missed += 1
            (closed if track.missed > max_missed else still_open).append(track)
        still_open.extend(
            Track(points=[d]) for i, d in enumerate(detections) if i not in taken_detections
        )
        open_tracks = still_open
        progress.update(step + 1)
    return closed + open_tracks


def main() -> None:
    out = workspace()
    rows = read_csv(require_file(out / DETECTIONS_FILE, "detect"))
    gate = env_float("TRACK_GATE", 30.0, minimum=1)
    max_missed = env_int("MAX_MISSED", 3, minimum=0)
    min_frames = env_int("MIN_TRACK_FRAMES", 8, minimum=1)

    by_frame = load_detections(rows)
    span = (max(by_frame) - min(by_frame) + 1) if by_frame else 0
    tracks = link(by_frame, gate, max_missed, Progress(STAGE, span))
    kept = sorted(
        (t for t in tracks if len(t.points) >= min_frames), key=lambda t: t.points[0].frame
    )
    write_csv(
        out / TRACKS_FILE,
        TRACK_FIELDS,
        (
            {
                "track_id": track_id,
                "frame": p.frame,
                "cx": p.cx,
                "cy": p.cy,
                "x": p.box[0],
                "y": p.box[1],
                "w": p.box[2],
                "h": p.box[3],
            }
            for track_id, track in enumerate(kept, 1)
            for p in track.points
        ),
    )
    print(
        f"track: {len(kept)} tracks from {len(rows)} detections "
        f"({len(tracks) - len(kept)} shorter than {min_frames} frames dropped) -> {TRACKS_FILE}",
        flush=True,
    )


if __name__ == "__main__":
    run_stage(STAGE, main)
