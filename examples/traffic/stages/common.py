"""What the traffic stages share: where files are, settings from the environment, progress.

Each stage is a plain script that the orchestrator runs with the workspace as its working
directory. It reads its settings from environment variables (``WINSLOW_WORKSPACE``,
``WINSLOW_INPUTS`` and the pipeline's variables) and the previous stage's files from the
workspace, and it writes its own files there. A problem the person can fix — a missing input,
a setting that is not a number — becomes a ``StageError``; ``run_stage`` prints it to stderr as
``<stage>: <message>`` and exits non-zero, so the run fails with a reason instead of a traceback.
Only the standard library is used here so the stages import it before numpy or OpenCV.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

VIDEO_INFO_FILE = "video.json"
"""Written by detect: the input video's path, fps, size and frame count."""

BACKGROUND_FILE = "background.png"
"""Written by detect: the median background the detections were measured against."""

DETECTIONS_FILE = "detections.csv"
TRACKS_FILE = "tracks.csv"
SUMMARY_FILE = "summary.json"
HEATMAP_FILE = "heatmap.png"


class StageError(Exception):
    """A problem the person running the pipeline can fix; ``exit_code`` is what we exit with
    (1: an input is missing or unreadable, 2: a setting is wrong)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_stage(stage: str, main: Callable[[], None]) -> None:
    """Run ``main`` and exit: 0 when it returns, ``StageError.exit_code`` with the message on
    stderr when it raises one."""
    try:
        main()
    except StageError as exc:
        print(f"{stage}: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    sys.exit(0)


def workspace() -> Path:
    """Return the stage's workspace: ``$WINSLOW_WORKSPACE``, else the working directory."""
    return Path(os.environ.get("WINSLOW_WORKSPACE") or ".")


def inputs_dir() -> Path:
    """Return where resource-pool inputs appear: ``$WINSLOW_INPUTS``, else the workspace."""
    value = os.environ.get("WINSLOW_INPUTS")
    return Path(value) if value else workspace()


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    """Return environment variable ``name`` as a number, ``default`` when unset or empty.

    Raises ``StageError`` (exit code 2) when it is not a number or below ``minimum``.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise StageError(f"{name}={raw!r} is not a number; set it to e.g. {default:g}", 2) from None
    if minimum is not None and value < minimum:
        raise StageError(f"{name}={raw} is below {minimum:g}; set it to e.g. {default:g}", 2)
    return value


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    """Like ``env_float`` for whole numbers."""
    value = env_float(name, default, minimum=minimum)
    if value != int(value):
        raise StageError(f"{name}={value:g} is not a whole number; set it to e.g. {default}", 2)
    return int(value)


def require_file(path: Path, stage_before: str) -> Path:
    """Return ``path`` if it is a file; raise ``StageError`` naming the stage that writes it."""
    if not path.is_file():
        raise StageError(
            f"{path.name} not found in the workspace ({path.parent.resolve()}); "
            f"run the '{stage_before}' stage first, or continue from its workspace"
        )
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """Return the rows of the CSV file ``path`` as dicts keyed by its header."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, fields: list[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as CSV with header ``fields``."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def read_json(path: Path) -> Any:
    """Return the parsed JSON in ``path``."""
    return json.loads(path.read_text())


class Progress:
    """Prints ``<stage>: NN %`` each time another ``step`` percent of ``total`` is done."""

    def __init__(self, stage: str, total: int, step: int = 10) -> None:
        self.stage = stage
        self.total = max(total, 1)
        self.step = step
        self.shown = -1

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total) // self.step * self.step
        if percent > self.shown:
            self.shown = percent
            print(f"{self.stage}: {percent} %", flush=True)
