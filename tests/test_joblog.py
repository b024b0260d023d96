"""One record is one line: what Winslow writes into a run's log escapes its control
characters, on the local runner and in the Nomad tools (stage-in, stage-exec, stage-out,
stage-follow), so no value can add a line that reads as the stage's (issue 14, item 4)."""

from __future__ import annotations

import io
import re
import shlex
import sys
from pathlib import Path

import pytest

from winslow.core.outputs import OutputScanner, iter_lines
from winslow.core.progress import latest_progress
from winslow.node.follow import TaskLogFollower
from winslow.node.joblog import EventLog, JobLog, log_record
from winslow.node.progress import PROGRESS_STREAM
from winslow.node.stagetools import run_command, run_stage_out, stage_in
from winslow.pipeline.model import LogParser
from winslow.storage.objects import ObjectEntry

STAMP = "2026-11-25T08:12:03.123Z"
FORGED = (
    f"a\n{STAMP} stdout | WINSLOW_RESULT: x=1"
    f"\r{STAMP} stderr | WINSLOW_PROGRESS: 0.99"
    f"\u2028{STAMP} stdout | frame 7\x85{STAMP} stdout | 98 %"
    "\x1b[2K\u202e\x7f"
)
ESCAPED = (
    f"a\\n{STAMP} stdout | WINSLOW_RESULT: x=1"
    f"\\r{STAMP} stderr | WINSLOW_PROGRESS: 0.99"
    f"\\u2028{STAMP} stdout | frame 7\\x85{STAMP} stdout | 98 %"
    "\\x1b[2K\\u202e\\x7f"
)
RECORD = re.compile(r"^\S+Z (stdout|stderr|winslow|progress) \| ")


def records(data: bytes) -> list[str]:
    """The log's records; fails unless every line is one and the log ends in a newline."""
    text = data.decode()
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert all(RECORD.match(line) for line in lines), lines
    # A reader that splits at more than \n (str.splitlines) finds no other stage line.
    stage = re.compile(r"^\S+ (stdout|stderr|progress) \| ")
    assert [x for x in text.splitlines() if stage.match(x)] == [x for x in lines if stage.match(x)]
    return lines


def reads_nothing_of_the_stage(data: bytes) -> None:
    """Neither results, series points nor progress come out of ``data``."""
    scanner = OutputScanner([LogParser(name="frames", pattern=r"frame (?P<frame>\d+)")])
    scanner.feed_all(iter_lines([data]))
    assert scanner.results == {}
    assert scanner.series()[0].points == ()
    assert latest_progress(data.decode().splitlines()) is None


@pytest.mark.parametrize("stream", ["winslow", PROGRESS_STREAM])
def test_a_line_of_winslows_own_escapes_its_control_characters(stream) -> None:
    record = log_record(stream, FORGED, STAMP)

    assert record == f"{STAMP} {stream} | {ESCAPED}\n".encode()
    assert log_record(stream, FORGED.encode(), STAMP) == record  # bytes alike
    if stream == "winslow":
        reads_nothing_of_the_stage(record)


def test_a_stage_line_is_written_as_printed_but_never_breaks() -> None:
    colour = "\x1b[32mok\x1b[0m \u202e".encode()
    assert log_record("stdout", colour, STAMP) == f"{STAMP} stdout | ".encode() + colour + b"\n"
    assert log_record("stderr", b"a\nb\rc", STAMP) == f"{STAMP} stderr | a\\nb\\rc\n".encode()
    assert (
        log_record("winslow", "\x00\t\x9b", STAMP) == f"{STAMP} winslow | \\x00\\t\\x9b\n".encode()
    )


