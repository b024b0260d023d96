"""The store on its own, on SQLite and on PostgreSQL: what each repository function gives
back, what a project transaction writes, and what it leaves alone when it fails."""

from __future__ import annotations

import pytest

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core.states import ProjectState, StageRunState
from winslow.errors import ConflictError, NotFoundError
from winslow.pipeline.model import RetentionPolicy
from winslow.store import tokens
from winslow.store.repo import Store

pytestmark = ON_BOTH_DATABASES

PIPELINE = {"name": "p", "stages": [{"name": "detect", "command": ["true"]}]}


def create(store: Store, name: str, labels: tuple[str, ...] = ()) -> str:
    project = store.create_project(
        name=name,
        pipeline_name="p",
        pipeline=PIPELINE,
        labels=labels,
        variables={"INPUT": "a.mp4"},
        actor="ana",
    )
    return project.id


def add_run(store: Store, project: str, state: StageRunState, stage: str = "detect") -> int:
    with store.project_transaction(project) as tx:
        return tx.add_run(stage=stage, attempt=1, state=state).id


def test_created_project_reads_back_by_id_and_name_with_its_history(store: Store) -> None:
    project_id = create(store, "ulm-0603", labels=("ulm",))
    by_name = store.get_project("ulm-0603")
    assert by_name == store.get_project(project_id)
    assert (by_name.state, by_name.labels, by_name.variables) == (
        ProjectState.IDLE,
        ("ulm",),
        {"INPUT": "a.mp4"},
    )
    assert by_name.created_at.tzinfo is not None  # SQLite hands back naive times; we do not
    [event] = store.history(project_id)
    assert (event.actor, event.kind, event.message) == (
        "ana",
        "create",
        "created from pipeline 'p'",
    )


def test_a_taken_name_is_a_conflict_and_an_unknown_project_not_found(store: Store) -> None:
    create(store, "ulm")
    with pytest.raises(ConflictError, match="A project named 'ulm' exists already"):
        create(store, "ulm")
    with pytest.raises(NotFoundError, match="No project 'berlin'"):
        store.get_project("berlin")
    with (
        pytest.raises(NotFoundError, match="No project 'berlin'"),
        store.project_transaction("berlin"),
    ):
        pass
    assert [p.name for p in store.list_projects()] == ["ulm"]


def test_list_projects_filters_by_state_and_label(store: Store) -> None:
    create(store, "b", labels=("x",))
    create(store, "a")
    with store.project_transaction("b") as tx:
        tx.update_project(state=ProjectState.RUNNING)
    assert [p.name for p in store.list_projects()] == ["a", "b"]
    assert [p.name for p in store.list_projects(state=ProjectState.RUNNING)] == ["b"]
    assert [p.name for p in store.list_projects(label="x")] == ["b"]
    assert store.list_projects(state=ProjectState.FAILED, label="x") == []


def test_runs_read_back_oldest_first_and_only_the_projects_own(store: Store) -> None:
    ulm, berlin = create(store, "ulm"), create(store, "berlin")
    first = add_run(store, ulm, StageRunState.SUCCEEDED)
    add_run(store, berlin, StageRunState.RUNNING)
    second = add_run(store, ulm, StageRunState.PENDING, stage="track")
    assert [r.id for r in store.runs(ulm)] == [first, second]
    assert store.get_run(ulm, second).stage == "track"
    with pytest.raises(NotFoundError, match="no run"):
        store.get_run(berlin, first)  # another project's run is as unknown as none
    assert store.run_project_id(first) == ulm
    assert store.run_project_id(10_000) is None


def test_active_runs_and_the_projects_the_engine_must_look_at(store: Store) -> None:
    idle, running, finished = create(store, "idle"), create(store, "running"), create(store, "fin")
    with store.project_transaction(running) as tx:
        tx.update_project(state=ProjectState.RUNNING)
    pending = add_run(store, finished, StageRunState.PENDING)
    add_run(store, finished, StageRunState.SUCCEEDED)
    assert [r.id for r in store.active_runs()] == [pending]
    # A running project, and one with a run still active whatever its own state.
    assert store.advancing_project_ids() == sorted([running, finished])
    assert idle not in store.advancing_project_ids()


