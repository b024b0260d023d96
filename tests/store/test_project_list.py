"""The project list the overview reads many times a second: kept between calls, never stale."""

from __future__ import annotations

from winslow import defaults
from winslow.core import commands
from winslow.core.states import ProjectState
from winslow.engine.transitions import apply_command, move_project
from winslow.store.repo import open_store

PIPELINE = {"name": "p", "stages": [{"name": "a", "command": ["true"]}]}


def make(store, name: str):
    return store.create_project(
        name=name, pipeline_name="p", pipeline=PIPELINE, labels=("x",), variables={}, actor="t"
    )


def test_every_kind_of_change_shows_in_the_next_list(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    store.migrate()
    make(store, "b")
    assert [p.name for p in store.list_projects()] == ["b"]
    assert store.list_projects() is not store.list_projects()  # callers get their own list

    make(store, "a")  # a new row
    assert [p.name for p in store.list_projects()] == ["a", "b"]

    apply_command(store, "a", lambda project, _p, _r: commands.rename(project, "c"), "t")
    assert [p.name for p in store.list_projects()] == ["b", "c"]

    apply_command(store, "b", lambda project, _p, _r: commands.start(project), "t")
    assert {p.name: p.state for p in store.list_projects()}["b"] is ProjectState.RUNNING
    assert [p.name for p in store.list_projects(state=ProjectState.RUNNING)] == ["b"]

    with store.project_transaction("b") as tx:  # what the engine does when a stage fails
        move_project(tx, ProjectState.FAILED, reason="boom", actor="engine")
    assert {p.name: p.state_reason for p in store.list_projects()}["b"] == "boom"

    with store.project_transaction("c") as tx:
        tx.delete_project()
    assert [p.name for p in store.list_projects(label="x")] == ["b"]


def test_the_kept_list_holds_one_copy_of_equal_pipeline_snapshots(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    for name in ("a", "b"):
        make(store, name)
    other = {"name": "p", "stages": [{"name": "z", "command": ["true"]}]}
    store.create_project(
        name="c", pipeline_name="p", pipeline=other, labels=(), variables={}, actor="t"
    )
    a, b, c = store.list_projects()
    assert a.pipeline is b.pipeline and a.pipeline == PIPELINE
    assert c.pipeline == other  # a changed definition keeps its own


def test_the_kept_tuple_is_the_same_until_a_project_changes(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    make(store, "a")
    kept = store.kept_projects()
    assert store.kept_projects() is kept  # what callers derive from it stays good
    apply_command(store, "a", lambda project, _p, _r: commands.start(project), "t")
    assert store.kept_projects() is not kept
    assert store.kept_projects()[0].state is ProjectState.RUNNING


def test_each_sqlite_connection_keeps_a_small_page_cache(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    for engine in (store.engine, store.read_engine):
        with engine.connect() as connection:
            size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        assert size == -defaults.SQLITE_CACHE_KIB  # not SQLite's 2 MB per connection
