"""The warm runner (issue 17): runners forked from one process that has imported what
they need, with the cold runner as the fallback, and nothing lost either way."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.backends.events import Events
from tests.backends.test_local import (
    WAIT_SECONDS,
    _stop_leftovers,
    log_lines,
    make_spec,
    read_record,
    sh,
    wait_until,
)
from winslow.backends.base import JobState
from winslow.backends.local import LocalBackend
from winslow.backends.local.launch import ForkedRunner
from winslow.node import warm


@pytest.fixture
def events() -> Events:
    return Events(within=WAIT_SECONDS)


def make_backend(tmp_path: Path, object_store, warm_runner: bool = True) -> LocalBackend:
    return LocalBackend(
        tmp_path / "data",
        object_store.cfg,
        container_engine=False,
        kill_grace_seconds=1.0,
        warm_runner=warm_runner,
    )


@pytest.fixture
def backend(tmp_path, object_store, events) -> Iterator[LocalBackend]:
    b = make_backend(tmp_path, object_store)
    b.start(events)
    try:
        yield b
    finally:
        b.stop()
        _stop_leftovers(b, events)


def warm_pid(backend: LocalBackend) -> int:
    assert backend._warm is not None and backend._warm._process is not None
    return backend._warm._process.pid


def runner_parent(backend: LocalBackend, job_id: str) -> int:
    return psutil.Process(read_record(backend, job_id, "runner.json")["pid"]).ppid()


def test_runners_are_forked_by_the_warm_runner_and_reaped_by_it(backend, events, object_store):
    """Each job's runner is a child of the warm runner (no fresh interpreter), runs the
    stage with its storage, and leaves no zombie when it ends."""
    object_store.put_bytes("resources/videos/cam1.txt", b"frame-1\n")
    gate = backend.data_dir / "release"
    spec = make_spec(
        "warm-1",
        sh(f'cat "$WINSLOW_INPUTS/videos/cam1.txt"; while [ ! -e {gate} ]; do sleep 0.02; done'),
        inputs=("videos/cam1.txt",),
    )
    backend.submit(spec)
    events.wait_for(backend, spec.job_id, JobState.RUNNING)
    parent = warm_pid(backend)
    assert runner_parent(backend, spec.job_id) == parent
    gate.touch()
    status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
    assert status.state is JobState.SUCCEEDED, status.reason
    assert ("stdout", "frame-1") in log_lines(backend.logs(spec.job_id))
    wait_until(
        lambda: (
            not any(
                child.status() == psutil.STATUS_ZOMBIE
                for child in psutil.Process(parent).children()
            )
        ),
        "the warm runner to reap its runner",
    )


def test_launches_from_many_threads_each_get_their_own_runner(backend, events):
    """Answers are matched to their launch, whatever the order they come in."""
    specs = [make_spec(f"many-{i}", sh(f"echo job-{i}")) for i in range(8)]
    threads = [threading.Thread(target=backend.submit, args=(spec,)) for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, spec in enumerate(specs):
        status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert status.state is JobState.SUCCEEDED, status.reason
        assert ("stdout", f"job-{i}") in log_lines(backend.logs(spec.job_id))


def test_a_stage_outlives_the_warm_runner_and_the_backend(tmp_path, object_store, events):
    """A stop of the backend ends the warm runner; the runner it forked goes on, records
    the end, and the next backend on the same folder finds it."""
    first = make_backend(tmp_path, object_store)
    first.start(events)
    gate = tmp_path / "release"
    spec = make_spec("outlives", sh(f"while [ ! -e {gate} ]; do sleep 0.02; done; echo done"))
    try:
        first.submit(spec)
        events.wait_for(first, spec.job_id, JobState.RUNNING)
        parent = psutil.Process(warm_pid(first))
    finally:
        first.stop()
    parent.wait(timeout=WAIT_SECONDS)  # the warm runner is gone...
    gate.touch()
    second = make_backend(tmp_path, object_store)
    second.start(events)
    try:
        status = events.wait_for(second, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert status.state is JobState.SUCCEEDED, status.reason  # ...its runner was not
        assert ("stdout", "done") in log_lines(second.logs(spec.job_id))
    finally:
        second.stop()
        _stop_leftovers(second, events)


def test_a_killed_warm_runner_leaves_its_runners_running_and_launches_go_cold(
    backend, events, caplog
):
    gate = backend.data_dir / "release"
    running = make_spec("before-kill", sh(f"while [ ! -e {gate} ]; do sleep 0.02; done"))
    backend.submit(running)
    events.wait_for(backend, running.job_id, JobState.RUNNING)
    killed = psutil.Process(warm_pid(backend))
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=WAIT_SECONDS)
    wait_until(lambda: backend._warm is not None and backend._warm._control is None, "EOF")

    after = make_spec("after-kill", sh(f"while [ ! -e {gate} ]; do sleep 0.02; done"))
    backend.submit(after)
    events.wait_for(backend, after.job_id, JobState.RUNNING)
    assert runner_parent(backend, after.job_id) == os.getpid()  # a fresh process of ours
    assert "starting a cold runner instead" in caplog.text

    gate.touch()
    for spec in (running, after):
        status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert status.state is JobState.SUCCEEDED, status.reason


def test_with_the_warm_runner_off_each_runner_is_a_fresh_process(tmp_path, object_store, events):
    backend = make_backend(tmp_path, object_store, warm_runner=False)
    backend.start(events)
    try:
        spec = make_spec("cold", sh("sleep 0.3; echo cold"))
        backend.submit(spec)
        events.wait_for(backend, spec.job_id, JobState.RUNNING)
        runner = psutil.Process(read_record(backend, spec.job_id, "runner.json")["pid"])
        assert runner.ppid() == os.getpid()
        assert "winslow.node.runner" in runner.cmdline()
        status = events.wait_for(backend, spec.job_id, JobState.SUCCEEDED, JobState.FAILED)
        assert status.state is JobState.SUCCEEDED, status.reason
        assert backend._warm is None
    finally:
        backend.stop()
        _stop_leftovers(backend, events)


def test_a_forked_runner_left_by_a_dead_warm_runner_is_asked_of_the_kernel():
    """Before it records itself, a runner is known by its pid only; once the warm runner
    that would report its end is gone, the kernel says whether it still runs."""
    assert not ForkedRunner(pid=2**22 + 1).running()  # above pid_max: never a process
    assert ForkedRunner(pid=os.getpid()).running()
    gone = ForkedRunner(pid=os.getpid())
    gone.exited.set()
    assert not gone.running()


def test_the_warm_runner_refuses_a_bad_command_line(capsys):
    assert warm.main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_the_object_store_is_built_once_before_the_forks_not_in_every_child(object_store):
    """Building a boto3 client cost each forked runner more CPU than its whole stage-out;
    the warm runner builds one per storage setting and the children inherit it. A bad
    handover builds nothing: the child then says what is missing, as a cold runner does."""
    from winslow.node.jobfiles import storage_handover

    warm._READY_STORES.clear()
    handover = storage_handover(object_store.cfg)
    first = warm._ready_store(handover)
    assert first is not None and first.cfg == object_store.cfg
    assert warm._ready_store(handover) is first
    assert warm._ready_store(b"not json") is None
    first.put_bytes("ready/probe.txt", b"works")  # a usable store, not only an object
    assert object_store.get_bytes("ready/probe.txt") == b"works"
