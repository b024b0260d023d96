"""``winslow stage-exec``, ``stage-in`` and ``stage-out``: the real CLI, real SeaweedFS.

Each test runs the installed ``winslow`` entry point as a subprocess, as a Nomad task
would, with storage handed over in ``WINSLOW_S3_*``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.workspaces import put_workspace, read_workspace
from winslow.node.jobfiles import storage_env
from winslow.node.joblog import JobLog
from winslow.node.progress import ProgressFile, progress_line
from winslow.node.stagetools import exec_environment, read_end_record, task_log_files
from winslow.storage import keys

WINSLOW = Path(sys.executable).with_name("winslow")
LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr|winslow|progress) \| ")
PY = sys.executable


def winslow(*args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw):
    return subprocess.run(
        [str(WINSLOW), *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
        **kw,
    )


def log_lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines
    return [line.split(b" ", 1)[1] for line in lines]


# ---------------------------------------------------------------------------------------
# stage-exec


def test_exit_code_output_and_timestamped_log(tmp_path):
    script = "import os,sys; print('out', os.getcwd()); print('err', file=sys.stderr); sys.exit(3)"
    result = winslow(
        "stage-exec",
        "--workdir",
        str(tmp_path / "ws"),
        "--log",
        str(tmp_path / "logs" / "winslow.log"),
        "--",
        PY,
        "-c",
        script,
    )
    assert result.returncode == 3
    assert result.stdout == f"out {tmp_path / 'ws'}\n".encode()  # copied through for Nomad
    assert result.stderr == b"err\n"
    lines = log_lines(tmp_path / "logs" / "winslow.log")
    assert lines[0].startswith(b"winslow | starting: ")
    assert f"stdout | out {tmp_path / 'ws'}".encode() in lines
    assert b"stderr | err" in lines
    assert lines[-1] == b"winslow | exited with code 3"


def test_a_progress_file_becomes_progress_lines_and_is_not_handed_on(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / ".winslow").mkdir(parents=True)
    (workspace / ".winslow" / "progress").write_text("1.0\n")  # left by an earlier stage
    script = (
        "import time; "
        # The node looks every 2 s, and once more when the stage ends.
        "open('.winslow/progress', 'w').write('250/1000'); time.sleep(2.5); "
        "open('.winslow/progress', 'w').write('75 %\\n')"
    )
    result = winslow(
        "stage-exec",
        "--workdir",
        str(workspace),
        "--log",
        str(tmp_path / "winslow.log"),
        "--",
        PY,
        "-c",
        script,
    )
    assert result.returncode == 0, result.stderr
    progress = [
        line for line in log_lines(tmp_path / "winslow.log") if line.startswith(b"progress")
    ]
    assert progress == [
        b"progress | WINSLOW_PROGRESS: 0.25",
        b"progress | WINSLOW_PROGRESS: 75 %",
    ]
    assert not (workspace / ".winslow").exists()  # stage-out will not publish it


def test_progress_file_values_and_an_unchanged_stale_file(tmp_path):
    assert progress_line("450/1000") == "WINSLOW_PROGRESS: 0.45"
    assert progress_line("0.3") == "WINSLOW_PROGRESS: 0.3"
    assert progress_line("42") == "WINSLOW_PROGRESS: 42%"
    assert progress_line("5/0") is None and progress_line("  \n") is None
    (tmp_path / ".winslow").mkdir()
    (tmp_path / ".winslow" / "progress").write_text("0.9")
    log = JobLog(tmp_path / "log")
    with ProgressFile(tmp_path, log, poll_seconds=0.05):
        time.sleep(0.2)
    log.close()
    assert (tmp_path / "log").read_bytes() == b""  # carried over, never written: not ours


def test_success_passes_zero_and_a_missing_command_127(tmp_path):
    ok = winslow("stage-exec", "--workdir", str(tmp_path), "--", PY, "-c", "pass")
    assert ok.returncode == 0
    missing = winslow("stage-exec", "--workdir", str(tmp_path), "--", "no-such-command-x")
    assert missing.returncode == 127
    assert b"error: stage could not start 'no-such-command-x'" in missing.stderr


def test_stage_exec_hands_the_stage_its_cache_folder_made_where_missing(tmp_path):
    """A Nomad host stage's ``WINSLOW_CACHE_DIR``: the node cache's ``stages`` folder."""
    cache = tmp_path / "node-cache" / "stages"
    keep = "import os, pathlib; p = pathlib.Path(os.environ['WINSLOW_CACHE_DIR']) / 'engine'"
    for step in ("p.write_text('built')", "print(p.read_text())"):
        done = winslow(
            "stage-exec", "--workdir", str(tmp_path / "ws"), "--stage-cache", str(cache),
            "--", PY, "-c", f"{keep}; {step}",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"built"  # the second run found what the first kept
    plain = winslow("stage-exec", "--workdir", str(tmp_path), "--", PY, "-c",
                    "import os; print(os.environ.get('WINSLOW_CACHE_DIR'))")  # fmt: skip
    assert plain.stdout.strip() == b"None"


def test_timeout_stops_the_command_and_exits_124(tmp_path):
    log = tmp_path / "winslow.log"
    started = time.monotonic()
    result = winslow(
        "stage-exec",
        "--workdir",
        str(tmp_path),
        "--log",
        str(log),
        "--timeout",
        "1",
        "--grace",
        "1",
        "--",
        PY,
        "-c",
        # ignores SIGTERM, so only the SIGKILL after the grace period ends it
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
    )
    assert result.returncode == 124
    assert time.monotonic() - started < 20
    assert b"error: stage timed out after 1 s" in result.stderr
    lines = log_lines(log)
    assert b"winslow | timed out after 1 s; sending SIGTERM to the stage" in lines
    assert b"winslow | still running 1 s after SIGTERM; sending SIGKILL" in lines
    assert lines[-1] == b"winslow | killed by signal 9 (SIGKILL)"


def start_exec(tmp_path: Path, script: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(WINSLOW), "stage-exec", "--workdir", str(tmp_path), "--", PY, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ready = proc.stdout.readline()  # the child says when its handlers are in place
    assert ready == b"ready\n", (ready, proc.stderr.read() if proc.poll() is not None else b"")
    return proc


def test_sigterm_is_passed_on_and_the_childs_code_comes_back(tmp_path):
    script = (
        "import signal,sys,time\n"
        "def bye(n, f):\n"
        "    open('got-term', 'w').write(str(n)); sys.exit(3)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = start_exec(tmp_path, script)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3
    assert (tmp_path / "got-term").read_text() == str(int(signal.SIGTERM))


def test_a_sigterm_that_comes_as_the_command_starts_is_passed_on(tmp_path, monkeypatch):
    """The handlers were installed only after the command started: a SIGTERM in between
    (seen under load) ended stage-exec at once and left the stage running, unsupervised.
    Here the signal comes the moment the command's process exists."""
    from winslow.node import stagetools

    real_popen = subprocess.Popen
    seen: list[object] = []

    def popen_then_sigterm(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        assert proc.stdout.readline() == b"ready\n"
        handler = signal.getsignal(signal.SIGTERM)
        seen.append(handler)
        # Raised only when caught: the default would end this test process.
        if handler not in (signal.SIG_DFL, signal.SIG_IGN, None):
            signal.raise_signal(signal.SIGTERM)
        return proc

    monkeypatch.setattr(stagetools.subprocess, "Popen", popen_then_sigterm)
    script = (
        "import signal,sys,time\n"
        "signal.signal(signal.SIGTERM, lambda n, f: sys.exit(3))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    before = signal.getsignal(signal.SIGTERM)
    result = stagetools.run_command(
        [PY, "-c", script], workdir=tmp_path, env=os.environ, timeout=30, grace=5
    )
    assert seen[0] not in (signal.SIG_DFL, signal.SIG_IGN, None), "no handler as it started"
    assert result.exit_code == 3
    assert signal.getsignal(signal.SIGTERM) == before  # put back as it was


def test_sigint_is_passed_on_and_a_signal_death_exits_128_plus_n(tmp_path):
    script = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    proc = start_exec(tmp_path, script)
    proc.send_signal(signal.SIGINT)
    # Python dies of an unhandled SIGINT by re-raising it: killed by signal 2.
    assert proc.wait(timeout=20) == 128 + signal.SIGINT


def test_killed_by_a_signal_exits_128_plus_n(tmp_path):
    result = winslow(
        "stage-exec",
        "--workdir",
        str(tmp_path),
        "--",
        PY,
        "-c",
        "import os; os.kill(os.getpid(), 9)",
    )
    assert result.returncode == 128 + 9


def test_node_paths_resolve_in_arguments_and_env(tmp_path):
    script = "import os,sys; print(sys.argv[1]); print(os.environ['OUT'])"
    result = winslow(
        "stage-exec",
        "--workdir",
        str(tmp_path),
        "--workspace",
        "/node/ws",
        "--inputs",
        "/node/in",
        "--",
        PY,
        "-c",
        script,
        "${WINSLOW_INPUTS}/clip.mp4",
        env={"OUT": "${WINSLOW_WORKSPACE}/out.csv"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"/node/in/clip.mp4\n/node/ws/out.csv\n"


def test_exec_environment_drops_argument_carriers_and_isolates_gpus():
    base = {
        "PATH": "/bin",
        "WINSLOW_ARG_3": "${x}",
        "WINSLOW_ARGS": "kept",
        "NVIDIA_VISIBLE_DEVICES": "GPU-1,GPU-2",
        "IN": "${WINSLOW_INPUTS}/a",
    }
    env = exec_environment(base, workspace="/w", inputs="/i", isolate_gpus=True)
    assert env == {
        "PATH": "/bin",
        "WINSLOW_ARGS": "kept",
        "NVIDIA_VISIBLE_DEVICES": "GPU-1,GPU-2",
        "IN": "/i/a",
        "WINSLOW_WORKSPACE": "/w",
        "WINSLOW_INPUTS": "/i",
        "CUDA_VISIBLE_DEVICES": "GPU-1,GPU-2",
    }
    # No device from Nomad: no GPU at all, rather than every GPU of the node.
    assert exec_environment({}, isolate_gpus=True) == {"CUDA_VISIBLE_DEVICES": ""}
    runtime_keyword = exec_environment({"NVIDIA_VISIBLE_DEVICES": "all"}, isolate_gpus=True)
    assert runtime_keyword["CUDA_VISIBLE_DEVICES"] == ""


# ---------------------------------------------------------------------------------------
# stage-in and stage-out against SeaweedFS


@pytest.fixture
def s3_env(object_store) -> dict[str, str]:
    return storage_env(object_store.cfg)


def test_stage_in_fills_workspace_in_order_and_inputs(object_store, s3_env, tmp_path):
    put_workspace(
        object_store, "workspaces/p1/1/", {"a.txt": b"from run 1", "keep.txt": b"only in run 1"}
    )
    put_workspace(object_store, "workspaces/p1/2/", {"a.txt": b"from run 2", "sub/b.txt": b"b"})
    object_store.put_bytes(keys.resource_key("videos/road.mp4"), b"\x00video")
    object_store.put_bytes(keys.resource_key("models/yolo/weights.bin"), b"w")
    object_store.put_bytes(keys.resource_key("models/yolo/cfg/c.yaml"), b"c: 1")
    log = tmp_path / "logs" / "winslow.log"
    result = winslow(
        "stage-in",
        "--workspace",
        str(tmp_path / "workspace"),
        "--inputs",
        str(tmp_path / "inputs"),
        "--source",
        "workspaces/p1/1/",
        "--source",
        "workspaces/p1/2/",
        "--input",
        "videos/road.mp4",
        "--input",
        "models/yolo",
        "--log",
        str(log),
        env=s3_env,
    )
    assert result.returncode == 0, result.stderr
    ws = tmp_path / "workspace"
    assert (ws / "a.txt").read_bytes() == b"from run 2"  # the later source wins
    assert (ws / "keep.txt").read_bytes() == b"only in run 1"
    assert (ws / "sub" / "b.txt").read_bytes() == b"b"
    inputs = tmp_path / "inputs"
    assert (inputs / "videos" / "road.mp4").read_bytes() == b"\x00video"
    assert (inputs / "models" / "yolo" / "weights.bin").read_bytes() == b"w"
    assert (inputs / "models" / "yolo" / "cfg" / "c.yaml").read_bytes() == b"c: 1"
    # The stage may run as another user (a docker image's USER): it must be able to
    # write the workspace it continues, and to append to the run's log.
    for folder in (ws, ws / "sub", inputs):
        assert folder.stat().st_mode & 0o777 == 0o777, folder
    assert (ws / "a.txt").stat().st_mode & 0o666 == 0o666
    assert log.stat().st_mode & 0o777 == 0o666
    lines = log_lines(log)
    assert (
        b"winslow | workspace: version 1 of workspace of run 1 of project 'p1': 2 files, 23 B"
        in lines
    )
    assert b"winslow | workspace: 3 files in place" in lines
    assert b"winslow | staging in 2 inputs (3 files, 11 B)" in lines
    assert b"winslow: input videos/road.mp4: downloaded (6 B)" in result.stderr.splitlines()


def test_stage_in_with_a_missing_input_fails_at_once(object_store, s3_env, tmp_path):
    started = time.monotonic()
    result = winslow(
        "stage-in",
        "--workspace",
        str(tmp_path / "ws"),
        "--inputs",
        str(tmp_path / "in"),
        "--input",
        "videos/missing.mp4",
        env=s3_env,
    )
    assert result.returncode == 1
    assert time.monotonic() - started < 15  # not retried: it would be missing again
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("error: stage-in failed: ")
    assert "videos/missing.mp4" in last


def test_stage_in_without_storage_settings_says_which(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINSLOW_S3_")}
    result = subprocess.run(
        [str(WINSLOW), "stage-in", "--workspace", str(tmp_path / "w"), "--inputs",
         str(tmp_path / "i"), "--source", "workspaces/p/1/"],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert b"set WINSLOW_S3_ENDPOINT, WINSLOW_S3_ACCESS_KEY" in result.stderr


def make_alloc(tmp_path: Path, *, started: bool = True) -> tuple[Path, Path]:
    workspace = tmp_path / "workspace"
    (workspace / "out").mkdir(parents=True)
    (workspace / "out" / "summary.json").write_text('{"vehicles": 12}')
    (workspace / "tracks.csv").write_text("id,x,y\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "winslow.log").write_bytes(
        b"2026-11-25T08:00:00.000Z winslow | workspace: 2 files from workspaces/p1/1/\n"
    )
    if started:
        (logs / "main.stdout.0").write_bytes(b"frame 1\nframe 2\n")
        (logs / "main.stdout.1").write_bytes(b"frame 3\r\nno newline")
        (logs / "main.stderr.0").write_bytes(b"warning: slow\n")
        (logs / "stage-in.stdout.0").write_bytes(b"not the stage's\n")
    return workspace, logs


def test_stage_out_publishes_workspace_and_merged_log(object_store, s3_env, tmp_path):
    workspace, logs = make_alloc(tmp_path)
    result = winslow(
        "stage-out",
        "--workspace",
        str(workspace),
        "--prefix",
        "workspaces/p1/3/",
        "--log-key",
        "logs/p1/3.log",
        "--log",
        str(logs / "winslow.log"),
        "--logs-dir",
        str(logs),
        "--task",
        "main",
        "--merge-task-logs",
        env=s3_env,
    )
    assert result.returncode == 0, result.stderr
    assert read_workspace(object_store, "workspaces/p1/3/") == {
        "out/summary.json": b'{"vehicles": 12}',
        "tracks.csv": b"id,x,y\n",
    }
    archived = object_store.get_bytes("logs/p1/3.log")
    lines = [line.split(b" ", 1)[1] for line in archived.splitlines()]
    assert all(LINE.match(line) for line in archived.splitlines())
    assert lines == [
        b"winslow | workspace: 2 files from workspaces/p1/1/",
        b"stdout | frame 1",
        b"stdout | frame 2",
        b"stdout | frame 3",
        b"stdout | no newline",
        b"stderr | warning: slow",
        b"winslow | stage-out: published version 1 of workspace of run 3 of project 'p1': "
        b"2 files, 23 B; uploaded 2 new (23 B), the rest was stored already",
        b"winslow | stage-out: archiving the log to logs/p1/3.log",
    ]


def test_stage_out_adds_only_what_the_log_follower_did_not_copy(object_store, s3_env, tmp_path):
    """A container stage's ``stage-follow`` copied part of its output live, then Nomad
    killed it before it was done: stage-out adds the rest to the log, then archives the
    log exactly as it is, so offsets read live hold in the archive."""
    from winslow.node.follow import TaskLogFollower

    workspace, logs = make_alloc(tmp_path)
    log = logs / "winslow.log"
    follower = TaskLogFollower(logs, "main", log)
    follower.poll(budget=8)  # "frame 1\n" and "warning:" (held: no line yet)
    follower.close()
    live = log.read_bytes()
    result = winslow(
        "stage-out",
        "--workspace",
        str(workspace),
        "--log-key",
        "logs/p1/3.log",
        "--log",
        str(log),
        "--logs-dir",
        str(logs),
        "--task",
        "main",
        "--merge-task-logs",
        env=s3_env,
    )
    assert result.returncode == 0, result.stderr
    archived = object_store.get_bytes("logs/p1/3.log")
    assert archived == log.read_bytes() and archived.startswith(live)
    assert [line.split(b" ", 1)[1] for line in archived.splitlines()] == [
        b"winslow | workspace: 2 files from workspaces/p1/1/",
        b"stdout | frame 1",
        b"stdout | frame 2",
        b"stdout | frame 3",
        b"stdout | no newline",
        b"stderr | warning: slow",
        b"winslow | stage-out: archiving the log to logs/p1/3.log",
    ]
    assert live.endswith(b"stdout | frame 1\n")


def test_stage_out_does_not_publish_a_stage_that_never_started(object_store, s3_env, tmp_path):
    workspace, logs = make_alloc(tmp_path, started=False)
    result = winslow(
        "stage-out",
        "--workspace",
        str(workspace),
        "--prefix",
        "workspaces/p1/3/",
        "--log-key",
        "logs/p1/3.log",
        "--log",
        str(logs / "winslow.log"),
        "--logs-dir",
        str(logs),
        "--task",
        "main",
        env=s3_env,
    )
    assert result.returncode == 0, result.stderr
    assert object_store.list("workspaces/p1/3/", recursive=True) == []
    archived = object_store.get_bytes("logs/p1/3.log")
    assert b"winslow | stage-out: task 'main' never started; the workspace is not published" in (
        archived
    )


def test_stage_out_retries_then_gives_up_with_a_clear_message(object_store, s3_env, tmp_path):
    workspace, _logs = make_alloc(tmp_path)
    wrong = {**s3_env, "WINSLOW_S3_SECRET_KEY": "not-the-secret"}
    result = winslow(
        "stage-out",
        "--workspace",
        str(workspace),
        "--prefix",
        "workspaces/p1/3/",
        "--log-key",
        "logs/p1/3.log",
        "--retry-delays",
        "0.1,0.1",
        env=wrong,
    )
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "stage-out: workspace upload: attempt #1/3 failed; will retry in 0.1 s" in stderr
    assert "stage-out: log archive: attempt #2/3 failed; will retry in 0.1 s" in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: stage-out gave up: could not publish the workspace to workspaces/p1/3/: "
    )
    assert "; could not archive the log to logs/p1/3.log: " in last
    assert object_store.list("workspaces/p1/3/", recursive=True) == []


def test_task_log_files_come_in_rotation_order(tmp_path):
    for index in (10, 2, 0, 1):
        (tmp_path / f"main.stdout.{index}").write_text("x")
    (tmp_path / "main.stderr.0").write_text("x")
    (tmp_path / "mainly.stdout.0").write_text("x")
    names = [p.name for p in task_log_files(tmp_path, "main", "stdout")]
    assert names == ["main.stdout.0", "main.stdout.1", "main.stdout.2", "main.stdout.10"]


def test_stage_out_writes_the_end_record_with_the_stage_exec_exit_code(
    object_store, s3_env, tmp_path
):
    """The record stage-out leaves last, beside the archived log: what a Winslow that was
    not watching reads once Nomad has forgotten the job."""
    workspace, logs = make_alloc(tmp_path, started=False)
    (logs / "main.stdout.0").write_bytes(b"")  # the task started (Nomad made its log file)
    log = logs / "winslow.log"
    exec_result = winslow(
        "stage-exec", "--workdir", str(workspace), "--log", str(log), "--", "sh", "-c", "exit 3"
    )
    assert exec_result.returncode == 3
    args = ["--workspace", str(workspace), "--prefix", "workspaces/p1/3/", "--log-key"]
    args += ["logs/p1/3.log", "--log", str(log), "--logs-dir", str(logs), "--task", "main"]
    assert winslow("stage-out", *args, env=s3_env).returncode == 0
    record = read_end_record(object_store.get_bytes(keys.end_key("logs/p1/3.log") or ""))
    assert record is not None
    assert (record.stage_started, record.exit_code, record.problems) == (True, 3, ())
    assert record.written_at is not None

    (logs / "main.stdout.0").unlink()
    log.with_name("winslow.log.exit").unlink()
    assert winslow("stage-out", *args, env=s3_env).returncode == 0
    record = read_end_record(object_store.get_bytes("logs/p1/3.end.json"))
    assert record is not None
    assert (record.stage_started, record.exit_code) == (False, None)
