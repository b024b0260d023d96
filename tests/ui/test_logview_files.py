"""The project page's log viewer and workspace file browser, in a real browser.

The modules are mounted on a page of the console (``/nodes``): a container and an
``import()`` of the module from the same origin, then driven as the project page drives
them (``show(run)``, ``show(run, projectState)``).
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import Server
from tests.ui.conftest import admin_token, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UPLOAD_JS = Path(__file__).resolve().parents[2] / "winslow" / "ui" / "static" / "js" / "upload.js"

CHATTY = """
name: chatty
stages:
  - name: hello
    command: ["sh", "-c", "echo hello from the first stage"]
  - name: talk
    command:
      - sh
      - -c
      - >-
        seq -f 'line %g' 1 50000; sleep 6;
        for i in $(seq 1 40); do echo tick $i; echo warn $i >&2; sleep 0.25; done
"""

FILES = """
name: files-demo
stages:
  - name: make
    command:
      - sh
      - -c
      - >-
        mkdir -p out/deep && printf 'a,b\\n1,2\\n' > out/table.csv
        && head -c 300000 /dev/urandom > out/blob.bin && echo nested > out/deep/n.txt
        && echo 'threshold: 0.5' > params.yaml && ln -s out/table.csv latest.csv
  - name: use
    gate: true
    command: ["sh", "-c", "sleep 30"]
"""

MOUNT = """async ([module, factory, project, css]) => {
  for (const href of css) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.append(link);
  }
  const box = document.createElement("div");
  box.id = "panel";
  document.querySelector("main").replaceChildren(box);
  const loaded = await import(module);
  window.panel = loaded[factory](box, { project });
}"""

LINE_TEXTS = (
    "() => [...document.querySelectorAll('#panel .logview-text')].map((e) => e.textContent)"
)
SHOWN_TEXTS = (
    "() => [...document.querySelectorAll('#panel .logview-line')]"
    ".filter((e) => !e.hidden).map((e) => e.querySelector('.logview-text').textContent)"
)
IN_VIEW = """(text) => {
  const box = document.querySelector('#panel .logview-lines').getBoundingClientRect();
  const row = [...document.querySelectorAll('#panel .logview-line')]
    .find((e) => e.querySelector('.logview-text').textContent === text);
  if (!row) return false;
  const r = row.getBoundingClientRect();
  return r.bottom > box.top && r.top < box.bottom;
}"""
SCROLL_TOP = "() => document.querySelector('#panel .logview-lines').scrollTop"


def mount(page, module: str, factory: str, project: str, css: str) -> None:
    page.goto("/nodes")
    page.evaluate(MOUNT, [f"/static/js/{module}", factory, project, [f"/static/{css}"]])


def api_get(console: Server, endpoint: str, **params: Any) -> httpx.Response:
    return httpx.get(
        console.addr + "/api/v1" + endpoint,
        params=params,
        headers={"Authorization": f"Bearer {admin_token(console)}"},
        follow_redirects=True,
        timeout=30,
    )


def run_of(console: Server, project: str, stage: str) -> dict[str, Any]:
    runs = console.json("project", "show", project)["runs"]
    return [r for r in runs if r["stage"] == stage][-1]


def wait_until(check, timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _settled(page):
    """A check returning the log's scroll position once it stopped moving (smooth scrolling)."""
    seen: list[float] = []

    def check() -> float | None:
        seen.append(page.evaluate(SCROLL_TOP))
        return seen[-1] if len(seen) > 1 and seen[-1] == seen[-2] and seen[-1] > 0 else None

    return check


