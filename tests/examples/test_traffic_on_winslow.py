"""The traffic example through Winslow itself: the video in the resource pool, the
pipeline file as shipped, the review gate, and the results read back from storage."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.examples.test_traffic import EXAMPLE, SPEED_TOLERANCE, generate_video, match_tracks
from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace

pytest.importorskip("cv2", reason="the traffic example needs opencv-python-headless")
pytestmark = pytest.mark.slow


def test_traffic_pipeline_on_winslow_counts_and_times_every_vehicle(
    winslow: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stages run `python3` from PATH; make it this interpreter, as a venv on PATH does.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    video, truth_file = tmp_path / "road.mp4", tmp_path / "truth.json"
    generate_video(video, truth_file)
    winslow.context.objects.upload_file(video, "resources/videos/road.mp4")
    winslow.apply_pipeline((EXAMPLE / "pipeline.yaml").read_text())
    winslow.create(
        "ulm",
        "traffic",
        start=True,
        variables={"INPUT_VIDEO": "videos/road.mp4", "EXAMPLES_DIR": str(EXAMPLE)},
    )

    winslow.engine.run_until_idle(timeout=120)
    at_gate = winslow.show("ulm")
    assert (at_gate["state"], at_gate["waiting_for"].get("gate")) == ("awaiting_input", "review")

    card = winslow.api.get("/api/v1/projects/ulm/gate").json()
    detections = winslow.show("ulm")["runs"][0]["results"]["detections"]
    assert f"found <strong>{detections}</strong> vehicle detections" in card["description_html"]
    assert [i["name"] for i in card["inputs"]] == ["MIN_TRACK_FRAMES", "TRACK_GATE"]
    detect_run = winslow.show("ulm")["runs"][0]["id"]
    assert card["review"][0] == {
        "path": "videos/road.mp4",
        "run": detect_run,
        "stage": "detect",
        "source": "pool",
    }
    reviewed = [f["path"] for f in card["review"][1:]]
    assert reviewed[0].startswith("frames/frame-") and reviewed[0].endswith(".jpg")
    assert reviewed[-2:] == ["detections.csv", "video.json"]
    # The pool video's preview draws detect's boxes on its frames (the previews API).
    preview = winslow.api.get(
        "/api/v1/projects/ulm/workspace/preview",
        params={"run": detect_run, "path": "videos/road.mp4", "source": "pool", "kind": "video"},
    )
    assert preview.status_code == 200, preview.text

    winslow.command("ulm", "resume", {"answers": {"MIN_TRACK_FRAMES": 8, "TRACK_GATE": 30}})
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("ulm")
    assert project["state"] == "succeeded", project
    assert project["variables"]["MIN_TRACK_FRAMES"] == "8"
    assert [r["stage"] for r in project["runs"]] == ["detect", "review", "track", "analyze"]

    analyze = project["runs"][-1]
    files = read_workspace(winslow.context.objects, analyze["workspace"])
    summary = json.loads(files["summary.json"])
    truth = json.loads(truth_file.read_text())
    assert summary["vehicles"] == len(truth["vehicles"])
    for vehicle_id, track in match_tracks(truth, summary).items():
        expected = next(v for v in truth["vehicles"] if v["id"] == vehicle_id)["speed_kmh"]
        assert track["speed_kmh"] == pytest.approx(expected, rel=SPEED_TOLERANCE)
    assert files["heatmap.png"].startswith(b"\x89PNG")

    # What the stages reported is kept with their runs, and analyze's per-vehicle lines
    # became a series through the pipeline's log parser.
    detect = project["runs"][0]
    assert detect["results"]["detections"] > 0
    if not winslow.context.backend.nodes()[0].gpus:
        assert detect["gpus"] == 0  # it asks for a GPU, and may run on the CPU without one
    assert analyze["results"]["vehicles"] == len(truth["vehicles"])
    series = winslow.api.get(f"/api/v1/projects/ulm/runs/{analyze['id']}/series").json()
    [speeds] = series["series"]
    assert speeds["name"] == "speeds" and speeds["fields"] == ["vehicle", "speed_kmh"]
    measured = sorted(point["values"]["speed_kmh"] for point in speeds["points"])
    assert measured == sorted(round(v["speed_kmh"], 1) for v in summary["per_vehicle"])
