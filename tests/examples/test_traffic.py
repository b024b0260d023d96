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

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import IO

import httpx
import psutil
import pytest
import yaml

from tests.fixtures.ports import pick_ports
from tests.test_startup_errors import weeds_of
from winslow.pipeline.model import Pipeline

cv2 = pytest.importorskip("cv2", reason="the traffic example needs opencv-python-headless")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "traffic"
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


RUN_DEMO = """\
import importlib.util, signal, sys
from pathlib import Path

# Ctrl-C acts as in a terminal even where this test started with SIGINT ignored (a
# background job's children inherit that, and Python then never raises KeyboardInterrupt).
signal.signal(signal.SIGINT, signal.default_int_handler)
spec = importlib.util.spec_from_file_location("traffic_demo", sys.argv[1])
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
demo.DATA = Path(sys.argv[2])
sys.argv = [sys.argv[1], *sys.argv[3:]]
demo.main()
"""
"""demo.py as `python demo.py ARGS` runs it, on a demo data folder the test chooses: the
real ./demo-data belongs to whoever runs `make demo` in this checkout."""


def make_demo_data(data: Path) -> str:
    """The part of a finished demo's data folder that `--console` reads: the server's
    database and the admin token its first start wrote. Return the token."""
    from winslow.server import ensure_admin_token
    from winslow.settings import Settings
    from winslow.store.repo import open_store

    settings = Settings(data_dir=data / "server", database_url=None)
    settings.data_dir.mkdir(mode=0o700, parents=True)
    store = open_store(settings.resolved_database_url())
    try:
        ensure_admin_token(settings, store)
    finally:
        store.close()
    return settings.token_file.read_text().strip()


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def lines_until(stream: IO[str], prefix: str) -> list[str]:
    """Read ``stream`` up to and including the first line starting with ``prefix``."""
    lines = []
    while not (lines and lines[-1].startswith(prefix)):
        line = stream.readline()
        assert line, f"the output ended before a line starting {prefix!r}: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def start_console(tmp_path: Path, data: Path, port: int) -> subprocess.Popen[str]:
    """`make console` (demo.py --console) on ``data``, serving on ``port``; its stderr goes
    to ``tmp_path / "demo.err"``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINSLOW_")}
    env.update(WINSLOW_PORT=str(port), XDG_CACHE_HOME=str(tmp_path / "cache"))
    command = [sys.executable, "-c", RUN_DEMO, str(EXAMPLE / "demo.py"), str(data), "--console"]
    with (tmp_path / "demo.err").open("w") as errors:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )


def stop_all(demo: subprocess.Popen[str], started: list[psutil.Process]) -> None:
    """Whatever a failed test left running."""
    demo.kill()
    demo.wait(timeout=10)
    for process in started:
        with suppress(psutil.NoSuchProcess):
            process.kill()


def test_make_console_serves_the_demo_data_until_ctrl_c_and_ends_with_the_token(tmp_path):
    data = tmp_path / "demo-data"
    token = make_demo_data(data)
    (port,) = pick_ports(1)
    demo = start_console(tmp_path, data, port)
    assert demo.stdout is not None
    started: list[psutil.Process] = []
    try:
        shown = lines_until(demo.stdout, "sign in with this token:")
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
        assert shown[-2:] == [
            f"the console: http://127.0.0.1:{port}/ (API docs at /docs)",
            f"sign in with this token: {token}",
        ]
        signed_in = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/me",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert signed_in.status_code == 200, signed_in.text
        started = [*psutil.Process(demo.pid).children(), *weeds_of(data / "server")]
        assert len(started) == 2, started  # `winslow up` and its SeaweedFS

        demo.send_signal(signal.SIGINT)
        rest = demo.stdout.read()
        assert demo.wait(timeout=60) == 0, (tmp_path / "demo.err").read_text()
        # Nothing came between the token and Ctrl-C: the token was the last line shown.
        assert [line for line in rest.splitlines() if line] == ["==> stopping the server"]
        assert [p for p in started if not gone(p)] == []
        assert weeds_of(data / "server") == []
    finally:
        stop_all(demo, started)


def test_ctrl_c_while_the_console_starts_stops_the_server_it_was_starting(tmp_path):
    """The server runs in a session of its own, so Ctrl-C reaches only the demo; pressed
    before the server answered, it left `winslow up` and its SeaweedFS running, holding the
    port the next `make console` needs."""
    data = tmp_path / "demo-data"
    make_demo_data(data)
    (port,) = pick_ports(1)
    demo = start_console(tmp_path, data, port)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not (weeds := weeds_of(data / "server")):
            assert time.monotonic() < deadline, "the demo's server never started SeaweedFS"
            time.sleep(0.05)
        started = [*psutil.Process(demo.pid).children(), *weeds]
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)

        assert "the console:" not in out  # Ctrl-C came while the server was starting
        assert [p for p in started if not gone(p)] == []
        assert weeds_of(data / "server") == []
    finally:
        stop_all(demo, started)


def test_make_console_without_demo_data_says_to_run_make_demo_first(tmp_path, monkeypatch):
    demo = load_demo()
    monkeypatch.setattr(demo, "DATA", tmp_path / "demo-data")
    monkeypatch.setattr(sys, "argv", ["demo.py", "--console"])

    with pytest.raises(SystemExit, match=re.escape("run `make demo` first")):
        demo.main()


def test_without_a_terminal_the_demo_stops_its_server_and_ends_naming_make_console(
    traffic_run, tmp_path, monkeypatch, capsys
):
    """Where nobody can press Ctrl-C (CI, a pipe) the demo must not wait for it: it stops
    the server and its last words say how to serve the data again. The server, the CLI
    and the waiting are stood in for; the summary is the one the module's stages made."""
    demo = load_demo()
    monkeypatch.setattr(demo, "DATA", tmp_path / "demo-data")
    monkeypatch.setattr(sys, "argv", ["demo.py"])
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.delenv("WINSLOW_PORT", raising=False)
    servers = []

    def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
        (demo.DATA / "server").mkdir()
        (demo.DATA / "server" / "admin-token").write_text("token-of-this-demo\n")
        servers.append(subprocess.Popen(["sleep", "60"]))
        return servers[-1]

    def winslow(env: dict[str, str], *args: str, capture: bool = False) -> str:
        if args[:2] == ("workspace", "download"):
            Path(args[4]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(traffic_run["workspace"] / args[3], args[4])
        return ""

    monkeypatch.setattr(demo, "start_server", start_server)
    monkeypatch.setattr(demo, "winslow", winslow)
    monkeypatch.setattr(demo, "wait_until_settled", lambda env, expected: None)
    try:
        demo.main()
    finally:
        for server in servers:
            server.kill()
            server.wait()

    assert servers[0].returncode == -signal.SIGINT  # stopped by the demo, not by the test
    lines = capsys.readouterr().out.splitlines()
    console = f"http://127.0.0.1:{demo.CONSOLE_PORT}/"
    assert lines[-2].startswith(f"with `make console`, the console: {console}"), lines[-3:]
    assert lines[-1] == "sign in with this token: token-of-this-demo"
    recipe = re.search(r"^console:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None and recipe.group(1).endswith("examples/traffic/demo.py --console")
