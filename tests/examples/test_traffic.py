"""The traffic example end to end: a synthetic video with known vehicles goes through the
stages of ``examples/traffic/pipeline.yaml`` and comes out with the right count and speeds.

The stages run as the orchestrator would run them: the command of each stage from the
pipeline file with ``${VAR}`` filled in, as a real subprocess; its env the project variables
plus the stage's env; cwd and ``WINSLOW_WORKSPACE`` a fresh directory holding a copy of the
previous stage's workspace; ``WINSLOW_INPUTS`` holding the video at its pool path; and this
interpreter's directory first on PATH so ``python3`` is the one with OpenCV, as in a venv.
Tolerances: the vehicle count is exact and every speed is within ``SPEED_TOLERANCE`` of the
generator's truth.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from winslow.pipeline.model import Pipeline

cv2 = pytest.importorskip("cv2", reason="the traffic example needs opencv-python-headless")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "traffic"
POOL_PATH = "videos/road.mp4"
SEED = 3
SPEED_TOLERANCE = 0.03
"""Largest relative speed error accepted (measured errors are below 1 %)."""


def load_pipeline() -> Pipeline:
    return Pipeline.model_validate(yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text()))


def fill(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], text)


def project_variables(pipeline: Pipeline, **values: str) -> dict[str, str]:
    """The pipeline's defaults, overridden by ``values``, as a project would hold them."""
    merged = {name: v.default for name, v in pipeline.variables.items() if v.default is not None}
    # What the review gate sets when approved with its defaults.
    for stage in pipeline.stages:
        for item in stage.ask.inputs if stage.ask else []:
            merged[item.name] = item.default_text() or ""
    merged.update(values)
    return merged


def run_stage(
    pipeline: Pipeline, name: str, variables: dict[str, str], workspace: Path, inputs: Path
) -> subprocess.CompletedProcess[str]:
    stage = pipeline.stage(name)
    assert stage.command is not None
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "WINSLOW_WORKSPACE": str(workspace),
        "WINSLOW_INPUTS": str(inputs),
        **variables,
        **{key: fill(value, variables) for key, value in stage.env.items()},
    }
    return subprocess.run(
        [fill(arg, variables) for arg in stage.command],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def generate_video(video: Path, truth: Path) -> None:
    """Draw the test's road video (fixed seed) and the truth of what is in it."""
    subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "generate.py"),
            str(video),
            "--seed",
            str(SEED),
            "--truth",
            str(truth),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def traffic_run(tmp_path_factory):
    """Generate a video, run every stage in order; return the truth, the outputs and the
    final workspace."""
    root = tmp_path_factory.mktemp("traffic")
    inputs = root / "inputs"
    video = inputs / POOL_PATH
    video.parent.mkdir(parents=True)
    truth_path = root / "truth.json"
    generate_video(video, truth_path)
    pipeline = load_pipeline()
    variables = project_variables(pipeline, INPUT_VIDEO=POOL_PATH, EXAMPLES_DIR=str(EXAMPLE))
    results = {}
    previous = None
    for stage in pipeline.stages:
        workspace = root / f"workspace-{stage.name}"
        if previous is None or stage.workspace.value == "fresh":
            workspace.mkdir()
        else:
            shutil.copytree(previous, workspace)
        result = run_stage(pipeline, stage.name, variables, workspace, inputs)
        assert result.returncode == 0, f"{stage.name} failed:\n{result.stdout}\n{result.stderr}"
        results[stage.name] = result
        previous = workspace
    return {
        "truth": json.loads(truth_path.read_text()),
        "video": video,
        "results": results,
        "workspace": previous,
        "summary": json.loads((previous / "summary.json").read_text()),
    }


def test_pipeline_file_is_valid_and_declares_what_it_uses():
    pipeline = load_pipeline()

    assert [s.name for s in pipeline.stages] == ["detect", "review", "track", "analyze"]
    assert pipeline.stage("detect").inputs == ["${INPUT_VIDEO}"]
    assert pipeline.stage("review").gate is True
    assert pipeline.variables["INPUT_VIDEO"].required is True
    ask = pipeline.stage("review").ask
    assert ask is not None and "results.detect.detections" in ask.description
    answered = {item.name for item in ask.inputs}
    assert answered == {"MIN_TRACK_FRAMES", "TRACK_GATE"}
    used = {
        name
        for stage in pipeline.stages
        for text in [*(stage.command or []), *stage.env.values(), *stage.inputs]
        for name in re.findall(r"\$\{(\w+)\}", text)
    }
    assert used == set(pipeline.variables) | answered
    assert set(pipeline.stage("track").env) == answered  # the track stage uses the answers


