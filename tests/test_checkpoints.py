"""Checkpoints of a long stage: published while it runs, restored by a retry after lost.

Real parts throughout: SeaweedFS, the local backend's detached runner processes, and a
stage that counts frames into its checkpoint folder, killed with its runner as when its
node dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace
from winslow.atomic import write_text_atomic
from winslow.errors import ValidationError
from winslow.node.checkpoint import CheckpointRequestError, CheckpointWatcher, request_checkpoint
from winslow.storage import keys, workspaces
from winslow.storage.checkpoints import (
    CheckpointChangedError,
    CheckpointPublisher,
    find_latest,
    is_checkpoint_path,
)
from winslow.storage.objects import ObjectStore

WINSLOW = str(Path(sys.executable).parent / "winslow")

FRAMES = 30

COUNTER = textwrap.dedent(
    f"""
    import os, subprocess, sys, time
    from pathlib import Path

    folder = Path(os.environ["WINSLOW_WORKSPACE"]) / ".winslow" / "checkpoint"
    folder.mkdir(parents=True, exist_ok=True)
    counted = folder / "frames.txt"
    done = counted.read_text().split() if counted.exists() else []
    print("resumed from", os.environ.get("WINSLOW_RESUMED_FROM", "nothing"), "at", len(done))
    with counted.open("a") as out:
        for frame in range(len(done) + 1, {FRAMES} + 1):
            out.write(f"{{frame}}\\n")
            out.flush()
            os.fsync(out.fileno())
            if frame % 5 == 0:
                subprocess.run([{WINSLOW!r}, "checkpoint", "--timeout", "60"], check=True)
            if frame == 12 and os.environ["WINSLOW_RUN"] == "1":
                Path(sys.argv[1]).write_text("at frame 12")
                time.sleep(600)  # the node dies here
    Path("frames.txt").write_text(counted.read_text())
    """
)


def wait_for(path: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


def kill_node(job_dir: Path) -> None:
    """SIGKILL the runner's process group and the stage's, as a node losing power would."""
    for record in ("runner.json", "stage.json"):
        pgid = json.loads((job_dir / record).read_text())["pgid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def test_retry_after_lost_node_resumes_from_the_checkpoint_and_counts_each_frame_once(
    winslow: Harness, object_store: ObjectStore, tmp_path: Path
) -> None:
    script = tmp_path / "count.py"
    script.write_text(COUNTER)
    marker = tmp_path / "stuck"
    winslow.apply_pipeline(f"""
name: frames
stages:
  - name: detect
    command: [{sys.executable!r}, {str(script)!r}, {str(marker)!r}]
    checkpoint: {{every: 1h}}
    retry: {{on_lost: 1, on_failure: 0}}
