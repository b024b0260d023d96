"""The local backend with real runner processes and a real SeaweedFS.

Every test gets its own data dir and bucket. Stages are tiny shell or Python commands
that end in well under a second, or that wait for the test to release them; tests wait
on the backend's ``on_event`` callback, never for a fixed while.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.backends.events import Events
from tests.fixtures.workspaces import put_workspace, read_workspace
from winslow.backends.base import JobState, RunSpec
from winslow.backends.local import LocalBackend
from winslow.core.resources import ResourceRequest
from winslow.errors import ConflictError, SubmitRejectedError
from winslow.node.container import container_name, docker_run_command
from winslow.node.jobfiles import (
    JobPaths,
    JobSpec,
    format_timestamp,
    job_spec_from_json,
    job_spec_to_json,
    read_storage_handover,
    storage_config_from_env,
    storage_env,
    storage_handover,
    write_json_atomic,
)
from winslow.node.joblog import LineSplitter
from winslow.node.logarchive import archive_log
from winslow.node.runner import exit_reason, host_stage_env
from winslow.storage.objects import ObjectStore

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30.0
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr|winslow) \| (.*)$")


def wait_until(check: Callable[[], bool], what: str) -> None:
    """For things no event announces (a file the runner writes, a process exiting)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def make_spec(job_id: str, command: list[str], **overrides) -> RunSpec:
    fields = {
        "job_id": job_id,
        "project_id": "p1",
        "project_name": "ulm-0603",
        "pipeline": "traffic",
        "stage": "detect",
        "run_id": 1,
        "attempt": 1,
        "command": tuple(command),
        "env": {"WINSLOW_PROJECT": "ulm-0603", "WINSLOW_STAGE": "detect", "WINSLOW_RUN": "1"},
        "resources": ResourceRequest(),
        **overrides,
    }
    return RunSpec(**fields)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def log_lines(data: bytes) -> list[tuple[str, str]]:
    """Parse log bytes into (stream, text); every line must carry a timestamp."""
    parsed = []
    for line in data.decode().splitlines():
        match = LOG_LINE.match(line)
        assert match, f"log line without timestamp and stream: {line!r}"
        parsed.append((match.group(1), match.group(2)))
    return parsed


def job_file(backend: LocalBackend, job_id: str, name: str) -> Path:
    return backend.jobs_dir / job_id / name


def read_record(backend: LocalBackend, job_id: str, name: str) -> dict:
    return json.loads(job_file(backend, job_id, name).read_text())


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def events() -> Events:
    return Events(within=WAIT_SECONDS)


@pytest.fixture
def backend(tmp_path, object_store, events) -> Iterator[LocalBackend]:
    b = LocalBackend(
        tmp_path / "data", object_store.cfg, container_engine=False, kill_grace_seconds=1.0
    )
    b.start(events)
    try:
        yield b
    finally:
        b.stop()
        _stop_leftovers(b, events)


def _stop_leftovers(b: LocalBackend, events: Events) -> None:
    """No test leaves a runner behind, whatever it asserted."""
    for status in b.list_jobs():
        if status.state in (JobState.PENDING, JobState.RUNNING):
            b.cancel(status.job_id)
            deadline = time.monotonic() + WAIT_SECONDS
            while b.status(status.job_id).state in (JobState.PENDING, JobState.RUNNING):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)


# Running stages ------------------------------------------------------------------------


def test_stage_that_succeeds_publishes_workspace_and_log(backend, events, object_store):
    put_workspace(object_store, "workspaces/p1/0/", {"model.txt": b"old\n", "keep.txt": b"kept\n"})
    put_workspace(object_store, "workspaces/p1/00/", {"model.txt": b"new\n"})
    spec = make_spec(
        "ulm-0603.detect.1.1",
        sh("echo hello; echo oops >&2; cat model.txt keep.txt > out.txt"),
        workspace_sources=("workspaces/p1/0/", "workspaces/p1/00/"),
        workspace_prefix="workspaces/p1/1/",
        log_key="logs/p1/1.log",
    )
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)

    assert status.state is JobState.SUCCEEDED, status.reason
    assert (status.exit_code, status.reason, status.node) == (0, None, "local")
    assert status.started_at is not None and status.ended_at >= status.started_at
    # Sources apply in order: the later one's model.txt wins, the earlier one's keep.txt stays.
    assert read_workspace(object_store, "workspaces/p1/1/")["out.txt"] == b"new\nkept\n"
    # The log is archived right after the status is recorded, so the next stage need not wait.
    wait_until(lambda: object_store.exists("logs/p1/1.log"), "the log is archived")
    archived = log_lines(object_store.get_bytes("logs/p1/1.log"))
    assert ("stdout", "hello") in archived
    assert ("stderr", "oops") in archived
    assert ("winslow", "exited with code 0") in archived
    assert archived[-1] == ("winslow", "succeeded")
    assert spec.job_id in events.seen