def test_detect_writes_the_busiest_frames_with_their_boxes_for_the_review_gate(traffic_run):
    frames_dir = traffic_run["workspace"] / "frames"
    frames = sorted(frames_dir.glob("frame-*.jpg"))
    detections = (traffic_run["workspace"] / "detections.csv").read_text().splitlines()[1:]
    frames_with_boxes = {int(line.split(",")[0]) for line in detections}

    assert 1 <= len(frames) <= 4
    for path in frames:
        assert int(path.stem.split("-")[1]) in frames_with_boxes
        image = cv2.imread(str(path))
        red = (image[:, :, 2] > 180) & (image[:, :, 1] < 80) & (image[:, :, 0] < 80)
        assert red.sum() > 20, f"{path.name} has no box drawn"


def test_the_gate_answers_change_what_track_keeps(traffic_run, tmp_path):
    pipeline = load_pipeline()
    workspace = tmp_path / "ws"
    shutil.copytree(traffic_run["workspace"], workspace)
    variables = project_variables(
        pipeline, INPUT_VIDEO=POOL_PATH, EXAMPLES_DIR=str(EXAMPLE), MIN_TRACK_FRAMES="100"
    )

    result = run_stage(pipeline, "track", variables, workspace, tmp_path)

    assert result.returncode == 0, result.stderr
    assert re.search(r"track: 0 tracks .* shorter than 100 frames dropped", result.stdout)


@pytest.mark.slow
def test_generated_video_reads_back_with_every_frame(traffic_run):
    truth = traffic_run["truth"]
    capture = cv2.VideoCapture(str(traffic_run["video"]))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()

    assert frames == truth["frames"] == 150
    assert (truth["width"], truth["height"]) == (640, 360)
    assert len(truth["vehicles"]) == 8
    assert {v["direction"] for v in truth["vehicles"]} == {"east", "west"}


@pytest.mark.slow
def test_stages_report_progress_and_a_summary_line(traffic_run):
    out = {name: result.stdout for name, result in traffic_run["results"].items()}

    assert "detect: 50 %" in out["detect"]
    assert "detect: 150 frames, " in out["detect"]
    assert re.search(r"review: \d+ detections", out["review"])
    assert "track: 8 tracks from " in out["track"]
    assert "analyze: 8 vehicles, mean speed " in out["analyze"]


@pytest.mark.slow
def test_pipeline_counts_every_vehicle_exactly(traffic_run):
    assert traffic_run["summary"]["vehicles"] == len(traffic_run["truth"]["vehicles"])


def shared_frames(track: dict, vehicle: dict) -> int:
    return (
        min(track["last_frame"], vehicle["exit_frame"])
        - max(track["first_frame"], vehicle["entry_frame"])
        + 1
    )


def match_tracks(truth: dict, summary: dict) -> dict[int, dict]:
    """Return each truth vehicle's track: in its lane and direction, sharing the most frames
    with it. Fails unless every vehicle gets its own track covering 80 % of its frames."""
    matched = {}
    for vehicle in truth["vehicles"]:
        same_lane = [
            track
            for track in summary["per_vehicle"]
            if abs(track["mean_cy"] - vehicle["center_y"]) < 10
            and track["direction"] == vehicle["direction"]
        ]
        assert same_lane, f"no track in the lane of vehicle {vehicle['id']}"
        best = max(same_lane, key=lambda track: shared_frames(track, vehicle))
        visible = vehicle["exit_frame"] - vehicle["entry_frame"] + 1
        assert shared_frames(best, vehicle) >= 0.8 * visible, (
            f"vehicle {vehicle['id']} is mostly untracked"
        )
        matched[vehicle["id"]] = best
    track_ids = [track["track_id"] for track in matched.values()]
    assert len(set(track_ids)) == len(track_ids), f"one track covers two vehicles: {matched}"
    return matched


@pytest.mark.slow
def test_pipeline_measures_each_vehicle_speed_within_tolerance(traffic_run):
    truth = traffic_run["truth"]
    matched = match_tracks(truth, traffic_run["summary"])

    for vehicle in truth["vehicles"]:
        measured = matched[vehicle["id"]]["speed_kmh"]
        assert measured == pytest.approx(vehicle["speed_kmh"], rel=SPEED_TOLERANCE), (
            f"vehicle {vehicle['id']}: {measured} km/h measured, {vehicle['speed_kmh']} true"
        )


