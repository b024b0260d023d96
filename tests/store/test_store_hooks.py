"""What the store tells the rest of the server, on SQLite and on PostgreSQL: the commit
listeners the live streams hang on, the count of projects per state, and a new database
password put in use without a restart."""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from tests.fixtures.postgres import ON_BOTH_DATABASES, superuser
from winslow.core.states import ProjectState
from winslow.errors import ConflictError
from winslow.store import people
from winslow.store.repo import Store, open_store

PIPELINE = {"name": "p", "stages": [{"name": "detect", "command": ["true"]}]}


def create(store: Store, name: str) -> str:
    return store.create_project(
        name=name, pipeline_name="p", pipeline=PIPELINE, labels=(), variables={}, actor="ana"
    ).id


def set_state(store: Store, project_id: str, state: ProjectState) -> None:
    with store.project_transaction(project_id) as tx:
        tx.update_project(state=state)


@ON_BOTH_DATABASES
def test_a_listener_hears_the_projects_a_commit_changed_once_others_can_read_them(
    store: Store,
) -> None:
    other = Store(store.url)  # another connection: it reads only what was committed
    heard: list[tuple[set[str], str | None, bool]] = []

    def listener(project_ids: Collection[str]) -> None:
        [project_id] = project_ids
        reason = other.get_project(project_id).state_reason
        heard.append((set(project_ids), reason, threading.current_thread() is writer))

    writer = threading.current_thread()
    store.on_commit(listener)
    try:
        ulm = create(store, "ulm")
        with store.project_transaction(ulm) as tx:
            tx.update_project(state_reason="waiting for a GPU")
    finally:
        other.close()
    assert heard == [
        ({ulm}, "created; start it when ready", True),
        ({ulm}, "waiting for a GPU", True),
    ]


@ON_BOTH_DATABASES
def test_a_rolled_back_write_and_one_that_changed_no_project_are_not_heard(
    store: Store,
) -> None:
    ulm = create(store, "ulm")
    heard: list[set[str]] = []
    store.on_commit(lambda project_ids: heard.append(set(project_ids)))

    with pytest.raises(RuntimeError), store.project_transaction(ulm) as tx:
        tx.update_project(state_reason="never seen")
        raise RuntimeError("the writer broke off")
    people.create_user(store, "ben")

    assert heard == []
    assert store.get_project(ulm).state_reason == "created; start it when ready"
    set_state(store, ulm, ProjectState.RUNNING)
    assert heard == [{ulm}]


@ON_BOTH_DATABASES
def test_a_failing_listener_fails_neither_the_write_nor_the_listeners_after_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[set[str]] = []

    def broken(_project_ids: Collection[str]) -> None:
        raise ValueError("the stream hub is gone")

    store.on_commit(broken)
    store.on_commit(lambda project_ids: heard.append(set(project_ids)))

    ulm = create(store, "ulm")

    assert heard == [{ulm}]
    assert store.get_project(ulm).name == "ulm"
    assert "a commit listener failed" in caplog.text


@ON_BOTH_DATABASES
def test_project_counts_say_how_many_projects_are_in_each_state_they_are_in(
    store: Store,
) -> None:
    assert store.project_counts() == {}
    ids = [create(store, name) for name in ("a", "b", "c", "d")]
    set_state(store, ids[0], ProjectState.RUNNING)
    set_state(store, ids[1], ProjectState.RUNNING)
    set_state(store, ids[2], ProjectState.FAILED)
    assert store.project_counts() == {"running": 2, "failed": 1, "idle": 1}
    with store.project_transaction(ids[2]) as tx:
        tx.delete_project()
    assert store.project_counts() == {"running": 2, "idle": 1}


@ON_BOTH_DATABASES
def test_a_database_url_that_changes_more_than_the_password_is_refused(
    store: Store, tmp_path: Path
) -> None:
    url = store.url
    if url.startswith("sqlite"):
        elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    else:
        elsewhere = url.rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(ConflictError, match="restart Winslow to connect to the new database"):
        store.use_database_url(elsewhere)
    assert store.url == url
    store.use_database_url(url)  # the same database: nothing to refuse
    assert store.get_project(create(store, "ulm")).name == "ulm"


@pytest.mark.postgres
def test_a_new_password_is_used_for_every_connection_made_after_it(
    postgres_server: str, password_role: tuple[str, str]
) -> None:
    role, url = password_role
    store = open_store(url.replace(f"{role}@", f"{role}:first-pw@"))
    try:
        ulm = create(store, "ulm")
        with superuser(postgres_server) as connection:
            connection.execute(f"ALTER ROLE {role} PASSWORD 'second-pw'")
            # As Vault's database engine does with the old credentials: cut them off.
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
        with pytest.raises(OperationalError, match="password authentication failed"):
            store.get_project(ulm)

        store.use_database_url(url.replace(f"{role}@", f"{role}:second-pw@"))

        assert store.get_project(ulm).name == "ulm"
        berlin = create(store, "berlin")
        assert [p.id for p in store.list_projects()] == [berlin, ulm]
        assert "second-pw" in store.url
    finally:
        store.close()