def test_succeeded_stages_count_only_current_runs(store: Store) -> None:
    project = create(store, "ulm")
    done = add_run(store, project, StageRunState.SUCCEEDED)
    add_run(store, project, StageRunState.SKIPPED, stage="review")
    add_run(store, project, StageRunState.FAILED, stage="track")
    assert store.succeeded_stages() == {project: {"detect", "review"}}
    with store.project_transaction(project) as tx:
        tx.update_runs([done], superseded=True)  # a redo replaced it
    assert store.succeeded_stages() == {project: {"review"}}
    assert store.run_counts() == {"succeeded": 1, "skipped": 1, "failed": 1}


def test_succeeded_stages_of_some_projects_read_only_theirs(store: Store) -> None:
    first, second = create(store, "ulm"), create(store, "bonn")
    add_run(store, first, StageRunState.SUCCEEDED)
    add_run(store, second, StageRunState.SUCCEEDED, stage="track")
    assert store.succeeded_stages([second]) == {second: {"track"}}
    assert store.succeeded_stages([]) == {}


def test_history_after_gives_only_newer_lines(store: Store) -> None:
    project = create(store, "ulm")
    with store.project_transaction(project) as tx:
        tx.add_event("ana", "note", "one")
        tx.add_event("ben", "note", "two", {"n": 2})
    created, *rest = store.history(project)
    assert created.kind == "create"
    assert [e.message for e in rest] == ["one", "two"]
    assert [e.message for e in store.history(project, after=rest[0].id)] == ["two"]
    assert store.history(project)[-1].data == {"n": 2}


def test_transaction_writes_core_values_and_bumps_the_version_once(store: Store) -> None:
    project = create(store, "ulm")
    before = store.get_project(project)
    with store.project_transaction(project) as tx:
        tx.update_project(labels=("a", "b"), hold_after=frozenset({"z", "y"}))
        tx.update_project(retention=RetentionPolicy(keep_succeeded=2, keep_failed=False))
        assert tx.project.labels == ("a", "b")  # the transaction sees its own writes
    after = store.get_project(project)
    assert after.version == before.version + 1
    assert after.updated_at >= before.updated_at
    assert after.hold_after == frozenset({"y", "z"})
    assert after.retention == RetentionPolicy(keep_succeeded=2, keep_failed=False)
    assert after.state is ProjectState.IDLE  # what was not named stays


def test_transaction_adds_and_updates_runs_with_their_columns(store: Store) -> None:
    project = create(store, "ulm")
    with store.project_transaction(project) as tx:
        run = tx.add_run(stage="detect", attempt=2, state=StageRunState.PENDING, gpu_indices=(1,))
        assert run.id > 0 and run.created_at is not None
        tx.update_run(run.id, state=StageRunState.RUNNING, node="gpu-3", log_tail=("a", "b"))
    [stored] = store.runs(project)
    assert (stored.state, stored.node, stored.attempt) == (StageRunState.RUNNING, "gpu-3", 2)
    assert (stored.gpu_indices, stored.log_tail) == ((1,), ("a", "b"))
    with (
        pytest.raises(TypeError, match="no stored field 'colour'"),
        store.project_transaction(project) as tx,
    ):
        tx.update_run(run.id, colour="red")


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    project = create(store, "ulm")
    run = add_run(store, project, StageRunState.PENDING)
    before = store.get_project(project)
    with pytest.raises(RuntimeError), store.project_transaction(project) as tx:
        tx.update_project(state=ProjectState.RUNNING)
        tx.update_run(run, state=StageRunState.RUNNING)
        tx.add_event("ana", "note", "half way")
        raise RuntimeError("boom")
    assert store.get_project(project) == before
    assert store.get_run(project, run).state is StageRunState.PENDING
    assert [e.message for e in store.history(project)][-1] != "half way"


def test_another_projects_run_cannot_be_written_through_this_one(store: Store) -> None:
    ulm, berlin = create(store, "ulm"), create(store, "berlin")
    theirs = add_run(store, berlin, StageRunState.PENDING)
    with store.project_transaction(ulm) as tx:
        assert tx.run(theirs) is None
        with pytest.raises(NotFoundError):
            tx.update_run(theirs, state=StageRunState.RUNNING)
        tx.update_runs([theirs], superseded=True)  # silently none of this project's
        assert tx.name_taken("berlin") and not tx.name_taken("ulm")
    assert not store.get_run(berlin, theirs).superseded


def test_delete_project_takes_runs_tokens_and_history_with_it(store: Store) -> None:
    ulm, berlin = create(store, "ulm"), create(store, "berlin")
    add_run(store, ulm, StageRunState.SUCCEEDED)
    kept = add_run(store, berlin, StageRunState.SUCCEEDED)
    store.create_project_token(ulm, "ci", ["trigger"], actor="ana")
    with store.project_transaction("ulm") as tx:
        tx.delete_project()
    assert [p.name for p in store.list_projects()] == ["berlin"]
    assert store.runs(ulm) == [] and store.history(ulm) == []
    assert store.list_project_tokens(ulm) == []
    assert [r.id for r in store.runs(berlin)] == [kept]


