"""Where the engine reads an ended run's results: on the local backend, from the node's
log (a file), not from storage, where the runner archives the log after the end."""

from __future__ import annotations

from typing import Any

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
    winslow.apply_pipeline(PIPELINE)
    winslow.create("p", "reporting")
    winslow.command("p", "start")
    winslow.engine.run_until_idle()

    project = winslow.show("p")
    assert project["state"] == "succeeded", project
    measure = next(r for r in project["runs"] if r["stage"] == "measure")
    assert measure["results"] == {"speed": 42.5}
    series = winslow.api.get(f"/api/v1/projects/p/runs/{measure['id']}/series").json()
    assert [p["values"] for p in series["series"][0]["points"]] == [{"value": 42.5}]
    assert asked == []  # the engine read neither run's log from storage
