"""Previews in the project page's workspace browser, in a real browser against `winslow up`.

A stage copies generated samples into its workspace (a table, JSON documents, a photo, a
video made with ``cv2.VideoWriter`` and its detections); at the gate a person opens the
Files tab and looks at each without downloading: the table with its column statistics, a
JSON document's keys and bounded text, the photo's thumbnail, frames of the video at chosen
times with the detected boxes drawn on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.test_previews import SQUARE, detections_csv, make_video, square_x
from tests.ui.conftest import screenshot, show_tab

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOX_RGB = (255, 230, 0)
"""The box colour of ``winslow.previews.images.BOX_COLOUR``, as a canvas reads it (RGB)."""

PIXEL = """([img, x, y]) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
}"""


VEHICLES = [
    {"vehicle": i, "speed": 40 + i, "lane": "left" if i % 2 else "right"} for i in range(60)
]
"""More items than a preview shows (50 by default), so the JSON text says what it left out."""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def near(pixel, colour, tolerance: int = 60) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def start_project(console, tmp_path: Path) -> str:
    """A project at a gate whose first stage put the samples in its workspace; its name."""
    samples = tmp_path / "samples"
    (samples / "clips").mkdir(parents=True)
    make_video(samples / "clips" / "road.mp4")
    (samples / "clips" / "detections.csv").write_text(detections_csv())
    image = np.zeros((600, 800, 3), dtype=np.uint8)
    image[:, :400] = (0, 0, 255)
    image[:, 400:] = (255, 0, 0)
    cv2.imwrite(str(samples / "photo.png"), image)
    (samples / "speeds.csv").write_text(
        "vehicle,speed_kmh,colour\n1,42.5,red\n2,57.5,blue\n3,50,red\n"
    )
    (samples / "vehicles.json").write_text(json.dumps(VEHICLES))
    summary = {"count": 3, "speeds": [42.5, 57.5, 50], "ok": True, "camera": {"name": "north"}}
    (samples / "summary.json").write_text(json.dumps(summary))
    pipeline = tmp_path / "samples.yaml"
    pipeline.write_text(
        f"""
name: samples
stages:
  - name: make
    command: ["sh", "-c", "cp -R '{samples}/.' ."]
  - name: review
    gate: true
    command: ["true"]