@pytest.mark.parametrize(
    ("script", "left"),
    [
        ("echo '{\"mAP\": 0.6}' > results.json", True),
        ("ln -s elsewhere.json results.json", True),  # a link is reported, then refused
        ("echo 1 > other.txt", False),
        ("true", False),
    ],
)
def test_the_end_record_says_whether_the_stage_left_results(backend, events, script, left):
    """The engine looks in storage for a results.json only when the runner saw one."""
    spec = make_spec(
        f"results-{left}-{len(script)}", sh(script), workspace_prefix="workspaces/p1/1/"
    )
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert status.state is JobState.SUCCEEDED, status.reason
    assert status.results_left is left
    assert read_record(backend, spec.job_id, "status.json")["results_left"] is left


def test_a_stage_that_never_ran_does_not_say_it_left_no_results(backend, events):
    spec = make_spec("never-ran", ["true"], inputs=("videos/missing.mp4",))
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert status.state is JobState.FAILED
    assert status.results_left is None  # not known: the engine reads storage as before


def _ended_job(tmp_path: Path, text: bytes) -> JobPaths:
    paths = JobPaths(tmp_path / "jobs" / "j1")
    paths.root.mkdir(parents=True)
    paths.log.write_bytes(text)
    return paths


def test_a_log_the_direct_put_cannot_store_goes_through_the_client(tmp_path, object_store):
    """The direct PUT (``storage/direct.py``) has no retries: when it fails, the log is
    sent again through the client rather than left on the node."""
    paths = _ended_job(tmp_path, b"2026-12-04T01:00:00.000Z stdout | hello\n")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = dataclasses.replace(
            object_store.cfg, endpoint_url=f"http://127.0.0.1:{closed.getsockname()[1]}"
        )
    archive_log(paths, "logs/p1/1.log", lambda: object_store, unreachable)
    assert object_store.get_bytes("logs/p1/1.log") == paths.log.read_bytes()


def test_a_small_log_is_archived_without_building_a_client(tmp_path, object_store):
    paths = _ended_job(tmp_path, b"2026-12-04T01:00:00.000Z winslow | succeeded\n")

    def no_client() -> ObjectStore:
        raise AssertionError("the client was built for a log the direct PUT could store")

    archive_log(paths, "logs/p1/2.log", no_client, object_store.cfg)
    assert object_store.get_bytes("logs/p1/2.log") == paths.log.read_bytes()


def test_a_stage_finds_what_an_earlier_run_kept_in_the_node_cache(backend, events):
    """``WINSLOW_CACHE_DIR`` outlives the run (a TensorRT engine is built once per node),
    and is no part of the workspace Winslow publishes."""
    keep = 'f="$WINSLOW_CACHE_DIR/engine"; '
    first = make_spec("cache-1", sh(keep + '[ -e "$f" ] && echo found || echo built > "$f"'))
    again = make_spec("cache-2", sh(keep + 'cat "$f"'), workspace_prefix="workspaces/p1/2/")
    for spec in (first, again):
        backend.submit(spec)
        status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert status.state is JobState.SUCCEEDED, status.reason
    stdout = [t for s, t in log_lines(backend.logs(again.job_id)) if s == "stdout"]
    assert stdout == ["built"]
    assert (backend.cache_dir / "stages" / "engine").read_text() == "built\n"
    assert status.results_left is False  # and nothing of it in the run's workspace


def test_stage_that_exits_3_fails_with_its_exit_code(backend, events):
    spec = make_spec("fail-3", sh("echo bad input >&2; exit 3"))
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert status.state is JobState.FAILED
    assert status.exit_code == 3
    assert status.reason == "exited with code 3"
    assert ("stderr", "bad input") in log_lines(backend.logs(spec.job_id))


def test_stage_killed_by_a_signal_says_which(backend, events):
    spec = make_spec("self-kill", sh("kill -KILL $$"))
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.FAILED)
    assert status.exit_code is None
    assert status.reason.startswith("killed by signal 9 (SIGKILL)")


def test_command_that_does_not_exist_fails_with_a_reason(backend, events):
    spec = make_spec("no-binary", ["winslow-no-such-program", "--help"])
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.FAILED)
    assert status.reason == (
        "could not start 'winslow-no-such-program' on node 'local': No such file or directory"
    )


def test_submitting_twice_runs_the_stage_once(backend, events, tmp_path):
    marker = tmp_path / "marker.txt"
    spec = make_spec("twice", sh(f"echo ran >> {marker}; sleep 0.3"))
    backend.submit(spec)
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    backend.submit(spec)  # after the end too
    assert backend.status(spec.job_id).state is JobState.SUCCEEDED
    assert marker.read_text() == "ran\n"


