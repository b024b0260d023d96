"""Where the engine reads an ended run's results: on the local backend, from the node's
log (a file), not from storage, where the runner archives the log after the end."""

from __future__ import annotations

from typing import Any

import yaml

from tests.fixtures.winslow import Harness

PIPELINE = """
name: reporting
stages:
  - name: measure
    command: ["sh", "-c", "echo 'WINSLOW_RESULT: speed=42.5'; echo done"]
    log_parsers:
      - {name: speed, pattern: 'speed=(?P<value>[0-9.]+)'}
  - name: report
    command: ["sh", "-c", "echo reported"]
"""


def run_to_the_end(winslow: Harness, pipeline: str) -> dict[str, Any]:
    """Run a project ``p`` of ``pipeline`` to its end; return it as the API shows it."""
    winslow.apply_pipeline(pipeline)
    winslow.create("p", yaml.safe_load(pipeline)["name"])
    winslow.command("p", "start")
    winslow.engine.run_until_idle()
    project: dict[str, Any] = winslow.show("p")
    assert project["state"] == "succeeded", project
    return project


def test_results_and_series_come_from_the_node_log_without_asking_storage(
    winslow: Harness, object_store: Any
) -> None:
    """Issue 17: every stage's end cost a storage request for a log not archived yet
    (and a 404), on the path from one stage's end to the next one's start."""
    asked: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        key = str(params.get("Key", ""))
        if key.endswith(".log") or "/logs/" in key:
            asked.append(key)

    object_store.client.meta.events.register("provide-client-params.s3.GetObject", note)
    object_store.client.meta.events.register("provide-client-params.s3.HeadObject", note)
    project = run_to_the_end(winslow, PIPELINE)
    measure = next(r for r in project["runs"] if r["stage"] == "measure")
    assert measure["results"] == {"speed": 42.5}
    series = winslow.api.get(f"/api/v1/projects/p/runs/{measure['id']}/series").json()
    assert [p["values"] for p in series["series"][0]["points"]] == [{"value": 42.5}]
    assert asked == []  # the engine read neither run's log from storage


FILES_PIPELINE = """
name: files
stages:
  - name: quiet
    command: ["sh", "-c", "echo 1 > frames.txt"]
  - name: scores
    workspace: fresh  # nothing carried over, so nothing of quiet's is compared
    command:
      - sh
      - -c
      - |
        echo '{"mAP": 0.61}' > results.json
"""


def test_storage_is_searched_for_results_json_only_where_the_stage_left_one(
    winslow: Harness, object_store: Any
) -> None:
    """Issue 17: every run's end listed its workspace's versions and read its manifest,
    also for the many stages that write no results.json; the runner now says whether
    one was left, and only then is storage read."""
    listed: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        listed.append(str(params.get("Prefix", "")))

    object_store.client.meta.events.register("provide-client-params.s3.ListObjectsV2", note)
    project = run_to_the_end(winslow, FILES_PIPELINE)
    runs = {r["stage"]: r for r in project["runs"]}
    assert runs["scores"]["results"] == {"mAP": 0.61}
    assert runs["quiet"]["results"] == {}
    manifests = [prefix for prefix in listed if prefix.endswith("/manifests/")]
    assert manifests, "the stage that left a results.json had its workspace read"
    quiet = f"/{runs['quiet']['id']}/"
    assert not [prefix for prefix in manifests if quiet in prefix], manifests
