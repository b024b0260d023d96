"""The audit trail in the store, on SQLite and on PostgreSQL: what an entry keeps, the
history line a command that wrote none gets, how the trail is filtered and paged, and
how a project named in a path is found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.store.audit import (
    ADDRESS_CHARS,
    COMMAND_EVENT,
    Command,
    list_audit,
    project_id_of,
    record,
)
from winslow.store.repo import Store

pytestmark = ON_BOTH_DATABASES

PIPELINE = {"name": "p", "stages": [{"name": "detect", "command": ["true"]}]}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def create(store: Store, name: str) -> str:
    return store.create_project(
        name=name, pipeline_name="p", pipeline=PIPELINE, labels=(), variables={}, actor="ana"
    ).id


def command(
    actor: str = "ana", project_id: str | None = None, status: int = 200, **fields
) -> Command:
    fields.setdefault("summary", f"{actor} asked")
    return Command(
        actor=actor,
        via=fields.pop("via", "token:laptop"),
        address=fields.pop("address", "10.0.0.7"),
        method=fields.pop("method", "POST"),
        path=fields.pop("path", "/api/v1/projects"),
        operation=fields.pop("operation", "start_project"),
        status=status,
        project_id=project_id,
        **fields,
    )


def test_an_entry_reads_back_as_recorded_with_its_time_in_utc(store: Store) -> None:
    project_id = create(store, "ulm")
    made = record(
        store,
        command(
            project_id=project_id,
            status=409,
            summary="start refused",
            changes={"variables": {"INPUT": "a.mp4"}, "token": "***"},
            request="r-1",
        ),
        at=T0,
    )
    [read] = list_audit(store)
    assert read == made
    assert (read.at, read.actor, read.via, read.address, read.method, read.status) == (
        T0,
        "ana",
        "token:laptop",
        "10.0.0.7",
        "POST",
        409,
    )
    assert (read.path, read.operation, read.project_id, read.summary, read.request) == (
        "/api/v1/projects",
        "start_project",
        project_id,
        "start refused",
        "r-1",
    )
    assert read.changes == {"variables": {"INPUT": "a.mp4"}, "token": "***"}
    assert read.at.utcoffset() == timedelta(0)
    # Not asked to, so the trail alone keeps the command: the history still has one line.
    assert [e.kind for e in store.history(project_id)] == ["create"]


def test_an_entry_keeps_the_instant_it_was_given_in_any_time_zone(store: Store) -> None:
    in_berlin = T0.astimezone(timezone(timedelta(hours=2)))
    record(store, command(summary="from Berlin"), at=in_berlin)
    [read] = list_audit(store)
    assert read.at == T0 and read.at.utcoffset() == timedelta(0)
    assert [e.summary for e in list_audit(store, since=T0 + timedelta(seconds=1))] == []


def test_overlong_words_are_cut_to_their_columns_and_a_long_path_is_kept_whole(
    store: Store,
) -> None:
    # PostgreSQL refuses a value longer than its column; SQLite would keep it whole.
    path = "/api/v1/projects?" + "q" * 3000
    entry = record(
        store,
        command(
            actor="a" * 150,
            via="v" * 200,
            address="1" * 100,
            method="PROPPATCHES",
            path=path,
            operation="o" * 300,
            request="r" * 40,
        ),
    )
    [read] = list_audit(store)
    assert read == entry
    assert (len(read.actor), len(read.via), len(read.address)) == (100, 140, ADDRESS_CHARS)
    assert (read.method, len(read.operation), len(read.request)) == ("PROPPATCHE", 200, 32)
    assert read.path == path


def test_a_command_that_wrote_no_history_gets_one_line_saying_where_it_came_from(
    store: Store,
) -> None:
    project_id = create(store, "ulm")
    version = store.get_project(project_id).version
    record(
        store,
        command(
            project_id=project_id,
            summary="uploaded 3 files to workspace 'in'",
            operation="upload_files",
            request="r-7",
        ),
        in_history=True,
    )
    line = store.history(project_id)[-1]
    assert (line.actor, line.kind, line.message) == (
        "ana",
        COMMAND_EVENT,
        "uploaded 3 files to workspace 'in'",
    )
    assert line.data == {
        "operation": "upload_files",
        "status": 200,
        "origin": {"address": "10.0.0.7", "via": "token:laptop", "request": "r-7"},
    }
    assert store.get_project(project_id).version == version  # a history line only


def test_the_trail_keeps_a_command_on_a_project_that_is_gone(store: Store) -> None:
    project_id = create(store, "ulm")
    with store.project_transaction(project_id) as tx:
        tx.delete_project()
    record(store, command(project_id=project_id, summary="deleted ulm"), in_history=True)
    record(store, command(summary="listed projects"), in_history=True)
    assert [e.summary for e in list_audit(store)] == ["listed projects", "deleted ulm"]
    assert store.history(project_id) == []


def test_the_trail_reads_newest_first_by_actor_project_and_time(store: Store) -> None:
    ulm, berlin = create(store, "ulm"), create(store, "berlin")
    for minute, (actor, project_id) in enumerate(
        [("ana", ulm), ("ben", ulm), ("ana", berlin), ("ana", None), ("ben", berlin)]
    ):
        record(
            store,
            command(actor, project_id, summary=f"at {minute}"),
            at=T0 + timedelta(minutes=minute),
        )

    def summaries(**filters) -> list[str]:
        return [e.summary for e in list_audit(store, **filters)]

    assert summaries() == ["at 4", "at 3", "at 2", "at 1", "at 0"]
    assert summaries(actor="ana") == ["at 3", "at 2", "at 0"]
    assert summaries(project_id=ulm) == ["at 1", "at 0"]
    assert summaries(actor="ben", project_id=berlin) == ["at 4"]
    assert summaries(since=T0 + timedelta(minutes=2)) == ["at 4", "at 3", "at 2"]
    # The same instant written in Berlin's summer time: instants compare, not the words.
    berlin_time = (T0 + timedelta(minutes=3)).astimezone(timezone(timedelta(hours=2)))
    assert summaries(since=berlin_time) == ["at 4", "at 3"]
    assert summaries(actor="carl") == []


def test_the_trail_pages_with_the_last_id_of_the_page_before(store: Store) -> None:
    for number in range(9):
        actor = "ben" if number % 3 == 0 else "ana"
        record(store, command(actor, summary=f"command {number}"), at=T0)

    def pages(**filters) -> list[list[str]]:
        found: list[list[str]] = []
        before: int | None = None
        while page := list_audit(store, before_id=before, limit=3, **filters):
            found.append([e.summary for e in page])
            before = page[-1].id
        return found

    assert pages() == [
        ["command 8", "command 7", "command 6"],
        ["command 5", "command 4", "command 3"],
        ["command 2", "command 1", "command 0"],
    ]
    assert pages(actor="ana") == [
        ["command 8", "command 7", "command 5"],
        ["command 4", "command 2", "command 1"],
    ]


def test_a_project_is_found_by_id_or_name_and_an_id_beats_a_name(store: Store) -> None:
    ulm = create(store, "ulm")
    assert project_id_of(store, ulm) == ulm
    assert project_id_of(store, "ulm") == ulm
    assert project_id_of(store, "berlin") is None
    # Another project may carry this one's id as its name; the path meant the id.
    named_like_ulm = create(store, ulm)
    assert project_id_of(store, ulm) == ulm
    assert named_like_ulm != ulm