def test_stage_env_has_winslow_paths_and_no_gpus_or_credentials(backend, events, object_store):
    spec = make_spec(
        "env-check",
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        env={"WINSLOW_PROJECT": "ulm-0603", "THRESHOLD": "0.5"},
    )
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    stdout = [t for s, t in log_lines(backend.logs(spec.job_id)) if s == "stdout"]
    env = json.loads(stdout[0])
    job_dir = backend.jobs_dir / spec.job_id
    assert env["WINSLOW_WORKSPACE"] == str(job_dir / "workspace")
    assert env["WINSLOW_INPUTS"] == str(job_dir / "inputs")
    assert env["WINSLOW_PROJECT"] == "ulm-0603"
    assert env["THRESHOLD"] == "0.5"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["NVIDIA_VISIBLE_DEVICES"] == ""
    assert not [k for k in env if k.startswith("WINSLOW_S3_")]
    assert object_store.cfg.secret_key not in json.dumps(env)


SNOOP = """
import os, sys
pid, walked, found = os.getppid(), [], []
while pid > 1:
    walked.append(str(pid))
    names = ["environ", "cmdline", "fd/0"]  # fd/0: a cold runner's stdin had the keys
    if len(walked) <= 2:  # the runner and the warm runner: every descriptor they hold
        names += [f"fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
    for name in names:
        try:
            fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_NONBLOCK)
            found.append(os.read(fd, 1 << 20))
            os.close(fd)
        except OSError:
            pass
    with open(f"/proc/{pid}/stat") as f:
        pid = int(f.read().rsplit(")", 1)[1].split()[1])
with open(sys.argv[1], "wb") as f:
    f.write(b"\\n".join(found))
print("walked", " ".join(walked))
with open(os.environ["WINSLOW_INPUTS"] + "/videos/cam1.txt", "rb") as src:
    open("out.txt", "wb").write(src.read())
"""


def test_a_host_stage_finds_no_storage_keys_in_its_ancestors(
    backend, events, object_store, tmp_path, monkeypatch
):
    """A host stage runs as Winslow's user and could read its runner's S3 keys in
    ``/proc/<runner pid>/environ`` (issue 14). It reads the environment, command line and
    stdin of every ancestor it may (the runner, the warm runner that forked it, then this
    test's process), and every descriptor of the first two it can open (the warm
    runner's control socket carries the keys, and cannot be opened), and the test looks
    there for either key and for the server's own settings; storage still works both
    ways."""
    # /proc/<pid>/environ shows a process's environment as it started, so this setting
    # reaches it only through the runner's environment.
    monkeypatch.setenv("WINSLOW_DATABASE_URL", "postgresql://winslow:db-password@db/winslow")
    object_store.put_bytes("resources/videos/cam1.txt", b"frame-1\n")
    dump, script = tmp_path / "ancestors.bin", tmp_path / "snoop.py"
    script.write_text(SNOOP)
    spec = make_spec(
        "snoop",
        [sys.executable, str(script), str(dump)],
        inputs=("videos/cam1.txt",),
        workspace_prefix="workspaces/p1/1/",
    )
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert status.state is JobState.SUCCEEDED, status.reason
    stdout = [t for s, t in log_lines(backend.logs(spec.job_id)) if s == "stdout"]
    walked = stdout[0].split()[1:]
    assert backend._warm is not None and backend._warm._process is not None
    assert walked[:3] == [
        str(read_record(backend, spec.job_id, "runner.json")["pid"]),
        str(backend._warm._process.pid),
        str(os.getpid()),
    ]
    found = dump.read_bytes()
    assert b"PYTHONPATH=" in found  # the runner's environment was read
    assert object_store.cfg.secret_key.encode() not in found
    assert object_store.cfg.access_key.encode() not in found
    assert b"db-password" not in found
    assert read_workspace(object_store, "workspaces/p1/1/")["out.txt"] == b"frame-1\n"


def test_stage_sees_only_the_gpus_it_was_given(backend, events):
    spec = make_spec(
        "gpu-env", sh('echo "$CUDA_VISIBLE_DEVICES|$CUDA_DEVICE_ORDER"'), gpu_indices=(0, 2)
    )
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    assert ("stdout", "0,2|PCI_BUS_ID") in log_lines(backend.logs(spec.job_id))


def test_live_log_is_readable_while_the_stage_runs(backend, events, tmp_path):
    go = tmp_path / "go"
    spec = make_spec(
        "live",
        sh(f'echo first; while [ ! -e "{go}" ]; do sleep 0.02; done; echo second'),
    )
    backend.submit(spec)
    wait_until(lambda: b"stdout | first" in backend.logs(spec.job_id), "the first line")
    early = backend.logs(spec.job_id)
    assert backend.status(spec.job_id).state is JobState.RUNNING
    assert b"stdout | second" not in early

    go.touch()
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    rest = log_lines(backend.logs(spec.job_id, offset=len(early)))
    assert ("stdout", "second") in rest
    assert ("stdout", "first") not in rest