"""
    )
    console.cli("pipeline", "apply", str(pipeline))
    console.cli("project", "create", "look", "--pipeline", "samples", "--start")
    console.wait_for("look", {"awaiting_input"})
    return "look"


@pytest.fixture(scope="module")
def look(module_server, tmp_path_factory) -> str:
    """The samples' project, shared by the module's tests (which only look at it)."""
    return start_project(module_server, tmp_path_factory.mktemp("previews"))


def cells(locator) -> list[list[str]]:
    return [row.locator("th, td").all_inner_texts() for row in locator.locator("tbody tr").all()]


def test_the_workspace_browser_previews_a_table_an_image_and_video_frames_with_boxes(
    page, look
) -> None:
    page.goto(f"/projects/{look}")
    show_tab(page, "Files")
    files = page.locator("#files-view")

    # A table: its statistics per column and its first rows.
    files.get_by_role("button", name="Preview speeds.csv").click()
    preview = files.locator(".files-preview")
    stats = preview.locator("table.preview-stats")
    stats.wait_for()
    by_column = {row[0]: row[1:] for row in cells(stats)}
    assert by_column["speed_kmh"] == ["3", "0", "42.5", "57.5", "50", ""]
    assert by_column["colour"] == ["3", "0", "", "", "", "2"]
    assert cells(preview.locator("table.preview-rows"))[1] == ["2", "57.5", "blue"]
    assert "First 3 of 3 rows" in preview.inner_text()
    assert preview.get_by_role("heading", name="Preview of speeds.csv").is_visible()
    screenshot(page, "preview-table")

    # An image: a thumbnail made on the server, bounded in size.
    files.get_by_role("button", name="Preview photo.png").click()
    thumbnail = preview.get_by_role("img", name="Thumbnail of photo.png (800\u00d7600)")
    thumbnail.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )
    assert thumbnail.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [320, 240]
    assert near(page.evaluate(PIXEL, [thumbnail.element_handle(), 60, 120]), (255, 0, 0))
    screenshot(page, "preview-image")

    # A video: evenly spaced frames, then frames at the times a person types, boxes drawn.
    files.get_by_role("button", name="clips/").click()
    files.get_by_role("button", name="Preview road.mp4").click()
    frames = preview.locator("figure.preview-frame")
    frames.nth(3).wait_for()
    assert frames.count() == 4
    assert "Boxes from clips/detections.csv" in preview.inner_text()
    times = preview.get_by_label("Frames at (seconds, comma-separated)")
    times.fill("1, 2.5")
    times.press("Enter")
    preview.get_by_text("2.5 s · frame 25 · 1 detection").wait_for()
    assert frames.count() == 2
    for figure, index in zip(frames.all(), (10, 25), strict=True):
        img = figure.locator("img")
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle()
        )
        x = square_x(index)
        edge = page.evaluate(PIXEL, [img.element_handle(), x + SQUARE // 2, 100])
        inside = page.evaluate(PIXEL, [img.element_handle(), x + SQUARE // 2, 115])
        assert near(edge, BOX_RGB), edge
        assert min(inside) > 200, inside  # the square of that very frame, inside its box
    screenshot(page, "preview-video-frames")

    files.get_by_role("button", name="Close preview").click()
    assert preview.is_hidden()


def test_the_workspace_browser_summarises_a_json_document(page, look) -> None:
    check = expect()
    page.goto(f"/projects/{look}")
    show_tab(page, "Files")
    files = page.locator("#files-view")
    preview = files.locator(".files-preview")

    # A list of flat objects: its length, the keys with their types and how often each
    # appears, the items as a table, and the JSON text folded away, cut short.
    files.get_by_role("button", name="Preview vehicles.json").click()
    check(preview.get_by_role("heading", name="Preview of vehicles.json")).to_be_visible()
    check(preview.locator(".preview-note")).to_have_text(
        ["JSON array of 60 items.", "First 50 of 60 rows; statistics over those 60."]
    )
    keys = preview.get_by_role("list", name="Keys").get_by_role("listitem")
    check(keys).to_have_text(
        ["vehicle number · 60\u00d7", "speed number · 60\u00d7", "lane string · 60\u00d7"]
    )
    by_column = {row[0]: row[1:] for row in cells(preview.locator("table.preview-stats"))}
    assert by_column["speed"] == ["60", "0", "40", "99", "69.5", ""]
    assert by_column["lane"] == ["60", "0", "", "", "", "2"]
    items = cells(preview.locator("table.preview-rows"))
    assert (len(items), items[1]) == (50, ["1", "41", "left"])
    text = preview.get_by_label("Contents of vehicles.json")
    check(text).to_be_hidden()
    preview.locator("summary", has_text="JSON").click()
    check(text).to_be_visible()
    check(text).to_contain_text('"lane": "left"')
    check(text).to_contain_text("… 10 more items")
    screenshot(page, "preview-json-items")

    # An object: its keys and their types, and its text shown at once (no table to show).
    files.get_by_role("button", name="Preview summary.json").click()
    check(preview.get_by_role("heading", name="Preview of summary.json")).to_be_visible()
    check(preview.locator(".preview-note")).to_have_text("JSON object of 4 keys.")
    keys = preview.get_by_role("list", name="Keys").get_by_role("listitem")
    check(keys).to_have_text(["count number", "speeds array", "ok boolean", "camera object"])
    check(preview.locator("table")).to_have_count(0)
    text = preview.get_by_label("Contents of summary.json")
    check(text).to_be_visible()
    check(text).to_contain_text('"ok": true')
    check(text).to_contain_text('"name": "north"')
    screenshot(page, "preview-json-object")