""")
    winslow.create("video", "frames", start=True)
    run = winslow.wait_until_running("video")
    wait_for(marker, "frame 12")
    project_id = winslow.show("video")["id"]
    first_checkpoints = keys.checkpoint_prefix(keys.workspace_prefix(project_id, run["id"]))
    assert workspaces.version_numbers(object_store, first_checkpoints) == [1, 2]

    kill_node(winslow.data_dir / "local" / "jobs" / run["job_id"])
    winslow.engine.run_until_idle(timeout=120)

    project = winslow.show("video")
    assert project["state"] == "succeeded", project
    lost, retried = project["runs"]
    assert (lost["state"], lost["attempt"]) == ("lost", 1)
    assert (retried["state"], retried["attempt"]) == ("succeeded", 2)
    output = read_workspace(object_store, retried["workspace"])
    assert output["frames.txt"].decode().split() == [str(n) for n in range(1, FRAMES + 1)]
    assert not [path for path in output if is_checkpoint_path(path)]
    log = winslow.log("video", retried["id"])
    assert f"resuming from checkpoint 2 of run {lost['id']} of project" in log
    assert f"resumed from {lost['id']}/2@" in log
    assert " at 10" in log  # frames 11 and 12 were after the last checkpoint: counted again
    # Nothing resumes from them any more.
    assert object_store.list(first_checkpoints, recursive=True) == []
    own = keys.checkpoint_prefix(retried["workspace"])
    assert object_store.list(own, recursive=True) == []


def test_publisher_uploads_only_changed_content_and_skips_unchanged_folders(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    folder = workspace / ".winslow" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"m" * 100_000)
    (folder / "state.json").write_text('{"frame": 1}')
    events: list[str] = []
    prefix = keys.checkpoint_prefix("workspaces/p1/7/")
    publisher = CheckpointPublisher(
        workspace, prefix, tmp_path / "staging", lambda: object_store, events.append
    )
    assert publisher.publish() == 1
    assert publisher.publish() == 1  # nothing changed: no new version
    (folder / "state.json").write_text('{"frame": 2}')
    assert publisher.publish() == 2
    assert "uploaded 1 new" in events[-1]  # model.bin was stored already
    assert list((tmp_path / "staging").iterdir()) == []
    latest = find_latest(object_store, ["workspaces/p1/6/checkpoint/", prefix])
    assert latest is not None
    assert (latest.version, latest.files, latest.label.split("@")[0]) == (2, 2, "7/2")
    stored = read_workspace(object_store, prefix)
    assert stored[".winslow/checkpoint/state.json"] == b'{"frame": 2}'


def test_a_file_changing_while_copied_never_becomes_a_checkpoint(
    object_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    workspace = tmp_path / "workspace"
    folder = workspace / ".winslow" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "frames.txt").write_text("1\n")
    real_copy = shutil.copyfile

    def copy_while_the_stage_writes(source, target):  # the stage appends mid-copy
        result = real_copy(source, target)
        with open(source, "a") as out:
            out.write("2\n")
        return result

    monkeypatch.setattr(shutil, "copyfile", copy_while_the_stage_writes)
    prefix = keys.checkpoint_prefix("workspaces/p1/8/")
    publisher = CheckpointPublisher(
        workspace, prefix, tmp_path / "staging", lambda: object_store, print
    )
    with pytest.raises(CheckpointChangedError, match="changed while it was copied"):
        publisher.publish()
    assert workspaces.version_numbers(object_store, prefix) == []


def test_checkpoint_request_is_answered_by_the_watcher(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / ".winslow" / "checkpoint").mkdir(parents=True)
    (workspace / ".winslow" / "checkpoint" / "n").write_text("5")
    prefix = keys.checkpoint_prefix("workspaces/p1/9/")
    watcher = CheckpointWatcher(
        workspace, prefix, 3600, tmp_path / "staging", lambda: object_store, print
    )
    with watcher:
        assert request_checkpoint(workspace, timeout=30) == 1
        (workspace / ".winslow" / "checkpoint" / "n").write_text("6")
        assert request_checkpoint(workspace, timeout=30) == 2
    assert read_workspace(object_store, prefix) == {".winslow/checkpoint/n": b"6"}
    with pytest.raises(CheckpointRequestError, match="set it for this stage"):
        request_checkpoint(workspace, timeout=0.5)  # nobody watches any more


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.1)


def test_watcher_publishes_on_its_own_timer_whenever_the_folder_changed(
    object_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace"
    folder = workspace / ".winslow" / "checkpoint"
    folder.mkdir(parents=True)
    prefix = keys.checkpoint_prefix("workspaces/p1/10/")
    watcher = CheckpointWatcher(
        workspace, prefix, 0.3, tmp_path / "staging", lambda: object_store, print
    )
    # Counting the watcher's rounds lets "nothing new while nothing changed" wait for
    # rounds that did happen rather than for a stretch of wall-clock time.
    rounds: list[int | None] = []
    publish = watcher.publisher.publish

    def publish_counted() -> int | None:
        rounds.append(publish())
        return rounds[-1]

    monkeypatch.setattr(watcher.publisher, "publish", publish_counted)

    def versions() -> list[int]:
        return workspaces.version_numbers(object_store, prefix)

    with watcher:
        wait_until(lambda: len(rounds) >= 3, "three rounds of the watcher")
        assert versions() == []  # an empty folder is no checkpoint

        write_text_atomic(folder / "state.json", '{"frame": 1}')
        wait_until(lambda: versions() == [1], "the first checkpoint")
        write_text_atomic(folder / "state.json", '{"frame": 2, "of": 30}')
        wait_until(lambda: versions() == [1, 2], "the checkpoint of the changed folder")
        after = len(rounds)
        wait_until(lambda: len(rounds) >= after + 3, "three more rounds of the watcher")
        assert versions() == [1, 2]
        assert rounds[-1] == 2
    assert read_workspace(object_store, prefix) == {
        ".winslow/checkpoint/state.json": b'{"frame": 2, "of": 30}'
    }
    assert not (workspace / ".winslow" / "checkpoint.published").exists()  # nobody asked


def test_a_stage_without_winslow_asks_for_a_checkpoint_by_writing_the_request_file(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    workspace = tmp_path / "workspace"
    folder = workspace / ".winslow" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "frames.txt").write_text("1\n2\n")
    request = workspace / ".winslow" / "checkpoint.request"
    answer_file = workspace / ".winslow" / "checkpoint.published"
    prefix = keys.checkpoint_prefix("workspaces/p1/11/")
    watcher = CheckpointWatcher(
        workspace, prefix, 3600, tmp_path / "staging", lambda: object_store, print
    )

    def answer() -> dict | None:
        try:
            return json.loads(answer_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def answered(token: str) -> bool:
        found = answer()
        return found is not None and found["token"] == token and not request.exists()

    with watcher:
        request.write_text("\n")  # `echo > .winslow/checkpoint.request`: no token
        wait_until(lambda: answered("-"), "the answer to a request without a token")
        assert answer() == {"token": "-", "version": 1, "error": None}
        assert workspaces.version_numbers(object_store, prefix) == [1]

        (folder / "frames.txt").write_text("1\n2\n3\n")
        request.write_text("frame-3\n")  # `echo frame-3 > ...`: the answer carries it back
        wait_until(lambda: answered("frame-3"), "the answer to request 'frame-3'")
        assert answer() == {"token": "frame-3", "version": 2, "error": None}
    assert read_workspace(object_store, prefix) == {".winslow/checkpoint/frames.txt": b"1\n2\n3\n"}


def test_a_stage_resumes_from_a_checkpoint_only_after_lost() -> None:
    from winslow.core.models import Run
    from winslow.core.states import StageRunState
    from winslow.engine.specs import resume_sources

    def run(run_id: int, attempt: int, state: StageRunState) -> Run:
        return Run(
            id=run_id,
            project_id="p1",
            stage="detect",
            attempt=attempt,
            state=state,
            created_at=datetime(2026, 12, 3, tzinfo=UTC),
            workspace_prefix=f"workspaces/p1/{run_id}/",
        )

    lost_1 = run(1, 1, StageRunState.LOST)
    lost_2 = run(2, 2, StageRunState.LOST)
    third = run(3, 3, StageRunState.PENDING)
    assert resume_sources(third, [lost_1, lost_2]) == (
        "workspaces/p1/2/checkpoint/",
        "workspaces/p1/1/checkpoint/",
    )
    failed_2 = run(2, 2, StageRunState.FAILED)
    assert resume_sources(third, [lost_1, failed_2]) == ()
    assert resume_sources(run(4, 1, StageRunState.PENDING), [lost_1]) == ()  # a redo


def test_checkpoint_paths_and_prefixes() -> None:
    assert is_checkpoint_path(".winslow/checkpoint/x")
    assert is_checkpoint_path(".winslow/checkpoint.request")
    assert not is_checkpoint_path(".winslow/progress")
    assert not is_checkpoint_path(".winslow/checkpoints-of-mine/x")
    assert keys.checkpoint_prefix("workspaces/p1/1/") == "workspaces/p1/1/checkpoint/"
    assert keys.describe_key("workspaces/p1/1/checkpoint/manifests/00000003.json") == (
        "checkpoint 3 of run 1 of project 'p1'"
    )
    with pytest.raises(ValidationError):
        keys.checkpoint_prefix("logs/p1/1.log")


def test_checkpoint_setting_takes_a_duration_and_names_file_line_and_field() -> None:
    from textwrap import dedent

    from winslow.errors import PipelineError
    from winslow.pipeline.load import load_pipeline_text

    pipeline = load_pipeline_text(
        dedent("""\
        name: video
        stages:
          - name: detect
            command: [python, detect.py]
            checkpoint: {every: 10m}
          - name: report
            command: [python, report.py]
        """)
    )
    assert pipeline.stage("detect").checkpoint is not None
    assert pipeline.stage("detect").checkpoint.every == 600
    assert pipeline.stage("report").checkpoint is None

    with pytest.raises(PipelineError) as caught:
        load_pipeline_text(
            dedent("""\
            name: video
            stages:
              - name: detect
                command: [python, detect.py]
                checkpoint:
                  every: soon
            """),
            "video.yaml",
        )
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.startswith("video.yaml:6:"), problem
    assert "stages[detect].checkpoint.every" in problem
    assert "30m" in problem  # says what it takes


@pytest.mark.slow
def test_nomad_sidecar_publishes_the_checkpoint_and_the_next_attempt_resumes_from_it(
    nomad_standin, object_store: ObjectStore
) -> None:
    """On Nomad the ``stage-checkpoint`` sidecar (poststart, like stage-follow) answers
    ``winslow checkpoint``; stage-in of a later attempt restores it and stage-exec sets
    ``WINSLOW_RESUMED_FROM``."""
    from tests.backends.events import Events
    from tests.backends.nomad.test_backend import job_id
    from tests.backends.nomad.test_backend import make_spec as nomad_spec
    from winslow.backends.base import JobState
    from winslow.backends.nomad.backend import NomadBackend
    from winslow.backends.nomad.config import NomadConfig

    s3 = object_store.cfg
    config = NomadConfig(
        address=nomad_standin.address,
        allow_host_commands=True,
        tools_driver="raw_exec",
        winslow_command=WINSLOW,
        s3_endpoint=s3.endpoint_url,
        s3_bucket=s3.bucket,
        s3_region=s3.region,
    )
    nomad_standin.put_variable(
        config.credentials_path, {"access_key": s3.access_key, "secret_key": s3.secret_key}
    )
    checkpoints = "workspaces/p1/101/checkpoint/"
    counting = nomad_spec(
        job_id("count"),
        'mkdir -p "$WINSLOW_WORKSPACE/.winslow/checkpoint" && '
        'echo 12 > "$WINSLOW_WORKSPACE/.winslow/checkpoint/frame" && '
        f"{WINSLOW} checkpoint --timeout 60 && exit 3",  # failed: its checkpoint stays
        checkpoint_every=3600,
        checkpoint_prefix=checkpoints,
    )
    resuming = nomad_spec(
        job_id("resume"),
        'echo "resumed from $WINSLOW_RESUMED_FROM at frame '
        '$(cat $WINSLOW_WORKSPACE/.winslow/checkpoint/frame)"',
        checkpoint_every=3600,
        checkpoint_prefix="workspaces/p1/102/checkpoint/",
        resume_from=(checkpoints,),
    )
    events = Events(within=120, recheck=5.0)
    backend = NomadBackend(config)
    backend.start(events)
    try:
        backend.submit(counting)
        ended = (JobState.SUCCEEDED, JobState.FAILED, JobState.LOST)
        first = events.wait_for(backend, counting.job_id, *ended)
        assert first.state is JobState.FAILED, first.reason
        assert workspaces.version_numbers(object_store, checkpoints) == [1]
        backend.submit(resuming)
        second = events.wait_for(backend, resuming.job_id, *ended)
    finally:
        backend.stop()
    assert second.state is JobState.SUCCEEDED, second.reason
    log = object_store.get_bytes(resuming.log_key).decode()
    assert "resumed from 101/1@" in log
    assert "at frame 12" in log
    published = read_workspace(object_store, counting.workspace_prefix)
    assert published == {}  # the stage wrote only its checkpoint, which is not a result
    # The attempt that succeeded deleted the checkpoints it made useless.
    assert object_store.list(checkpoints, recursive=True) == []


def test_nomad_job_of_a_checkpointing_stage_has_the_sidecar_and_stays_schema_valid() -> None:
    import dataclasses

    from tests.backends.nomad.test_jobspec import make_config, make_spec, task
    from winslow.backends.nomad.jobschema import validate_jobspec
    from winslow.backends.nomad.jobspec import render_jobspec

    spec = dataclasses.replace(
        make_spec(image="ghcr.io/acme/detect:1.4", command=("python3", "detect.py")),
        checkpoint_every=600,
        checkpoint_prefix="workspaces/p7/41/checkpoint/",
        resume_from=("workspaces/p7/40/checkpoint/",),
    )
    job = render_jobspec(spec, make_config(node_cache_dir="/var/cache/w"))
    assert validate_jobspec(job) == []
    sidecar = task(job, "stage-checkpoint")
    assert sidecar["Lifecycle"] == {"Hook": "poststart", "Sidecar": True}
    assert sidecar["Config"]["args"] == [
        "stage-checkpoint",
        "--workspace",
        "${NOMAD_ALLOC_DIR}/workspace",
        "--prefix",
        "workspaces/p7/41/checkpoint/",
        "--every",
        "600",
        "--log",
        "${NOMAD_ALLOC_DIR}/logs/winslow.log",
    ]
    assert sidecar["Env"]["WINSLOW_S3_BUCKET"] == "winslow"  # it uploads: it has the keys
    stage_in = task(job, "stage-in")["Config"]["args"]
    assert stage_in[stage_in.index("--resume-from") + 1] == "workspaces/p7/40/checkpoint/"
    plain = render_jobspec(make_spec(), make_config())
    names = [t["Name"] for t in plain["TaskGroups"][0]["Tasks"]]
    assert "stage-checkpoint" not in names


@pytest.mark.slow
def test_on_nomad_a_retry_after_a_dead_node_resumes_on_another_node(
    winslow_on_nomad: Harness, nomad_standin, tmp_path: Path
) -> None:
    """The node dies at frame 12 (two checkpoints published by the sidecar); Winslow
    counts the run lost after ``WINSLOW_NOMAD_LOST_AFTER`` and the retry, on the other
    node, starts from frame 10 and counts every frame once."""
    import dataclasses

    winslow = winslow_on_nomad
    backend = winslow.context.backend
    backend.config = dataclasses.replace(backend.config, lost_after_seconds=3)
    nomad_standin.add_node("standin-2")
    script = tmp_path / "count.py"
    script.write_text(COUNTER)
    marker = tmp_path / "stuck"
    winslow.apply_pipeline(f"""
