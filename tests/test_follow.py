"""``winslow stage-follow``: a container stage's output copied into the run's log as it comes.

No Nomad here: a folder stands in for the allocation's ``alloc/logs``, written the way
Nomad's logmon writes it (client/logmon/logging/rotator.go: ``<task>.<stream>.<n>``, a
new file once one is full, the oldest purged beyond ``MaxFiles``), and the follower runs
in-process or as the real ``winslow stage-follow`` command that a Nomad task runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from winslow.node.follow import (
    TaskLogFollower,
    catch_up,
    follow_task,
    read_state,
    state_path,
)

WINSLOW = Path(sys.executable).with_name("winslow")
LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (stdout|stderr|winslow|progress) \| ")
WAIT_SECONDS = 20.0


def alloc_logs(tmp_path: Path) -> tuple[Path, Path]:
    """An allocation's log folder holding stage-in's first line, and the run's log in it."""
    logs = tmp_path / "alloc" / "logs"
    logs.mkdir(parents=True)
    log = logs / "winslow.log"
    log.write_bytes(b"2026-11-25T08:00:00.000Z winslow | stage-in: nothing to fetch\n")
    return logs, log


def write(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def records(log: Path) -> list[bytes]:
    """The log's lines without their stamps, each checked to be a whole record."""
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the log ends in a partial record"
    assert all(LINE.match(line) for line in lines[:-1]), lines
    return [line.split(b" ", 1)[1] for line in lines[:-1]]


def follow_once(logs: Path, log: Path) -> None:
    follower = TaskLogFollower(logs, "main", log)
    try:
        follower.poll()
    finally:
        follower.close()


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_lines_are_appended_as_they_come_and_a_partial_one_waits_for_its_end(tmp_path):
    logs, log = alloc_logs(tmp_path)
    follower = TaskLogFollower(logs, "main", log)
    try:
        assert follower.poll() == 0  # the task has not written (or Nomad made no file) yet
        write(logs / "main.stdout.0", b"frame 1\nframe 2\nfra")
        write(logs / "main.stderr.0", b"warning: slow\n")
        follower.poll()
        assert records(log)[1:] == [
            b"stdout | frame 1",
            b"stdout | frame 2",
            b"stderr | warning: slow",
        ]
        write(logs / "main.stdout.0", b"me 3\r\n\rno newline")
        follower.poll()
        assert records(log)[4:] == [b"stdout | frame 3", b"stdout | "]
        follower.finish()  # the task ended: its unterminated last line goes in whole
        assert records(log)[6:] == [b"stdout | no newline"]
    finally:
        follower.close()
    assert records(log)[0] == b"winslow | stage-in: nothing to fetch"  # what was there stays


def test_rotation_is_followed_into_the_next_file_and_a_line_may_span_two(tmp_path):
    """Nomad's rotator closes a full file before it creates the next, and splits a line
    between two files only when it is too long to move (rotator.go ``lineScanLimit``)."""
    logs, log = alloc_logs(tmp_path)
    follower = TaskLogFollower(logs, "main", log)
    try:
        write(logs / "main.stdout.0", b"one\ntw")
        follower.poll()
        write(logs / "main.stdout.0", b"o-a")  # written just before the rotation
        write(logs / "main.stdout.1", b"nd-a-half\nthree\n")
        follower.poll()
        write(logs / "main.stdout.2", b"four\n")
        follower.poll()
    finally:
        follower.close()
    assert records(log)[1:] == [
        b"stdout | one",
        b"stdout | two-and-a-half",
        b"stdout | three",
        b"stdout | four",
    ]
    state = read_state(state_path(log))
    assert state is not None
    assert (state.positions["stdout"].index, state.positions["stdout"].offset) == (2, 5)
    assert state.log_size == log.stat().st_size


def test_a_file_purged_before_it_was_read_is_named_in_the_log(tmp_path):
    logs, log = alloc_logs(tmp_path)
    write(logs / "main.stdout.0", b"kept\n")
    follow_once(logs, log)
    # The follower fell behind: logmon rotated past .1 and .2 and purged them.
    write(logs / "main.stdout.0", b"also kept\n")
    write(logs / "main.stdout.3", b"after the gap\n")
    follow_once(logs, log)
    assert records(log)[1:] == [
        b"stdout | kept",
        b"stdout | also kept",
        b"winslow | stage-follow: Nomad rotated main.stdout.1 to main.stdout.2 away unread; "
        b"the stage's lines in it are missing from this log",
        b"stdout | after the gap",
    ]


def test_a_new_follower_goes_on_where_the_last_one_saved(tmp_path):
    logs, log = alloc_logs(tmp_path)
    write(logs / "main.stdout.0", b"a\nb\r")
    write(logs / "main.stderr.0", b"e1\n")
    follow_once(logs, log)
    write(logs / "main.stdout.0", b"\nc\n")  # the \n of the \r\n the last one ended on
    write(logs / "main.stderr.0", b"e2\n")
    follow_once(logs, log)
    assert records(log)[1:] == [
        b"stdout | a",
        b"stdout | b",
        b"stderr | e1",
        b"stdout | c",
        b"stderr | e2",
    ]


def test_lines_appended_after_the_last_save_are_not_appended_again(tmp_path):
    """A follower killed between appending lines and saving its positions: the next one
    (stage-out's catch-up) counts those lines in the log and skips them."""
    logs, log = alloc_logs(tmp_path)
    write(logs / "main.stdout.0", b"1\n2\n")
    follow_once(logs, log)
    saved = state_path(log).read_bytes()
    write(logs / "main.stdout.0", b"3\n4\npart")
    write(logs / "main.stderr.0", b"oops\n")
    follow_once(logs, log)
    state_path(log).write_bytes(saved)  # as if it died before saving this
    write(logs / "main.stdout.0", b"ial\n5\n")
    catch_up(logs, "main", log)
    assert records(log)[1:] == [
        b"stdout | 1",
        b"stdout | 2",
        b"stdout | 3",
        b"stdout | 4",
        b"stderr | oops",
        b"stdout | partial",
        b"stdout | 5",
    ]
    catch_up(logs, "main", log)  # a second catch-up finds nothing new
    assert len(records(log)) == 8


def test_catch_up_without_a_follower_adds_everything_stdout_first(tmp_path):
    """A job submitted before the follower existed, or whose follower never started."""
    logs, log = alloc_logs(tmp_path)
    write(logs / "main.stdout.0", b"frame 1\n")
    write(logs / "main.stdout.1", b"frame 2\nno newline")
    write(logs / "main.stderr.0", b"warning\n")
    write(logs / "stage-in.stdout.0", b"not the stage's\n")
    os.utime(logs / "main.stdout.1", (1_780_000_000, 1_780_000_000))
    catch_up(logs, "main", log)
    lines = log.read_bytes().splitlines()
    assert [line.split(b" ", 1)[1] for line in lines[1:]] == [
        b"stdout | frame 1",
        b"stdout | frame 2",
        b"stdout | no newline",
        b"stderr | warning",
    ]
    # stamped with when their file was last written: never earlier than the line
    assert lines[2].startswith(b"2026-05-28T20:26:40.000Z stdout")


def test_stop_drains_what_came_before_and_ends_with_the_partial_line(tmp_path):
    logs, log = alloc_logs(tmp_path)
    stop = threading.Event()
    done: list[bool] = []
    thread = threading.Thread(
        target=lambda: done.append(
            follow_task(logs, "main", log, stop, poll_seconds=0.02, drain_seconds=5)
        )
    )
    thread.start()
    try:
        write(logs / "main.stdout.0", b"early\n")
        wait_for(lambda: b"stdout | early" in log.read_bytes(), "the first line")
        write(logs / "main.stdout.0", b"late\nunfinished")
        stop.set()
    finally:
        thread.join(WAIT_SECONDS)
    assert done == [True]
    assert records(log)[1:] == [b"stdout | early", b"stdout | late", b"stdout | unfinished"]
    catch_up(logs, "main", log)  # stage-out then has nothing to add
    assert len(records(log)) == 4


def test_stage_follow_command_logs_live_and_drains_on_sigterm(tmp_path):
    """The command a Nomad task runs: lines show in the log while the stage runs; on
    SIGTERM (Nomad's kill once the stage is dead) it reads the rest and exits 0."""
    logs, log = alloc_logs(tmp_path)
    workspace = tmp_path / "alloc" / "workspace"
    (workspace / ".winslow").mkdir(parents=True)
    proc = subprocess.Popen(
        [
            str(WINSLOW),
            "stage-follow",
            "--logs-dir",
            str(logs),
            "--task",
            "main",
            "--log",
            str(log),
            "--workspace",
            str(workspace),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        write(logs / "main.stdout.0", b"frame 1\n")
        wait_for(lambda: b"stdout | frame 1" in log.read_bytes(), "a live line")
        (workspace / ".winslow" / "progress").write_text("450/1000")
        write(logs / "main.stderr.0", b"warning\n")
        write(logs / "main.stdout.0", b"frame 2\nlast words")
        wait_for(lambda: state_path(log).is_file(), "the saved positions")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=WAIT_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    lines = records(log)
    assert b"progress | WINSLOW_PROGRESS: 0.45" in lines
    # interleaved by arrival: each stream in its own order
    assert [line for line in lines if line.startswith(b"stdout")] == [
        b"stdout | frame 1",
        b"stdout | frame 2",
        b"stdout | last words",
    ]
    assert [line for line in lines if line.startswith(b"stderr")] == [b"stderr | warning"]
    assert len(lines) == 6
    assert not (workspace / ".winslow").exists()  # not handed on, as stage-exec does


def test_stage_follow_that_cannot_follow_exits_0(tmp_path):
    """A sidecar that fails makes Nomad kill the stage (alloc_runner.go
    handleTaskStateUpdates, ``TaskSiblingFailed``): stage-follow never fails."""
    logs, log = alloc_logs(tmp_path)
    shutil.rmtree(logs)
    log.parent.parent.joinpath("logs").write_text("not a folder")
    result = subprocess.run(
        [
            str(WINSLOW),
            "stage-follow",
            "--logs-dir",
            str(logs),
            "--task",
            "main",
            "--log",
            str(log),
        ],
        capture_output=True,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert result.returncode == 0
    assert b"stage-follow: stage-out adds the rest of the stage's output" in result.stderr
