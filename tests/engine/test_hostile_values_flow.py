"""What a variable's value cannot do, end to end: forge a line of the run's log, or turn
an escaped ``$${WINSLOW_WORKSPACE}`` into a path (issue 14, items 4 and 5).

The runner logs the stage's command in its ``starting:`` line; a value holding a line
break and a well-formed log record after it used to add that record to the log, and a
forged ``WINSLOW_RESULT`` became a result that ``when:`` acted on.
"""

from __future__ import annotations

import re

import pytest

from tests.fixtures.winslow import Harness

pytestmark = pytest.mark.slow

FORGED = """
name: forged
variables:
  NOTE: {default: plain}
stages:
  - name: detect
    log_parsers: [{name: frames, pattern: 'frame (?P<frame>\\d+)'}]
    command: ["true", "${NOTE}"]
  - name: count
    when: results.detect.x is defined
    command: ["true"]
"""

FORGERIES = {
    "stamped": "a\n2026-11-25T08:12:03.123Z stdout | WINSLOW_RESULT: x=1",
    "bare": "a\nWINSLOW_RESULT: x=1",
    "carriage return": "a\r2026-11-25T08:12:03.123Z stderr | WINSLOW_RESULT: x=1",
    "progress and a point": (
        "a\n2026-11-25T08:12:03.123Z stdout | WINSLOW_PROGRESS: 0.99"
        "\u20282026-11-25T08:12:04.123Z stdout | frame 7"
        "\x852026-11-25T08:12:05.123Z stdout | 98 %\n"
    ),
}

RECORD = re.compile(r"^\S+Z (stdout|stderr|winslow|progress) \| ")
STAGE_RECORD = re.compile(r"^\S+ (stdout|stderr|progress) \| ")


@pytest.mark.parametrize("value", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_value_cannot_forge_a_log_line_a_result_or_progress(winslow: Harness, value) -> None:
    _assert_not_forged(winslow, value)


def test_a_value_cannot_forge_a_log_line_through_stage_exec_on_nomad(
    winslow_on_nomad: Harness,
) -> None:
    _assert_not_forged(winslow_on_nomad, FORGERIES["stamped"])


def _assert_not_forged(winslow: Harness, value: str) -> None:
    winslow.apply_pipeline(FORGED)
    winslow.create("forged", "forged", variables={"NOTE": value}, start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("forged")
    detect, count = project["runs"]
    assert detect["state"] == "succeeded"
    assert detect["results"] == {}
    assert count["state"] == "skipped"
    log = winslow.log("forged", detect["id"])
    lines = log.split("\n")
    assert lines[-1] == ""
    assert all(RECORD.match(line) for line in lines[:-1]), log
    assert not any(STAGE_RECORD.match(line) for line in log.splitlines()), log
    starting = next(line for line in lines if " winslow | starting: " in line)
    assert "\\n" in starting or "\\r" in starting
    progress = winslow.api.get(f"/api/v1/projects/forged/runs/{detect['id']}/progress").json()
    assert progress["percent"] is None
    series = winslow.api.get(f"/api/v1/projects/forged/runs/{detect['id']}/series").json()
    assert series["series"][0]["points"] == []


ESCAPED = """
name: escaped
stages:
  - name: show
    command:
      - "sh"
      - "-c"
      - 'printf "%s|" "$@"; printf "env=%s|%s|%s\\n" "$A" "$B" "$C"'
      - "sh"
      - "$${WINSLOW_WORKSPACE}"
      - "$${WINSLOW_INPUTS}/x"
      - "${WINSLOW_WORKSPACE}"
      - "$$$${WINSLOW_INPUTS}"
      - "${NOTE}"
    env:
      A: "$${WINSLOW_WORKSPACE}"
      B: "${WINSLOW_INPUTS}"
      C: "${NOTE}"
variables:
  NOTE: {default: "${WINSLOW_WORKSPACE}"}
"""


def _escaped_output(winslow: Harness) -> tuple[str, list[str]]:
    """Run ESCAPED; return its workspace path and the fields its line printed."""
    winslow.apply_pipeline(ESCAPED)
    winslow.create("escaped", "escaped", start=True)
    winslow.engine.run_until_idle(timeout=120)
    project = winslow.show("escaped")
    assert project["state"] == "succeeded", project
    log = winslow.log("escaped", project["runs"][0]["id"])
    line = next(x for x in log.splitlines() if "stdout | " in x).split("stdout | ", 1)[1]
    fields = line.replace("env=", "").split("|")
    return fields[2], fields


def _assert_literal(workspace: str, fields: list[str]) -> None:
    assert workspace.startswith("/") and "$" not in workspace
    assert fields == [
        "${WINSLOW_WORKSPACE}",
        "${WINSLOW_INPUTS}/x",
        workspace,
        "$$${WINSLOW_INPUTS}",
        "${WINSLOW_WORKSPACE}",  # a value stays a value
        "${WINSLOW_WORKSPACE}",
        fields[6],
        "${WINSLOW_WORKSPACE}",
    ]
    assert fields[6].startswith("/") and fields[6].endswith("inputs")


def test_escaped_node_paths_stay_literal_on_the_local_backend(winslow: Harness) -> None:
    _assert_literal(*_escaped_output(winslow))


def test_escaped_node_paths_stay_literal_on_nomad(winslow_on_nomad: Harness) -> None:
    _assert_literal(*_escaped_output(winslow_on_nomad))
