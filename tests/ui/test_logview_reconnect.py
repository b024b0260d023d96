"""The log viewer's live stream breaks off and the browser's own EventSource opens it
again: the server goes on after the ``Last-Event-ID`` it sends, so no line repeats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.server import Server
from tests.ui.test_logview_files import LINE_TEXTS, api_get, mount, run_of, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TICKING = """
name: ticking
stages:
  - name: tick
    command: ["sh", "-c", "for i in $(seq 1 60); do echo tick $i; sleep 0.4; done"]
"""


def test_a_broken_log_stream_resumes_after_its_last_event_without_repeats(
    page, console: Server, tmp_path
) -> None:
    (tmp_path / "ticking.yaml").write_text(TICKING)
    console.cli("pipeline", "apply", str(tmp_path / "ticking.yaml"))
    console.cli("project", "create", "ticking", "--pipeline", "ticking", "--start")

    def started() -> dict[str, Any] | None:
        runs = console.json("project", "show", "ticking")["runs"]
        return runs[-1] if runs and runs[-1]["state"] == "running" else None

    run = wait_until(started, what="the stage to start")
    logs = f"/projects/ticking/runs/{run['id']}/logs"
    wait_until(lambda: "tick 3" in api_get(console, logs).text, what="the first ticks")
    asked: list[dict[str, str]] = []

    def stream(route: Any) -> None:
        asked.append(route.request.all_headers())
        if len(asked) > 1:
            route.continue_()
            return
        # The first stream hands over a few lines with their id, then breaks off.
        offset = int(route.request.url.rsplit("offset=", 1)[1])
        text = wait_until(
            lambda: (t := api_get(console, logs, offset=offset).text).count("\n") >= 2 and t,
            what="two new lines",
        )
        complete = text[: text.rindex("\n")]
        end = offset + len(complete.encode()) + 1
        data = json.dumps({"offset": end, "lines": complete.split("\n")})
        route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
            body=f"retry: 200\n\nevent: log\nid: {end}\ndata: {data}\n\n",
        )

    page.route("**/logs/stream*", stream)
    mount(page, "logview.js", "mountLogViewer", "ticking", "logview.css")
    page.evaluate("(run) => window.panel.show(run)", run)
    page.get_by_text("ended, exit code 0").wait_for(timeout=60_000)

    assert len(asked) == 2, "the browser did not open the broken stream again (once)"
    assert len(asked) == 2, "the browser did not open the broken stream again (once)"
    # Had the server not gone on after the Last-Event-ID (Playwright does not show that
    # header), the lines of the first stream would come again.
    ticks = [text for text in page.evaluate(LINE_TEXTS) if text.startswith("tick ")]
    assert ticks == [f"tick {n}" for n in range(1, 61)]
    assert run_of(console, "ticking", "tick")["state"] == "succeeded"
