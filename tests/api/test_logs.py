"""A run's log through the API: the end of a huge log first, pages before it, the whole file."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.winslow import Harness
from winslow.storage.keys import log_key

pytestmark = pytest.mark.slow

CHATTY = """
name: chatty
stages:
  - name: talk
    command: ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"]
"""


@pytest.fixture
def ended_run(winslow: Harness) -> dict:
    winslow.apply_pipeline(CHATTY)
    winslow.create("chatty", "chatty", start=True)
    winslow.engine.run_until_idle()
    run = winslow.show("chatty")["runs"][0]
    assert run["state"] == "succeeded"
    return run


def logs(winslow: Harness, run: dict, **params) -> httpx.Response:
    response = winslow.api.get(f"/api/v1/projects/chatty/runs/{run['id']}/logs", params=params)
    assert response.status_code in (200, 307), response.text
    return response


def test_tail_gives_the_end_in_whole_lines_and_pages_go_back(winslow: Harness, ended_run) -> None:
    whole = logs(winslow, ended_run).text
    tail = logs(winslow, ended_run, tail=2000)
    start, end = int(tail.headers["x-log-start"]), int(tail.headers["x-log-offset"])
    assert end == len(whole.encode()) and 0 < start < end
    assert end - start <= 2000
    assert whole.encode()[start:end].decode() == tail.text
    assert whole.encode()[start - 1 : start] == b"\n"  # begins at a line start
    assert "stdout | line 2999\n" in tail.text
    assert tail.text.endswith("winslow | succeeded\n")

    before = logs(winslow, ended_run, offset=max(0, start - 1000), limit=1000)
    assert before.headers["x-log-offset"] == str(start)
    assert whole.encode()[start - 1000 : start].decode() == before.text


def test_download_is_the_whole_log_with_a_file_name(winslow: Harness, ended_run) -> None:
    whole = logs(winslow, ended_run).text
    # Live from the node until the runner has archived it, then from object storage.
    key = log_key(winslow.show("chatty")["id"], ended_run["id"])
    deadline = time.monotonic() + 30
    while not winslow.context.objects.exists(key):
        assert time.monotonic() < deadline, "the log was never archived"
        time.sleep(0.1)
    redirect = winslow.api.get(
        f"/api/v1/projects/chatty/runs/{ended_run['id']}/logs",
        params={"download": "true"},
        follow_redirects=False,
    )
    assert redirect.status_code == 307
    fetched = httpx.get(redirect.headers["location"])
    assert fetched.text == whole
    assert f"chatty-talk-run{ended_run['id']}.log" in fetched.headers["content-disposition"]


def test_tail_of_a_live_log_reads_only_its_end(winslow: Harness) -> None:
    winslow.apply_pipeline(
        CHATTY.replace("name: chatty", "name: live").replace('done"]', 'done; sleep 30"]')
    )
    winslow.create("live", "live", start=True)
    run = winslow.wait_until_running("live")
    url = f"/api/v1/projects/live/runs/{run['id']}/logs"
    deadline = time.monotonic() + 30
    while "line 2999" not in winslow.api.get(url, params={"tail": 500}).text:
        assert time.monotonic() < deadline, "the stage never printed its last line"
        time.sleep(0.2)
    tail = winslow.api.get(url, params={"tail": 500})
    whole = winslow.api.get(url).content
    start = int(tail.headers["x-log-start"])
    assert tail.headers["x-run-state"] == "running"
    assert whole[start : int(tail.headers["x-log-offset"])] == tail.content
    assert whole[start - 1 : start] == b"\n" and len(tail.content) <= 500
    winslow.command("live", "kill")
    winslow.engine.run_until_idle()