@pytest.mark.slow
def test_summary_has_the_documented_fields(traffic_run):
    summary = traffic_run["summary"]

    assert {"vehicles", "speeds_kmh", "mean_speed_kmh", "per_vehicle"} <= set(summary)
    assert summary["speeds_kmh"] == [v["speed_kmh"] for v in summary["per_vehicle"]]
    assert summary["mean_speed_kmh"] == pytest.approx(
        sum(summary["speeds_kmh"]) / len(summary["speeds_kmh"]), abs=0.01
    )
    assert summary["meters_per_pixel"] == traffic_run["truth"]["meters_per_pixel"]


@pytest.mark.slow
def test_heatmap_is_a_png_the_size_of_the_video(traffic_run):
    path = traffic_run["workspace"] / "heatmap.png"

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None
    assert image.shape == (traffic_run["truth"]["height"], traffic_run["truth"]["width"], 3)


def test_detect_without_the_video_fails_saying_how_to_fix_it(tmp_path):
    pipeline = load_pipeline()
    variables = project_variables(
        pipeline, INPUT_VIDEO="videos/missing.mp4", EXAMPLES_DIR=str(EXAMPLE)
    )
    (tmp_path / "inputs").mkdir()
    (tmp_path / "ws").mkdir()

    result = run_stage(pipeline, "detect", variables, tmp_path / "ws", tmp_path / "inputs")

    assert result.returncode == 1
    expected = f"input video not found at {tmp_path / 'inputs' / 'videos' / 'missing.mp4'}"
    assert result.stderr.startswith(f"detect: {expected}; set INPUT_VIDEO to a resource pool path")
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "ws").iterdir()) == []  # nothing half-written


@pytest.mark.parametrize(
    ("stage", "missing", "before"),
    [
        ("review", "detections.csv", "detect"),
        ("track", "detections.csv", "detect"),
        ("analyze", "tracks.csv", "track"),
    ],
)
def test_stage_without_the_previous_output_fails_naming_it(tmp_path, stage, missing, before):
    pipeline = load_pipeline()
    variables = project_variables(pipeline, INPUT_VIDEO=POOL_PATH, EXAMPLES_DIR=str(EXAMPLE))

    result = run_stage(pipeline, stage, variables, tmp_path, tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith(f"{stage}: {missing} not found in the workspace")
    assert f"run the '{before}' stage first" in result.stderr


def test_detect_rejects_a_min_area_that_is_not_a_number(tmp_path):
    pipeline = load_pipeline()
    variables = project_variables(
        pipeline, INPUT_VIDEO=POOL_PATH, EXAMPLES_DIR=str(EXAMPLE), MIN_AREA="big"
    )
    (tmp_path / POOL_PATH).parent.mkdir(parents=True)
    (tmp_path / POOL_PATH).write_bytes(b"")

    result = run_stage(pipeline, "detect", variables, tmp_path, tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("detect: MIN_AREA='big' is not a number")


def load_demo():
    import importlib.util

    spec = importlib.util.spec_from_file_location("traffic_demo", EXAMPLE / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_demo_prints_each_drawn_speed_beside_the_measured_one(traffic_run, capsys):
    """Issue 18: `make demo` printed only the count; it pairs each vehicle the generator
    drew with the track measured for it, and prints both speeds."""
    demo = load_demo()
    truth = traffic_run["truth"]
    rows = demo.speed_rows(truth, traffic_run["summary"])
    assert [row["vehicle"] for row in sorted(rows, key=lambda r: r["vehicle"])] == [
        v["id"] for v in sorted(truth["vehicles"], key=lambda v: v["id"])
    ]
    drawn = {v["id"]: v["speed_kmh"] for v in truth["vehicles"]}
    for row in rows:
        assert row["drawn_kmh"] == drawn[row["vehicle"]]
        assert row["measured_kmh"] == pytest.approx(row["drawn_kmh"], rel=SPEED_TOLERANCE), row
    demo.print_speeds(rows)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["vehicle", "lane", "direction", "drawn", "measured", "error"]
    first = rows[0]
    assert f"{first['drawn_kmh']:.1f} km/h" in printed[1]
    assert f"{first['measured_kmh']:.1f} km/h" in printed[1]
