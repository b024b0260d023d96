"""The store's answers to the engine's narrow questions: which projects were written since
a moment, whose jobs these are, and which waiting runs the room on the nodes could hold.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core.states import StageRunState
from winslow.store.repo import RunRoom, Store
from winslow.store.rows import now

pytestmark = ON_BOTH_DATABASES

PIPELINE = {"name": "p", "stages": [{"name": "detect", "command": ["true"]}]}


def create(store: Store, name: str) -> str:
    return store.create_project(
        name=name, pipeline_name="p", pipeline=PIPELINE, labels=(), variables={}, actor="ana"
    ).id


def add_run(store: Store, project: str, **fields: Any) -> int:
    fields.setdefault("state", StageRunState.PENDING)
    with store.project_transaction(project) as tx:
        return tx.add_run(stage="detect", attempt=1, **fields).id


def test_changed_projects_are_those_written_since_with_their_versions(store: Store) -> None:
    old = create(store, "old")
    add_run(store, old, state=StageRunState.SUCCEEDED)
    mark = now()
    fresh = create(store, "fresh")
    with store.project_transaction(old) as tx:
        tx.update_project(labels=("seen",))

    changed = store.changed_projects(mark)

    assert changed == {old: store.get_project(old).version, fresh: 1}
    assert store.changed_projects(now() + timedelta(seconds=1)) == {}


def test_job_project_ids_name_the_projects_of_known_jobs_only(store: Store) -> None:
    first, second = create(store, "first"), create(store, "second")
    add_run(store, first, job_id="job-a", submitted=True)
    add_run(store, second, job_id="job-b", submitted=True)

    assert store.job_project_ids({"job-a", "job-b", "job-gone"}) == {first, second}
    assert store.job_project_ids(set()) == set()


def test_active_runs_of_some_projects_submitted_or_not(store: Store) -> None:
    first, second = create(store, "first"), create(store, "second")
    waiting = add_run(store, first)
    running = add_run(store, first, state=StageRunState.RUNNING, submitted=True, job_id="j")
    other = add_run(store, second)
    add_run(store, first, state=StageRunState.FAILED, submitted=True)

    assert [r.id for r in store.active_runs([first])] == [waiting, running]
    assert [r.id for r in store.active_runs(submitted=True)] == [running]
    assert [r.id for r in store.active_runs(submitted=False)] == [waiting, other]
    assert store.active_runs([]) == []
    assert store.advancing_project_ids([second]) == [second]
    assert store.advancing_project_ids([]) == []


def test_waiting_runs_are_those_the_room_could_hold_or_of_the_named_projects(
    store: Store,
) -> None:
    small, big, gpu, named = (create(store, n) for n in ("small", "big", "gpu", "named"))
    fits = add_run(store, small, cpus=1.0, memory_mb=100)
    add_run(store, big, cpus=8.0, memory_mb=100)
    add_run(store, gpu, cpus=1.0, memory_mb=100, gpus=1)
    too_big_but_named = add_run(store, named, cpus=8.0, memory_mb=100)
    add_run(store, small, cpus=1.0, memory_mb=100, submitted=True, job_id="running")
    room = RunRoom(cpus=2.0, memory_mb=1000, gpus=0)

    assert [r.id for r in store.waiting_runs(set(), room)] == [fits]
    assert [r.id for r in store.waiting_runs({named}, room)] == [fits, too_big_but_named]
    assert len(store.waiting_runs(set(), None)) == 4  # without room: every waiting run
    assert [r.id for r in store.waiting_runs({named}, room, after=fits)] == [too_big_but_named]
    assert [r.id for r in store.waiting_runs({named}, room, limit=1)] == [fits]
    full = RunRoom(cpus=0.0, memory_mb=0, gpus=0)
    assert store.waiting_runs(set(), full) == []