def test_api_tokens_are_kept_hashed_and_revocable(store: Store) -> None:
    assert not store.has_tokens()
    token = store.create_token("ana")
    assert token.startswith("wsl_") and store.has_tokens()
    assert store.token_owner(token) == "ana"
    assert store.token_owner(token + "x") is None
    with pytest.raises(ConflictError, match="'ana' has a token named 'ana' already"):
        store.create_token("ana")
    tokens.revoke_token(store, "ana", "ana")
    assert store.token_owner(token) is None
    assert [(t.name, t.revoked, t.admin) for t in tokens.list_tokens(store)] == [
        ("ana", True, False)
    ]
    with pytest.raises(NotFoundError, match="'ben' has no token 'ben'"):
        tokens.revoke_token(store, "ben", "ben")


def test_project_tokens_belong_to_one_project_and_leave_history(store: Store) -> None:
    ulm, berlin = create(store, "ulm"), create(store, "berlin")
    token = store.create_project_token(ulm, "ci", ["trigger"], actor="ana")
    assert store.project_token(ulm, token).capabilities == ("trigger",)
    assert store.project_token(berlin, token) is None  # not another project's
    with pytest.raises(ConflictError, match="has a token named 'ci' already"):
        store.create_project_token(ulm, "ci", [], actor="ana")
    assert store.revoke_project_token(ulm, "ci", actor="ana") is True
    assert store.revoke_project_token(ulm, "ci", actor="ana") is False  # revoked before
    assert store.project_token(ulm, token) is None
    [listed] = store.list_project_tokens(ulm)
    assert listed.revoked and listed.name == "ci"
    assert [e.message for e in store.history(ulm) if e.kind == "token"] == [
        "created token 'ci' (trigger)",
        "revoked token 'ci'",
    ]


def test_kept_project_and_runs_follow_every_committed_change(store: Store) -> None:
    """Within ``kept_reads`` (the engine's round), ``get_project`` and ``runs`` keep what
    they read between calls, and a committed write is seen at the next call."""
    project_id = create(store, "kept")
    with store.kept_reads():
        kept_reads_follow_commits(store, project_id)


def kept_reads_follow_commits(store: Store, project_id: str) -> None:
    assert store.runs(project_id) == []
    before = store.get_project(project_id)
    run_id = add_run(store, project_id, StageRunState.PENDING)
    assert [r.id for r in store.runs(project_id)] == [run_id]
    with store.project_transaction(project_id) as tx:
        tx.update_run(run_id, state=StageRunState.RUNNING)
        tx.update_project(state=ProjectState.RUNNING)
    assert [r.state for r in store.runs(project_id)] == [StageRunState.RUNNING]
    after = store.get_project(project_id)
    assert (after.state, after.version) == (ProjectState.RUNNING, before.version + 1)
    # A rolled-back transaction changes nothing, kept or read.
    with pytest.raises(RuntimeError), store.project_transaction(project_id) as tx:
        tx.update_run(run_id, state=StageRunState.FAILED)
        raise RuntimeError("the writer broke off")
    assert [r.state for r in store.runs(project_id)] == [StageRunState.RUNNING]
    with store.project_transaction(project_id) as tx:
        tx.delete_project()
    with pytest.raises(NotFoundError):
        store.get_project(project_id)
    assert store.runs(project_id) == []


def test_a_write_by_another_server_is_read_at_once_and_by_the_next_round(
    store: Store,
) -> None:
    """Another server on the same database commits without this store hearing of it:
    outside ``kept_reads`` nothing is kept, and a new block forgets what was kept."""
    project_id = create(store, "shared")
    other = Store(store.url)
    try:
        with store.kept_reads():
            assert store.runs(project_id) == []
        run_id = add_run(other, project_id, StageRunState.PENDING)
        assert [r.id for r in store.runs(project_id)] == [run_id]
        with store.kept_reads():
            assert [r.id for r in store.runs(project_id)] == [run_id]
            with other.project_transaction(project_id) as tx:
                tx.update_project(state_reason="moved elsewhere")
        with store.kept_reads():
            assert store.get_project(project_id).state_reason == "moved elsewhere"
    finally:
        other.close()
