"""Tell the person at the gate what detect produced, before tracking starts.

The pipeline stops before this stage; once a person lets it go, it prints where the
detections are, how many there are and in how many frames, and a rough per-frame profile, so
the log of the run shows what was approved. It changes nothing in the workspace.

Reads ``detections.csv`` and, if present, ``video.json``. No settings.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (
    DETECTIONS_FILE,
    VIDEO_INFO_FILE,
    read_csv,
    read_json,
    require_file,
    run_stage,
    workspace,
)

STAGE = "review"


def main() -> None:
    out = workspace()
    path = require_file(out / DETECTIONS_FILE, "detect")
    rows = read_csv(path)
    per_frame = Counter(row["frame"] for row in rows)
    info_path = out / VIDEO_INFO_FILE
    frames = read_json(info_path).get("frames") if info_path.is_file() else None
    of_frames = f" of {frames}" if frames is not None else ""
    busiest = max(per_frame.values(), default=0)
    print(f"review: detections at {path.resolve()}", flush=True)
    print(
        f"review: {len(per_frame)}{of_frames} frames hold detections; "
        f"at most {busiest} in one frame",
        flush=True,
    )
    print(f"review: {len(rows)} detections", flush=True)


if __name__ == "__main__":
    run_stage(STAGE, main)