def test_log_viewer_shows_the_end_first_follows_live_filters_and_downloads(
    page, console, tmp_path
) -> None:
    pipeline = tmp_path / "chatty.yaml"
    pipeline.write_text(CHATTY)
    console.cli("pipeline", "apply", str(pipeline))
    console.cli("project", "create", "chatty", "--pipeline", "chatty", "--start")

    # Mounted while 'talk' has written its 50,000 lines and sleeps before the ticks.
    def talk_ready() -> dict[str, Any] | None:
        runs = [
            r for r in console.json("project", "show", "chatty")["runs"] if r["stage"] == "talk"
        ]
        if not runs or runs[-1]["state"] != "running":
            return None
        tail = api_get(console, f"/projects/chatty/runs/{runs[-1]['id']}/logs", tail=200)
        return runs[-1] if "line 50000" in tail.text else None

    talk = wait_until(talk_ready, what="stage 'talk' to print its lines")
    mount(page, "logview.js", "mountLogViewer", "chatty", "logview.css")
    page.evaluate("(run) => window.panel.show(run)", talk)
    lines = page.locator("#panel .logview-lines")

    # The end first: the last line in view, the first not even on the page.
    page.wait_for_function(IN_VIEW, arg="line 50000")
    texts = page.evaluate(LINE_TEXTS)
    assert "line 1" not in texts
    assert len(texts) <= 5000
    numbered = [t for t in texts if t.startswith("line ")]
    assert numbered[-1] == "line 50000"  # ticks may follow it already
    assert page.get_by_role("button", name="Load earlier").is_visible()
    assert "older lines were dropped" in page.locator("#panel .logview-head").inner_text()

    # A live line arrives and is followed into view.
    page.wait_for_function(IN_VIEW, arg="tick 2", timeout=20_000)
    assert "live, following" in page.locator("#panel .logview-live").inner_text()
    follow = page.locator("#panel .logview-follow")
    assert follow.is_hidden()

    # Scrolling up stops following: new lines come in without moving the view.
    lines.hover()
    page.mouse.wheel(0, -4000)
    follow.wait_for(state="visible")
    top = wait_until(_settled(page), timeout=5, what="the scrolling to settle")
    page.wait_for_function(
        "() => /new lines/.test(document.querySelector('#panel .logview-follow').textContent)",
        timeout=10_000,
    )
    assert page.evaluate(SCROLL_TOP) == top
    assert "live, paused" in page.locator("#panel .logview-live").inner_text()
    unseen = int(re.search(r"(\d+) new lines", follow.inner_text()).group(1))  # type: ignore[union-attr]
    assert unseen >= 1

    # "Follow" goes back to the end and keeps following.
    follow.click()
    follow.wait_for(state="hidden")
    newest = max(int(t.split()[1]) for t in page.evaluate(LINE_TEXTS) if t.startswith("tick "))
    page.wait_for_function(IN_VIEW, arg=f"tick {newest + 2}", timeout=10_000)
    screenshot(page, "log-viewer")

    # The filter shows only matching lines; the stream boxes narrow it further.
    page.get_by_label("Filter").fill("warn 1")
    shown = page.evaluate(SHOWN_TEXTS)
    assert shown and all("warn 1" in t for t in shown)
    assert "match" in page.locator("#panel .logview-count").inner_text()
    page.get_by_label("Filter").fill("")
    page.get_by_label("stderr").uncheck()
    shown = page.evaluate(SHOWN_TEXTS)
    assert any(t.startswith("tick ") for t in shown)
    assert not any(t.startswith("warn ") for t in shown)
    page.get_by_label("stderr").check()

    # The run ends; the stream says so.
    page.locator("#panel .logview-live").get_by_text("ended, exit code 0").wait_for(timeout=30_000)
    texts = page.evaluate(LINE_TEXTS)
    assert "tick 40" in texts and "warn 40" in texts

    # Download gives the whole log, as the CLI prints it.
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download whole log of run")).click()
    downloaded = Path(download_info.value.path()).read_text()
    whole = console.cli("logs", "chatty", "--stage", "talk").stdout
    assert downloaded == whole
    assert "line 1\n" in downloaded and downloaded.count("\n") > 50_080

    # "Load earlier" pages back to the very first line, without gaps or repeats.
    earlier = page.get_by_role("button", name="Load earlier")
    for _ in range(40):
        if not earlier.is_visible():
            break
        earlier.click()
        page.wait_for_function(
            "() => !document.querySelector('#panel .logview-head button').disabled"
        )
    texts = page.evaluate(LINE_TEXTS)
    assert "line 1" in texts
    numbered = [t for t in texts if t.startswith("line ")]
    assert numbered == [f"line {n}" for n in range(1, len(numbered) + 1)]
    assert len(texts) <= 5000
    assert "Start of the log" in page.locator("#panel .logview-head").inner_text()

    # Another run: the viewer switches to it.
    page.evaluate("(run) => window.panel.show(run)", run_of(console, "chatty", "hello"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#panel .logview-text')]"
        ".some((e) => e.textContent === 'hello from the first stage')"
    )
    assert not any(t.startswith("line ") for t in page.evaluate(LINE_TEXTS))


def _start_files_project(console: Server, tmp_path: Path, name: str) -> dict[str, Any]:
    pipeline = tmp_path / "files.yaml"
    pipeline.write_text(FILES)
    console.cli("pipeline", "apply", str(pipeline))
    console.cli("project", "create", name, "--pipeline", "files-demo", "--start")
    console.wait_for(name, {"awaiting_input"})
    return run_of(console, name, "make")


def _names(page) -> list[str]:
    return [
        " ".join(cell.split())
        for cell in page.locator("#panel tbody td.files-name").all_inner_texts()
    ]


def test_file_browser_browses_downloads_and_refuses_uploads_while_running(
    page, console, tmp_path
) -> None:
    make = _start_files_project(console, tmp_path, "clips")
    mount(page, "files.js", "mountFileBrowser", "clips", "files.css")
    page.evaluate("(run) => window.panel.show(run, 'awaiting_input')", make)

    page.get_by_role("button", name="out/").wait_for()
    assert _names(page) == ["out/", "latest.csv → out/table.csv", "params.yaml"]
    assert "written by 'make'" in page.locator("#panel .files-note").inner_text()
    assert page.get_by_label("Version").input_value() == "1"

    # The whole workspace as a zip.
    archive = page.get_by_role("link", name="Download all as zip")
    href = archive.get_attribute("href")
    assert href is not None and "/workspace/archive?" in href
    names = zipfile.ZipFile(io.BytesIO(page.request.get(href).body())).namelist()
    assert sorted(names) == [
        "latest.csv",
        "out/blob.bin",
        "out/deep/n.txt",
        "out/table.csv",
        "params.yaml",
    ]

    # Into the folder, a file downloaded byte for byte, back through the breadcrumbs.
    page.get_by_role("button", name="out/").click()
    page.get_by_role("button", name="deep/").wait_for()
    assert _names(page) == ["deep/", "blob.bin", "table.csv"]
    crumbs = page.get_by_role("navigation", name="Folder")
    assert crumbs.inner_text().split() == ["workspace", "out"]
    assert crumbs.locator("[aria-current]").inner_text() == "out"
    assert "293.0 KiB" in page.locator("#panel tbody").inner_text()
    zip_href = page.get_by_role("link", name="Download out/ as zip").get_attribute("href")
    assert zip_href is not None and "path=out" in zip_href
    with page.expect_download() as download_info:
        page.get_by_role("link", name="blob.bin").click()
    download = download_info.value
    assert download.suggested_filename == "blob.bin"
    stored = api_get(
        console,
        "/projects/clips/workspace/download",
        run=make["id"],
        path="out/blob.bin",
        redirect="true",
    ).content
    assert Path(download.path()).read_bytes() == stored and len(stored) == 300_000
    crumbs.get_by_role("button", name="workspace").click()
    page.get_by_role("button", name="out/").wait_for()
    screenshot(page, "file-browser")

    # While a stage runs, the upload control is shut and says why.
    upload = page.get_by_role("button", name="Upload fix")
    assert upload.is_enabled()
    console.cli("project", "resume", "clips")
    console.wait_for("clips", {"running"})
    page.evaluate("(run) => window.panel.show(run, 'running')", run_of(console, "clips", "make"))
    assert upload.is_disabled()
    assert page.get_by_label("File", exact=True).is_disabled()
    reason = page.locator("#panel .files-reason")
    assert "nothing of the project runs" in reason.inner_text()
    assert "Pause the project" in reason.inner_text()
    screenshot(page, "file-browser-upload-refused")
    # A running run's own workspace: refused for that reason, listed as not yet written.
    page.evaluate("(run) => window.panel.show(run, 'running')", run_of(console, "clips", "use"))
    page.locator("#panel .files-note").get_by_text("written when the stage ends").wait_for()
    assert "has not ended" in reason.inner_text()
    console.cli("project", "kill", "clips")


@pytest.mark.skipif(
    not UPLOAD_JS.exists(),
    reason="winslow/ui/static/js/upload.js (the shared uploader) is not there yet; "
    "the file browser loads it only when an upload starts",
)
def test_file_browser_uploads_a_fix_as_a_new_version(page, console, tmp_path) -> None:
    make = _start_files_project(console, tmp_path, "fixme")
    mount(page, "files.js", "mountFileBrowser", "fixme", "files.css")
    page.evaluate("(run) => window.panel.show(run, 'awaiting_input')", make)
    page.get_by_role("button", name="out/").wait_for()

    page.get_by_label("File", exact=True).set_input_files(
        {"name": "params.yaml", "mimeType": "text/yaml", "buffer": b"threshold: 0.4\n"}
    )
    assert page.get_by_label("Path in the workspace").input_value() == "params.yaml"
    page.get_by_label("Note").fill("threshold 0.4")
    page.get_by_role("button", name="Upload fix").click()
    page.get_by_role("status").get_by_text("version 2").wait_for(timeout=30_000)

    # The list of versions is read again after the upload (and once more when the pushed
    # history line arrives): it settles on the new version.
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.get_by_label("Version")).to_have_value("2", timeout=10_000)
    assert "uploaded by a person: threshold 0.4" in page.locator("#panel .files-note").inner_text()
    fixed = api_get(
        console,
        "/projects/fixme/workspace/download",
        run=make["id"],
        path="params.yaml",
        redirect="true",
    )
    assert fixed.content == b"threshold: 0.4\n"
    # Version 1 is still there, as the stage wrote it.
    page.get_by_label("Version").select_option("1")
    page.locator("#panel .files-note").get_by_text("written by 'make'").wait_for()
    screenshot(page, "file-browser-version")

    # The page still thinks nothing runs, but a stage has started: the 409 reaches the person.
    console.cli("project", "resume", "fixme")
    console.wait_for("fixme", {"running"})
    page.get_by_role("button", name="out/").click()
    page.get_by_role("button", name="deep/").wait_for()
    page.get_by_label("File", exact=True).set_input_files(
        {"name": "late.txt", "mimeType": "text/plain", "buffer": b"too late\n"}
    )
    assert page.get_by_label("Path in the workspace").input_value() == "out/late.txt"
    page.get_by_role("button", name="Upload fix").click()
    page.get_by_role("alert").get_by_text(
        "may change only while nothing of the project runs"
    ).wait_for()
    assert "Upload failed" in page.get_by_role("status").inner_text()
    listing = api_get(console, "/projects/fixme/workspace", run=make["id"]).json()
    assert listing["versions"] == [1, 2]
    console.cli("project", "kill", "fixme")