def test_job_log_events_and_event_log_copies_escape(tmp_path: Path) -> None:
    log = JobLog(tmp_path / "log.txt")
    log.event(f"starting: true {FORGED}")
    log.close()
    stderr = io.StringIO()
    events = EventLog(tmp_path / "events.txt", stream=stderr)
    events(f"input {FORGED}: downloaded")
    events.close()

    assert records((tmp_path / "log.txt").read_bytes()) == [
        f"{(tmp_path / 'log.txt').read_text()[:24]} winslow | starting: true {ESCAPED}"
    ]
    written = (tmp_path / "events.txt").read_bytes()
    assert records(written)[0].endswith(f"winslow | input {ESCAPED}: downloaded")
    assert b"".join(events.lines) == written  # the archive's copy is the file's
    assert stderr.getvalue() == f"winslow: input {ESCAPED}: downloaded\n"
    reads_nothing_of_the_stage(written)


def test_stage_exec_logs_its_arguments_on_one_line(tmp_path: Path) -> None:
    log = tmp_path / "winslow.log"
    result = run_command(
        [sys.executable, "-c", "pass", FORGED],
        workdir=tmp_path,
        env={},
        log_path=log,
        stdout=io.BytesIO(),
        stderr=io.BytesIO(),
    )

    assert result.exit_code == 0
    lines = records(log.read_bytes())
    command = shlex.join([sys.executable, "-c", "pass"])
    assert lines[0].endswith(f"winslow | starting: {command} '{ESCAPED}'")
    assert lines[1:] == [lines[1][:24] + " winslow | exited with code 0"]
    reads_nothing_of_the_stage(log.read_bytes())


class _Pool:
    """Just enough of an ObjectStore for stage-in of one input and stage-out of a log."""

    def __init__(self) -> None:
        self.uploaded: dict[str, bytes] = {}

    def head(self, key: str) -> ObjectEntry:
        return ObjectEntry(path=key, size=3, modified=None, is_dir=False, etag=None)

    def download_file(self, key: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"abc")

    def upload_file(self, path: Path, key: str) -> None:
        self.uploaded[key] = path.read_bytes()

    def put_bytes(self, key: str, data: bytes) -> None:
        self.uploaded[key] = data


def test_stage_in_and_stage_out_events_stay_one_line(tmp_path: Path) -> None:
    # A pool path may hold U+2028 (no control character to clean_relative_path); a
    # storage key is whatever the spec said.
    pool, log = _Pool(), tmp_path / "logs" / "winslow.log"
    events = EventLog(log, stream=io.StringIO())
    name = f"videos/a\u2028{STAMP} stdout | WINSLOW_RESULT: x=1.mp4"
    stage_in(
        tmp_path / "ws",
        tmp_path / "in",
        sources=(),
        input_paths=[name],
        store=lambda: pool,
        event=events,
    )
    events.close()
    events = EventLog(log, stream=io.StringIO())  # stage-out is a task of its own
    log_key = f"logs/p/1\n{STAMP} stdout | WINSLOW_PROGRESS: 0.5\n.log"
    problems = run_stage_out(
        workspace=tmp_path / "empty",
        prefix=None,
        log_key=log_key,
        store=lambda: pool,
        events=events,
        log_path=log,
        delays=(),
    )
    events.close()

    assert problems == []
    lines = records(log.read_bytes())
    assert any(line.endswith("WINSLOW_RESULT: x=1.mp4: downloaded (3 B)") for line in lines)
    assert any("\\u2028" in line for line in lines)
    assert (
        f"archiving the log to logs/p/1\\n{STAMP} stdout | WINSLOW_PROGRESS: 0.5\\n.log"
        in (lines[-1])
    )
    archived = pool.uploaded[log_key]
    assert records(archived) == lines
    reads_nothing_of_the_stage(archived)


def test_the_container_follower_copies_stage_lines_as_printed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "main.stdout.0").write_bytes(b"frame 1\n\x1b[1mbold\x1b[0m\n")
    log = logs / "winslow.log"
    follower = TaskLogFollower(logs, "main", log)
    follower.read_to_end()
    follower.log.event(f"note {FORGED}")
    follower.close()

    lines = records(log.read_bytes())
    assert [line[25:] for line in lines] == [
        "stdout | frame 1",
        "stdout | \x1b[1mbold\x1b[0m",
        f"winslow | note {ESCAPED}",
    ]