def test_progress_bars_with_carriage_returns_become_lines(backend, events):
    spec = make_spec("progress", sh(r"printf '10%%\r50%%\r100%%\r\n'; printf 'tail'"))
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    stdout = [t for s, t in log_lines(backend.logs(spec.job_id)) if s == "stdout"]
    assert stdout == ["10%", "50%", "100%", "tail"]


# Inputs --------------------------------------------------------------------------------


def test_inputs_are_downloaded_once_and_then_linked_from_the_cache(backend, events, object_store):
    object_store.put_bytes("resources/videos/cam1.txt", b"frame-1\n")
    copy = sh('cat "$WINSLOW_INPUTS/videos/cam1.txt"')
    first = make_spec("in-1", copy, inputs=("videos/cam1.txt",))
    backend.submit(first)
    events.wait_for(backend, first.job_id, JobState.SUCCEEDED)
    first_log = log_lines(backend.logs(first.job_id))
    assert ("winslow", "staging in 1 input (1 file, 8 B)") in first_log
    assert ("winslow", "input videos/cam1.txt: downloaded (8 B)") in first_log
    assert ("stdout", "frame-1") in first_log

    second = make_spec("in-2", copy, inputs=("videos/cam1.txt",))
    backend.submit(second)
    events.wait_for(backend, second.job_id, JobState.SUCCEEDED)
    assert ("winslow", "input videos/cam1.txt: node cache hit (8 B)") in log_lines(
        backend.logs(second.job_id)
    )
    cached = backend.cache_dir / "resources" / "videos" / "cam1.txt"
    assert cached.read_bytes() == b"frame-1\n"
    # Once the job ended its links go, so an entry the cache evicts leaves the disk.
    assert not job_file(backend, second.job_id, "inputs").exists()

    # A new version in the pool is fetched again.
    object_store.put_bytes("resources/videos/cam1.txt", b"frame-2\n")
    third = make_spec("in-3", copy, inputs=("videos/cam1.txt",))
    backend.submit(third)
    events.wait_for(backend, third.job_id, JobState.SUCCEEDED)
    assert ("stdout", "frame-2") in log_lines(backend.logs(third.job_id))


def test_a_folder_input_brings_every_file_below_it(backend, events, object_store):
    object_store.put_bytes("resources/calib/a.json", b"{}")
    object_store.put_bytes("resources/calib/sub/b.json", b"[]")
    spec = make_spec(
        "folder-in", sh('cd "$WINSLOW_INPUTS" && find calib -type f | sort'), inputs=("calib",)
    )
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    stdout = [t for s, t in log_lines(backend.logs(spec.job_id)) if s == "stdout"]
    assert stdout == ["calib/a.json", "calib/sub/b.json"]


def test_missing_input_fails_the_run_before_the_stage_starts(backend, events, tmp_path):
    marker = tmp_path / "ran"
    spec = make_spec("no-input", sh(f"touch {marker}"), inputs=("videos/missing.mp4",))
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.FAILED)
    assert status.reason == ("stage-in failed: No file 'videos/missing.mp4' in the resource pool.")
    assert not marker.exists()


def test_failed_stage_out_loses_a_stage_that_exited_0(tmp_path, object_store, events):
    broken = dataclasses.replace(object_store.cfg, secret_key="not-the-secret")
    b = LocalBackend(
        tmp_path / "data", broken, container_engine=False, transfer_retry_delays=(0.1,)
    )
    b.start(events)
    try:
        spec = make_spec("out-fails", sh("echo x > out.txt"), workspace_prefix="workspaces/p1/1/")
        b.submit(spec)
        status = events.wait_for(b, spec.job_id, JobState.SUCCEEDED, JobState.LOST)
    finally:
        b.stop()
    assert status.state is JobState.LOST  # storage failed, not the stage: on_lost retries
    assert status.exit_code == 0
    assert status.reason.startswith(
        "stage-out failed: could not publish the workspace: Object storage refused"
    ), status.reason


# Stopping stages -----------------------------------------------------------------------


def test_cancel_stops_the_stage_and_records_cancelled(backend, events):
    spec = make_spec("cancel-me", ["sleep", "30"])
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    wait_until(lambda: job_file(backend, spec.job_id, "stage.json").exists(), "the stage")
    stage_pid = read_record(backend, spec.job_id, "stage.json")["pid"]

    backend.cancel(spec.job_id)
    status = events.wait_for(backend, spec.job_id, JobState.CANCELLED, JobState.FAILED)

    assert status.state is JobState.CANCELLED
    assert status.reason == "cancelled"
    assert process_gone(stage_pid)
    backend.cancel(spec.job_id)  # again: nothing changes
    assert backend.status(spec.job_id) == status


