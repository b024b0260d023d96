"""The cache behind ``Store.get_project`` and ``Store.runs``: on its own, a value read
while a commit landed is never served, and it holds no more than its capacity; in the
store, on SQLite and on PostgreSQL, a round reads a project once and every commit of
this server, one that lands during a read too, is seen at the next read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core.states import StageRunState
from winslow.store.generations import GenerationCache
from winslow.store.repo import Store

PIPELINE = {"name": "p", "stages": [{"name": "detect", "command": ["true"]}]}


def test_a_value_is_served_until_its_project_changes() -> None:
    cache = GenerationCache[str](capacity=4)
    generation = cache.generation("p1")
    cache.put("p1", generation, "read at 1")
    assert cache.get("p1") == "read at 1"
    cache.changed({"p1"})
    assert cache.get("p1") is None


def test_a_read_that_raced_a_commit_is_not_kept() -> None:
    """The reader took the generation, a commit landed, then the reader stored what it
    had read: that may be the old state, so it must not be served."""
    cache = GenerationCache[str](capacity=4)
    generation = cache.generation("p1")
    cache.changed({"p1"})
    cache.put("p1", generation, "maybe old")
    assert cache.get("p1") is None
    cache.put("p1", cache.generation("p1"), "new")
    assert cache.get("p1") == "new"


def test_other_projects_keep_their_values_and_the_least_used_goes_first() -> None:
    cache = GenerationCache[int](capacity=2)
    for number, key in enumerate(("a", "b")):
        cache.put(key, cache.generation(key), number)
    cache.changed({"c"})
    assert cache.get("a") == 0  # also makes "b" the least used
    cache.put("c", cache.generation("c"), 2)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (0, None, 2)


def create(store: Store, name: str) -> str:
    return store.create_project(
        name=name, pipeline_name="p", pipeline=PIPELINE, labels=(), variables={}, actor="ana"
    ).id


def add_run(store: Store, project_id: str) -> int:
    with store.project_transaction(project_id) as tx:
        return tx.add_run(stage="detect", attempt=1, state=StageRunState.PENDING).id


def set_reason(store: Store, project_id: str, reason: str) -> None:
    with store.project_transaction(project_id) as tx:
        tx.update_project(state_reason=reason)


@contextmanager
def reads_of(store: Store, table: str) -> Iterator[list[str]]:
    """The statements sent to read ``table`` while the block runs (on PostgreSQL writes
    share the engine: their locking reads are left out)."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if f"FROM {table}" in statement and "FOR UPDATE" not in statement:
            sent.append(statement)

    event.listen(store.read_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(store.read_engine, "before_cursor_execute", note)


@contextmanager
def once_after_reading(store: Store, table: str, act: Callable[[], None]) -> Iterator[None]:
    """Run ``act`` once, right after the first read of ``table`` got its rows and before
    the store keeps what it read: a commit racing that read."""
    done: list[bool] = []

    def race(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not done and f"FROM {table}" in statement:
            done.append(True)
            act()

    event.listen(store.read_engine, "after_cursor_execute", race)
    try:
        yield
    finally:
        event.remove(store.read_engine, "after_cursor_execute", race)
    assert done, f"nothing read {table}"


@ON_BOTH_DATABASES
def test_a_round_reads_a_project_and_its_runs_once_until_this_server_writes_it(
    store: Store,
) -> None:
    project_id = create(store, "ulm")
    with (
        store.kept_reads(),
        reads_of(store, "projects") as projects,
        reads_of(store, "runs") as runs,
    ):
        for _ in range(3):
            assert store.get_project(project_id).name == "ulm"
            assert store.runs(project_id) == []
        assert (len(projects), len(runs)) == (1, 1)
        run_id = add_run(store, project_id)
        set_reason(store, project_id, "waiting for a GPU")
        assert [r.id for r in store.runs(project_id)] == [run_id]
        assert store.get_project(project_id).state_reason == "waiting for a GPU"
        assert (len(projects), len(runs)) == (2, 2)


@ON_BOTH_DATABASES
def test_a_project_read_by_name_is_read_afresh_each_time(store: Store) -> None:
    # Commits name projects by id: a value kept under a name would never be forgotten.
    project_id = create(store, "ulm")
    with store.kept_reads():
        assert store.get_project("ulm").state_reason == "created; start it when ready"
        set_reason(store, project_id, "waiting for a GPU")
        assert store.get_project("ulm").state_reason == "waiting for a GPU"


@ON_BOTH_DATABASES
def test_a_read_that_raced_a_commit_of_this_server_is_read_again(store: Store) -> None:
    project_id = create(store, "ulm")
    with store.kept_reads():
        with once_after_reading(
            store, "projects", lambda: set_reason(store, project_id, "moved on")
        ):
            store.get_project(project_id)
        assert store.get_project(project_id).state_reason == "moved on"
        with once_after_reading(store, "runs", lambda: add_run(store, project_id)):
            store.runs(project_id)
        assert len(store.runs(project_id)) == 1