name: frames
stages:
  - name: detect
    command: [{sys.executable!r}, {str(script)!r}, {str(marker)!r}]
    checkpoint: {{every: 1h}}
    retry: {{on_lost: 1, on_failure: 0}}
""")
    winslow.create("video", "frames", start=True)
    first = winslow.wait_until_running("video")
    wait_for(marker, "frame 12")
    nomad_standin.kill_node(first["node"])
    winslow.engine.run_until_idle(timeout=120)

    project = winslow.show("video")
    assert project["state"] == "succeeded", project
    lost, retried = project["runs"]
    assert (lost["state"], retried["state"]) == ("lost", "succeeded")
    assert retried["node"] != lost["node"]
    objects = winslow.context.objects
    output = read_workspace(objects, retried["workspace"])
    assert output["frames.txt"].decode().split() == [str(n) for n in range(1, FRAMES + 1)]
    log = winslow.log("video", retried["id"])
    assert f"resumed from {lost['id']}/2@" in log
    assert " at 10" in log
    for run in (lost, retried):
        assert objects.list(keys.checkpoint_prefix(run["workspace"]), recursive=True) == []


def test_winslow_checkpoint_without_a_watcher_exits_1_saying_what_to_set(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [WINSLOW, "checkpoint", "--timeout", "0.5", "--workspace", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: No checkpoint was published within 0.5 s")
    assert "`checkpoint:`" in done.stderr
    assert not (tmp_path / ".winslow" / "checkpoint.request").exists()  # no stale request