def test_cancel_of_a_job_whose_runner_never_started_records_it(backend, events):
    spec = make_spec("never-started", ["true"])
    _write_spec_as_a_crashed_server_would(backend, spec)
    backend.cancel(spec.job_id)
    status = backend.status(spec.job_id)
    assert (status.state, status.reason) == (JobState.CANCELLED, "cancelled before it started")
    backend.submit(spec)  # a cancelled job is not started by a late submit
    assert backend.status(spec.job_id).state is JobState.CANCELLED
    assert not job_file(backend, spec.job_id, "runner.json").exists()


def test_timeout_stops_a_stage_that_ignores_sigterm(backend, events):
    spec = make_spec("slow", sh('trap "" TERM; sleep 30'), timeout_seconds=1)
    backend.submit(spec)
    status = events.wait_for(backend, spec.job_id, JobState.FAILED, JobState.SUCCEEDED)
    assert status.state is JobState.FAILED
    assert status.reason == "timed out after 1 s"
    log = [t for s, t in log_lines(backend.logs(spec.job_id)) if s == "winslow"]
    assert "timed out after 1 s; sending SIGTERM to the stage" in log
    assert "still running 1 s after SIGTERM; sending SIGKILL" in log


def test_runner_killed_mid_stage_is_lost_and_takes_the_stage_with_it(backend, events):
    spec = make_spec("orphan", ["sleep", "30"])
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    wait_until(lambda: job_file(backend, spec.job_id, "stage.json").exists(), "the stage")
    runner_pid = read_record(backend, spec.job_id, "runner.json")["pid"]
    stage_pid = read_record(backend, spec.job_id, "stage.json")["pid"]

    os.kill(runner_pid, signal.SIGKILL)
    status = events.wait_for(backend, spec.job_id, JobState.LOST)

    assert status.reason == (
        f"the stage's runner process (pid {runner_pid}) vanished without recording an exit status"
    )
    wait_until(lambda: process_gone(stage_pid), "the stage to die with its runner")
    backend.submit(spec)  # a lost job is never started again
    assert backend.status(spec.job_id).state is JobState.LOST


# Restart safety ------------------------------------------------------------------------

SERVER = """
import os, sys, time
from pathlib import Path
from winslow.backends.base import RunSpec
from winslow.core.resources import ResourceRequest
from winslow.backends.local import LocalBackend
from winslow.node.jobfiles import storage_config_from_env

backend = LocalBackend(Path(sys.argv[1]), storage_config_from_env(os.environ),
                       container_engine=False)
backend.start(lambda job_id: None)
backend.submit(RunSpec(
    job_id="restart-1", project_id="p1", project_name="ulm-0603", pipeline="traffic",
    stage="detect", run_id=1, attempt=1, command=("sh", "-c", sys.argv[2]), env={},
    resources=ResourceRequest(), workspace_prefix="workspaces/p1/1/",
))
print("submitted", flush=True)
time.sleep(60)
"""


