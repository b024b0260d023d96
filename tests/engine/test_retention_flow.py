"""Workspace retention end to end: redone stages lose their old workspaces, gc frees
what no manifest names any more, the latest run keeps everything it uses."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.fixtures.winslow import Harness
from tests.fixtures.workspaces import read_workspace
from winslow.storage import gc, workspaces
from winslow.store.tables import Base

pytestmark = pytest.mark.slow

KEEP_ONE = """
name: keep-one
retention: {keep_succeeded: 1}
stages:
  - name: render
    command: ["sh", "-c", "echo shared > shared.txt; echo run ${WINSLOW_RUN} > own.txt"]
"""

KEEP_ALL = """
name: keep-all
stages:
  - name: render
    command: ["sh", "-c", "echo run ${WINSLOW_RUN} > own.txt"]
"""


def redo(winslow: Harness, project: str, times: int) -> None:
    for _ in range(times):
        winslow.command(project, "resume", {"from_stage": "render"})
        winslow.engine.run_until_idle()


def manifests(winslow: Harness, run: dict) -> list:
    return winslow.context.objects.list(run["workspace"], recursive=True)


def test_redone_stage_keeps_only_the_latest_workspace_and_gc_frees_the_rest(
    winslow: Harness,
) -> None:
    objects = winslow.context.objects
    winslow.apply_pipeline(KEEP_ONE)
    winslow.create("ulm-0603", "keep-one", start=True)
    winslow.engine.run_until_idle()
    first = winslow.show("ulm-0603")["runs"][0]
    own_blob_of_first = (
        workspaces.read_version(objects, first["workspace"]).manifest.files["own.txt"].blob
    )

    redo(winslow, "ulm-0603", 3)

    project = winslow.show("ulm-0603")
    runs = project["runs"]
    assert [(r["state"], r["superseded"], r["workspace_pruned"]) for r in runs] == [
        ("succeeded", True, True),
        ("succeeded", True, True),
        ("succeeded", True, True),
        ("succeeded", False, False),
    ]
    for old in runs[:3]:
        assert manifests(winslow, old) == []
    latest = runs[3]
    assert read_workspace(objects, latest["workspace"]) == {
        "shared.txt": b"shared\n",
        "own.txt": f"run {latest['id']}\n".encode(),
    }
    history = [
        e["message"] for e in winslow.api.get("/api/v1/projects/ulm-0603/history").json()["data"]
    ]
    pruned = [m for m in history if m.startswith("pruned")]
    assert pruned == [
        f"pruned the workspace of run {r['id']} (retention: keep the latest 1 succeeded)"
        for r in runs[:3]
    ]

    report = gc.collect(objects, dry_run=False, grace_seconds=0)

    assert report.removed == 3  # each old run's own.txt; shared.txt is the latest's too
    assert not objects.exists(own_blob_of_first)
    assert read_workspace(objects, latest["workspace"]) == {
        "shared.txt": b"shared\n",
        "own.txt": f"run {latest['id']}\n".encode(),
    }


def test_workspace_of_a_pruned_run_says_it_was_pruned(winslow: Harness) -> None:
    winslow.apply_pipeline(KEEP_ONE)
    winslow.create("ulm-0603", "keep-one", start=True)
    winslow.engine.run_until_idle()
    redo(winslow, "ulm-0603", 1)
    old, latest = winslow.show("ulm-0603")["runs"]

    response = winslow.api.get(f"/api/v1/projects/ulm-0603/workspace?run={old['id']}")

    assert response.status_code == 404
    assert response.json()["detail"] == (
        f"Run {old['id']}'s workspace was pruned by the retention policy; the stage's current "
        "and latest runs keep theirs (`winslow project show` lists the runs)."
    )
    shown = winslow.api.get("/api/v1/projects/ulm-0603/workspace").json()
    assert shown["run"] == latest["id"]
    assert {f["path"] for f in shown["data"]} == {"shared.txt", "own.txt"}


def test_project_retention_set_by_patch_wins_over_the_pipelines(winslow: Harness) -> None:
    winslow.apply_pipeline(KEEP_ALL)
    winslow.create("ulm-0603", "keep-all", start=True)
    winslow.create("ulm-0604", "keep-all", start=True)
    winslow.engine.run_until_idle()

    response = winslow.api.patch(
        "/api/v1/projects/ulm-0603",
        json={"retention": {"keep_succeeded": 1, "keep_failed": False}},
    )

    assert response.status_code == 200, response.text
    assert response.json()["retention"] == {"keep_succeeded": 1, "keep_failed": False}
    redo(winslow, "ulm-0603", 1)
    redo(winslow, "ulm-0604", 1)
    assert [r["workspace_pruned"] for r in winslow.show("ulm-0603")["runs"]] == [True, False]
    assert [r["workspace_pruned"] for r in winslow.show("ulm-0604")["runs"]] == [False, False]
    assert winslow.show("ulm-0604")["retention"] is None  # the other project is untouched

    # A PATCH that leaves retention out keeps it; null clears it.
    winslow.api.patch("/api/v1/projects/ulm-0603", json={"labels_add": ["ulm"]})
    assert winslow.show("ulm-0603")["retention"] == {"keep_succeeded": 1, "keep_failed": False}
    cleared = winslow.api.patch("/api/v1/projects/ulm-0603", json={"retention": None})
    assert cleared.json()["retention"] is None
    history = [
        (e["actor"], e["message"])
        for e in winslow.api.get("/api/v1/projects/ulm-0603/history").json()["data"]
        if e["kind"] == "retention"
    ]
    first_run = winslow.show("ulm-0603")["runs"][0]["id"]
    assert history == [
        (
            "tester",
            "retention: keep the latest 1 succeeded, drop failed (wins over the pipeline's)",
        ),
        (
            "engine",
            f"pruned the workspace of run {first_run} (retention: keep the latest 1 "
            "succeeded, drop failed)",
        ),
        ("tester", "retention: the pipeline's from now on"),
    ]


def test_bad_project_retention_is_refused(winslow: Harness) -> None:
    winslow.apply_pipeline(KEEP_ALL)
    winslow.create("ulm-0603", "keep-all")

    response = winslow.api.patch(
        "/api/v1/projects/ulm-0603", json={"retention": {"keep_succeeded": -1}}
    )

    assert response.status_code == 422
    assert winslow.show("ulm-0603")["retention"] is None


def test_retention_columns_match_their_migration(winslow: Harness) -> None:
    with winslow.context.store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "retention" in str(d) or "workspace_pruned" in str(d)] == []


def test_project_retention_from_the_cli(winslow_server, tmp_path) -> None:
    server = winslow_server
    (tmp_path / "p.yaml").write_text(KEEP_ALL)
    server.cli("pipeline", "apply", str(tmp_path / "p.yaml"))
    server.cli("project", "create", "ulm-0603", "--pipeline", "keep-all")

    assert server.json("project", "retention", "ulm-0603") is None
    assert server.json(
        "project", "retention", "ulm-0603", "--keep-succeeded", "2", "--drop-failed"
    ) == {"keep_succeeded": 2, "keep_failed": False}
    shown = server.cli("project", "retention", "ulm-0603").stdout
    assert shown.strip() == "retention: keep the latest 2 succeeded, drop failed"
    assert server.json("project", "retention", "ulm-0603", "--clear") is None
    assert server.cli("project", "retention", "ulm-0603").stdout.strip() == (
        "retention: the pipeline's (and its stages')"
    )

    both = server.cli("project", "retention", "ulm-0603", "--clear", "--drop-failed", check=False)
    assert both.returncode == 2
    words = " ".join(both.stderr.replace("│", " ").split())
    assert (
        "Invalid value for --clear: --clear cannot go with --keep-succeeded or --drop-failed"
        in words
    )