def test_stage_survives_a_killed_server_and_is_adopted_after_restart(
    tmp_path, object_store, events
):
    data_dir = tmp_path / "data"
    marker = tmp_path / "marker.txt"
    go = tmp_path / "go"
    script = f'echo ran >> {marker}; while [ ! -e "{go}" ]; do sleep 0.02; done; echo done > out'
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(data_dir), script],
        cwd=REPO_ROOT,
        env={**os.environ, **storage_env(object_store.cfg)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline() == "submitted\n"
        wait_until(marker.exists, "the stage to start")
    finally:
        server.kill()  # kill -9: no cleanup of any kind
        server.wait()
        server.stdout.close()

    restarted = LocalBackend(data_dir, object_store.cfg, container_engine=False)
    assert restarted.status("restart-1").state is JobState.RUNNING
    restarted.submit(make_spec("restart-1", sh(script)))  # the engine re-submits: no-op
    restarted.start(events)
    try:
        go.touch()
        status = events.wait_for(restarted, "restart-1", JobState.SUCCEEDED, JobState.FAILED)
        assert "restart-1" in events.seen
    finally:
        restarted.stop()
    assert status.state is JobState.SUCCEEDED, status.reason
    assert marker.read_text() == "ran\n"
    assert read_workspace(object_store, "workspaces/p1/1/")["out"] == b"done\n"
    assert [s.job_id for s in restarted.list_jobs()] == ["restart-1"]


def test_job_written_but_never_launched_is_lost_until_submitted_again(backend, events):
    spec = make_spec("crashed-before-launch", sh("echo hi"))
    _write_spec_as_a_crashed_server_would(backend, spec)
    status = backend.status(spec.job_id)
    assert status.state is JobState.LOST
    assert status.reason == (
        "the stage's runner never started on node 'local'; submitting the job again starts it"
    )
    backend.submit(spec)
    assert events.wait_for(backend, spec.job_id, JobState.SUCCEEDED).exit_code == 0


def test_start_launches_jobs_an_earlier_server_wrote_but_never_launched(
    tmp_path, object_store, events
):
    restarted = LocalBackend(tmp_path / "data", object_store.cfg, container_engine=False)
    spec = make_spec("half-submitted", sh("echo hi"))
    _write_spec_as_a_crashed_server_would(restarted, spec)
    restarted.start(events)
    try:
        status = events.wait_for(restarted, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
    finally:
        restarted.stop()
    assert status.state is JobState.SUCCEEDED, status.reason
    assert ("stdout", "hi") in log_lines(restarted.logs(spec.job_id))


def _write_spec_as_a_crashed_server_would(backend: LocalBackend, spec: RunSpec) -> None:
    """What a server leaves when it dies between writing spec.json and launching the runner."""
    job_dir = backend.jobs_dir / spec.job_id
    job_dir.mkdir(parents=True)
    job = JobSpec(spec, "local", False, str(backend.cache_dir), 1.0)
    write_json_atomic(job_dir / "spec.json", job_spec_to_json(job), mode=0o600)


# Refusals, housekeeping and the node ---------------------------------------------------


def test_image_without_a_container_engine_is_refused_at_submit(backend):
    spec = make_spec("with-image", ["python", "detect.py"], image="x")
    with pytest.raises(SubmitRejectedError) as caught:
        backend.submit(spec)
    assert caught.value.message == (
        "stage 'detect' names image 'x' but no container engine (docker) answers on node "
        "'local'; start docker (`sudo systemctl start docker`) and resume the project, which "
        "looks for it again, or remove `image:` to run `command` on the host"
    )
    assert backend.status(spec.job_id) is None


@pytest.mark.containers
def test_a_docker_daemon_that_answers_later_is_found_when_an_image_stage_comes(
    tmp_path, object_store, events, stage_image, monkeypatch
):
    """Issue 18: docker was asked only when the server started; a daemon started a
    minute later stayed unknown and image stages were refused with no hint. It is asked
    again when an image stage is submitted, and the refusal says what docker said."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon-here.sock")
    monkeypatch.setattr("winslow.backends.local.backend.ENGINE_RECHECK_SECONDS", 0.0)
    late = LocalBackend(tmp_path / "data", object_store.cfg, kill_grace_seconds=1.0)
    late.start(events)
    try:
        assert late.nodes()[0].attributes["container_engine"] == "none"
        early = make_spec("too-early", ["sh", "-c", "echo hi"], image=stage_image)
        with pytest.raises(SubmitRejectedError) as caught:
            late.submit(early)
        assert "no-daemon-here.sock" in caught.value.message  # docker's own words
        assert "start docker" in caught.value.message

        monkeypatch.delenv("DOCKER_HOST")  # the daemon "starts"
        spec = make_spec("in-time", ["sh", "-c", "echo from-the-container"], image=stage_image)
        late.submit(spec)
        status = events.wait_for(late, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert status.state is JobState.SUCCEEDED, status.reason
        assert ("stdout", "from-the-container") in log_lines(late.logs(spec.job_id))
        assert late.nodes()[0].attributes["container_engine"] == "docker"
    finally:
        late.stop()
        _stop_leftovers(late, events)


class StoppedClock:
    """The time module as the backend sees it, with ``monotonic`` moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str):
        return getattr(time, name)


def test_docker_is_asked_again_for_image_stages_at_most_once_per_interval(
    tmp_path, object_store, monkeypatch
):
    """Without a daemon: ``docker info`` is stood in for, and the backend's clock stands
    still unless moved. A burst of image stages while docker is down asks it once, each
    refusal quotes what docker said last, and a later stage finds a daemon that started."""
    from winslow.backends.local import backend as local_backend

    interval = local_backend.ENGINE_RECHECK_SECONDS
    clock = StoppedClock()
    at_start = "docker info exited with 1: Cannot connect to the Docker daemon (at start)"
    still = "docker info exited with 1: Cannot connect to the Docker daemon (still)"
    answers = iter([at_start, still, None])
    asked: list[float] = []

    def probe() -> str | None:
        asked.append(clock.now)
        return next(answers)

    monkeypatch.setattr(local_backend, "time", clock)
    monkeypatch.setattr("winslow.node.container.probe_container_engine", probe)
    late = LocalBackend(tmp_path / "data", object_store.cfg, kill_grace_seconds=1.0)
    started = clock.now

    def refusal(job_id: str) -> str:
        with pytest.raises(SubmitRejectedError) as caught:
            late.submit(make_spec(job_id, ["python", "detect.py"], image="x"))
        return caught.value.message

    clock.now += interval / 2
    burst = {refusal(f"early-{i}") for i in range(5)}
    assert asked == [started]
    assert len(burst) == 1 and f"({at_start})" in burst.pop()

    clock.now += interval
    burst = {refusal(f"later-{i}") for i in range(5)}
    rechecked = clock.now
    assert asked == [started, rechecked]
    assert len(burst) == 1 and f"({still})" in burst.pop()
    assert late.nodes()[0].attributes["container_engine"] == "none"

    clock.now += interval
    assert late._container_engine_now() is True
    assert late._container_engine_now() is True  # found: not asked again
    assert asked == [started, rechecked, clock.now]
    assert late.nodes()[0].attributes["container_engine"] == "docker"


@pytest.mark.parametrize("job_id", ["", "../escape", "a/b", ".hidden"])
def test_job_ids_that_cannot_name_a_directory_are_refused(backend, job_id):
    with pytest.raises(SubmitRejectedError, match="cannot name a job directory"):
        backend.submit(make_spec(job_id, ["true"]))
    assert backend.status(job_id) is None


def test_unknown_job_has_no_status_no_log_and_cancels_quietly(backend):
    assert backend.status("never-submitted") is None
    assert backend.logs("never-submitted") == b""
    backend.cancel("never-submitted")
    assert backend.list_jobs() == []


def test_spec_file_is_private_and_holds_no_storage_credentials(backend, events, object_store):
    spec = make_spec("private", ["true"])
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    spec_file = job_file(backend, spec.job_id, "spec.json")
    assert spec_file.stat().st_mode & 0o777 == 0o600
    assert object_store.cfg.secret_key not in spec_file.read_text()
    runner_out = job_file(backend, spec.job_id, "runner.out").read_text()
    assert object_store.cfg.secret_key not in runner_out


def test_remove_deletes_an_ended_job_and_refuses_a_running_one(backend, events, tmp_path):
    go = tmp_path / "go"
    spec = make_spec("to-remove", sh(f'while [ ! -e "{go}" ]; do sleep 0.02; done'))
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    with pytest.raises(ConflictError, match="cancel it"):
        backend.remove(spec.job_id)
    go.touch()
    events.wait_for(backend, spec.job_id, JobState.SUCCEEDED)
    backend.remove(spec.job_id)
    assert backend.status(spec.job_id) is None
    assert not (backend.jobs_dir / spec.job_id).exists()


def test_nodes_reports_this_machine(backend):
    [node] = backend.nodes()
    assert node.name == "local"
    assert node.cpus == os.cpu_count()
    assert node.memory_mb == psutil.virtual_memory().total // (1024 * 1024)
    assert node.attributes == {"container_engine": "none"}
    assert all(g.memory_mb >= 0 for g in node.gpus)


# Pure parts ----------------------------------------------------------------------------


def test_docker_command_mounts_workspace_and_inputs_and_passes_gpus(tmp_path):
    run = docker_run_command(
        job_id="ulm-0603.detect.41.1",
        image="ultralytics/yolo:8",
        command=["python", "detect.py", "--conf", "0.5"],
        env={"WINSLOW_PROJECT": "ulm-0603", "CUDA_VISIBLE_DEVICES": "7"},
        workspace=tmp_path / "workspace",
        inputs=tmp_path / "inputs",
        cpus=4.0,
        memory_mb=16384,
        gpu_indices=(0, 1),
    )
    assert run.argv == (
        "docker", "run", "--rm", "--init", "--name", "ulm-0603.detect.41.1",
        "-v", f"{tmp_path}/workspace:/workspace",
        "-v", f"{tmp_path}/inputs:/inputs:ro",
        "-w", "/workspace", "--cpus", "4", "--memory", "16384m",
        "--gpus", '"device=0,1"',
        "-e", "WINSLOW_INPUTS", "-e", "WINSLOW_PROJECT", "-e", "WINSLOW_WORKSPACE",
        "ultralytics/yolo:8", "python", "detect.py", "--conf", "0.5",
    )  # fmt: skip
    assert run.env == {
        "WINSLOW_PROJECT": "ulm-0603",
        "WINSLOW_WORKSPACE": "/workspace",
        "WINSLOW_INPUTS": "/inputs",
    }


def test_docker_command_mounts_the_stage_cache_where_the_node_has_one(tmp_path):
    run = docker_run_command(
        job_id="j",
        image="traffic:1",
        command=["detect"],
        env={},
        workspace=tmp_path / "workspace",
        inputs=tmp_path / "inputs",
        cpus=1.0,
        memory_mb=512,
        gpu_indices=(),
        stage_cache=tmp_path / "cache" / "stages",
    )
    at = run.argv.index(f"{tmp_path}/cache/stages:/winslow/cache")
    assert run.argv[at - 1] == "-v"
    assert run.env["WINSLOW_CACHE_DIR"] == "/winslow/cache"
    assert ("-e", "WINSLOW_CACHE_DIR") in zip(run.argv, run.argv[1:], strict=False)


def test_docker_command_without_gpus_hides_every_gpu(tmp_path):
    run = docker_run_command(
        job_id="a",
        image="i",
        command=["c"],
        env={},
        workspace=tmp_path,
        inputs=tmp_path,
        cpus=0.5,
        memory_mb=512,
        gpu_indices=(),
    )
    assert "--gpus" not in run.argv
    assert run.env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert run.env["CUDA_VISIBLE_DEVICES"] == ""
    assert run.argv[run.argv.index("--cpus") + 1] == "0.5"


def test_container_names_keep_to_dockers_alphabet():
    assert container_name("ulm:0603@detect+1") == "ulm-0603-detect-1"
    assert container_name("_x") == "w_x"


def test_host_env_keeps_basics_drops_the_rest(tmp_path):
    spec = make_spec("e", ["true"], env={"A": "1", "PATH": "/opt/stage/bin"}, gpu_indices=(3,))
    env = host_stage_env(
        {"PATH": "/usr/bin", "HOME": "/root", "WINSLOW_S3_SECRET_KEY": "s", "OTHER": "x"},
        spec,
        tmp_path / "w",
        tmp_path / "i",
    )
    assert env == {
        "PATH": "/opt/stage/bin",
        "HOME": "/root",
        "A": "1",
        "WINSLOW_WORKSPACE": str(tmp_path / "w"),
        "WINSLOW_INPUTS": str(tmp_path / "i"),
        "CUDA_VISIBLE_DEVICES": "3",
        "NVIDIA_VISIBLE_DEVICES": "3",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }


@pytest.mark.parametrize(
    ("chunks", "lines", "rest"),
    [
        ([b"a\nb\n"], [b"a", b"b"], []),
        ([b"a\r\nb"], [b"a"], [b"b"]),
        ([b"a\r", b"\nb\n"], [b"a", b"b"], []),
        ([b"1%\r2%\r"], [b"1%", b"2%"], []),
        ([b"\n\n"], [b"", b""], []),
        ([b"abcdefgh"], [b"abcd", b"efgh"], []),
    ],
    ids=["newlines", "crlf", "crlf split across chunks", "carriage returns", "empty", "long"],
)
def test_line_splitter(chunks, lines, rest):
    splitter = LineSplitter(max_bytes=4)
    got = [line for chunk in chunks for line in splitter.feed(chunk)]
    assert got == lines
    assert splitter.flush() == rest


@pytest.mark.parametrize(
    ("code", "container", "reason"),
    [
        (0, False, None),
        (3, False, "exited with code 3"),
        (-9, False, "killed by signal 9 (SIGKILL)"),
        (-15, False, "killed by signal 15 (SIGTERM)"),
        (125, True, "docker could not start the container (exit code 125); the log says why"),
        (
            137,
            True,
            "exited with code 137 (SIGKILL inside the container; it may have run out "
            "of its 512.0 MiB memory limit)",
        ),
    ],
)
def test_exit_reasons(code, container, reason):
    assert exit_reason(code, in_container=container, memory_mb=512) == reason


def test_job_spec_round_trips_through_json():
    spec = make_spec(
        "rt",
        ["a", "b"],
        inputs=("x",),
        gpu_indices=(1,),
        timeout_seconds=5,
        image="img",
        workspace_sources=("w/",),
    )
    job = JobSpec(spec, "local", True, "/cache", 2.5)
    assert job_spec_from_json(json.loads(json.dumps(job_spec_to_json(job)))) == job


def test_storage_handover_round_trips_and_anything_else_is_none(object_store):
    assert read_storage_handover(storage_handover(object_store.cfg)) == object_store.cfg
    assert read_storage_handover(b"") is None  # a server that died before writing it
    assert read_storage_handover(b"[]") is None
    assert read_storage_handover(b'{"WINSLOW_S3_ENDPOINT": "http://s3"}') is None


def test_storage_env_round_trips_and_incomplete_env_is_none(object_store):
    assert storage_config_from_env(storage_env(object_store.cfg)) == object_store.cfg
    assert storage_config_from_env({}) is None


def test_timestamps_are_utc_milliseconds():
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime(2026, 11, 25, 9, 12, 3, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "2026-11-25T08:12:03.123Z"
    assert format_timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"
