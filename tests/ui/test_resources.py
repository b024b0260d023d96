"""The resources page in a real browser: a 200 MB upload with its progress, resumed after
a reload, downloaded back byte for byte; folders, deletes, and errors in words."""

from __future__ import annotations

import hashlib
import os
import re

import httpx
import pytest

from tests.ui.conftest import admin_token, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BIG = 200 * 1024 * 1024
PART = 16 * 1024 * 1024
PART_COUNT = -(-BIG // PART)  # 13

DONE = (
    "dest => [...document.querySelectorAll('#upload-rows tr')]"
    ".some(r => r.dataset.dest === dest && r.dataset.state === 'done')"
)

REMEMBERED = """() => Object.keys(localStorage)
    .filter(k => k.startsWith('winslow.upload:'))
    .map(k => JSON.parse(localStorage.getItem(k)))"""

RECORD_PROGRESS = """() => {
  window.seenProgress = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.target.localName === 'progress' && change.target.hasAttribute('value')) {
        window.seenProgress.push(Number(change.target.getAttribute('value')));
      }
    }
  }).observe(document.getElementById('upload-rows'),
    {attributes: true, attributeFilter: ['value'], subtree: true});
}"""


@pytest.fixture(autouse=True)
def no_script_errors(page):
    """Every test ends with no uncaught error in the page's scripts."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(BIG // (8 * 1024 * 1024)):
            chunk = os.urandom(8 * 1024 * 1024)
            digest.update(chunk)
            handle.write(chunk)
    return path, digest.hexdigest()


def sha256_of_file(path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_in_pool(console, path: str) -> str:
    headers = {"Authorization": f"Bearer {admin_token(console)}"}
    info = httpx.get(
        console.addr + "/api/v1/resources/download", params={"path": path}, headers=headers
    ).json()
    digest = hashlib.sha256()
    with httpx.stream("GET", info["url"], timeout=60) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def part_puts(page) -> list[str]:
    """The part PUTs the page sends to object storage, as they start."""
    puts: list[str] = []
    page.on(
        "request",
        lambda r: puts.append(r.url) if r.method == "PUT" and "partNumber=" in r.url else None,
    )
    return puts


def test_a_200_mb_upload_shows_progress_and_downloads_back_identical(
    page, console, big_file, tmp_path
) -> None:
    path, sha = big_file
    small = tmp_path / "clip.mp4"
    small.write_bytes(os.urandom(300_000))
    console.cli("resources", "upload", str(small), "footage/ulm-0603/clip.mp4")
    console.cli("resources", "upload", str(small), "models/yolo.pt")
    page.goto("/resources")
    puts = part_puts(page)

    page.get_by_label("Files to upload").set_input_files(str(path))
    page.wait_for_function(
        "() => { const p = document.querySelector('#upload-rows progress');"
        " return p && p.hasAttribute('value') && p.value > 0 && p.value < p.max; }"
    )
    row = page.locator("#upload-rows tr", has_text="big.bin")
    assert re.search(r"\d+%", row.inner_text())
    page.wait_for_function(DONE, arg="big.bin", timeout=60_000)
    assert "uploaded 200.0 MiB" in row.inner_text()
    assert len(puts) == PART_COUNT
    assert page.evaluate(REMEMBERED) == []  # nothing left to resume

    # The listing refreshed by itself: folders first, then the new file with its size.
    entry = page.locator("#entries tr[data-path='big.bin']")
    entry.wait_for()
    assert "200.0 MiB" in entry.inner_text()
    names = page.locator("#entries tr[data-path]").evaluate_all(
        "rows => rows.map(r => r.dataset.name)"
    )
    assert names == ["footage", "models", "big.bin"]
    screenshot(page, "resources")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download big.bin").click()
    download = info.value
    assert download.suggested_filename == "big.bin"
    back = tmp_path / "back.bin"
    download.save_as(back)
    assert back.stat().st_size == BIG
    assert sha256_of_file(back) == sha


def test_a_reload_mid_upload_resumes_from_the_parts_stored(
    page, console, big_file, tmp_path
) -> None:
    path, sha = big_file
    page.goto("/resources")
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while uploading
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    slow = {"offline": False, "latency": 0, "downloadThroughput": -1}
    network.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": 24 * 1024**2})
    puts = part_puts(page)

    page.get_by_label("Files to upload").set_input_files(str(path))
    # Reload once a part is stored (the page remembers how much is).
    page.wait_for_function(f"() => ({REMEMBERED})().some(r => r.sent > 0)", timeout=60_000)
    screenshot(page, "resources-uploading")
    sent_before = len(puts)
    assert sent_before < PART_COUNT
    page.reload()
    network.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})

    # The interrupted upload is shown, with a way to resume it.
    interrupted = page.locator("#interrupted li", has_text="big.bin")
    interrupted.wait_for()
    assert re.search(r"200\.0 MiB · \d+% stored", interrupted.inner_text())
    screenshot(page, "resources-interrupted")
    (record,) = page.evaluate(REMEMBERED)
    stored = httpx.get(
        f"{console.addr}/api/v1/resources/uploads/{record['upload_id']}/parts",
        params={"path": "big.bin"},
        headers={"Authorization": f"Bearer {admin_token(console)}"},
    ).json()["parts"]
    kept = {p["part_number"]: p["size"] for p in stored}
    assert kept and sum(kept.values()) >= PART

    # What the page read from the server: at least the part that was stored before the
    # reload, at most what is stored now (a part in flight may land just after the page
    # asked).
    shown = int(re.search(r"(\d+)% stored", interrupted.inner_text())[1])  # type: ignore[index]
    assert PART * 100 // BIG <= shown <= sum(kept.values()) * 100 // BIG

    # Another file is not taken for it.
    other = tmp_path / "other.bin"
    other.write_bytes(b"not it")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Resume big.bin: pick the file again").click()
    chooser.value.set_files(str(other))
    page.get_by_role("alert").get_by_text("to resume, pick 'big.bin' (200.0 MiB").wait_for()
    page.get_by_role("button", name="Dismiss").click()

    # Picking the same file again continues the upload: the bar starts at the kept bytes
    # and only the missing parts are sent.
    page.evaluate(RECORD_PROGRESS)
    puts.clear()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Resume big.bin: pick the file again").click()
    chooser.value.set_files(str(path))
    page.wait_for_function(DONE, arg="big.bin", timeout=60_000)
    seen = page.evaluate("window.seenProgress")
    assert seen and seen[0] >= sum(kept.values())
    assert len(puts) <= PART_COUNT - len(kept)
    assert "resumed" in page.locator("#upload-rows tr", has_text="big.bin").inner_text()
    assert page.locator("#interrupted").is_hidden()
    assert page.evaluate(REMEMBERED) == []
    page.locator("#entries tr[data-path='big.bin']").wait_for()
    assert sha256_in_pool(console, "big.bin") == sha


def test_folders_deletes_and_errors_in_words(page, console, tmp_path) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"{name}\n")
        console.cli("resources", "upload", str(tmp_path / name), f"clips/{name}")
    page.goto("/resources")

    # Into a folder, by keyboard; the URL keeps the place.
    page.get_by_role("link", name="clips/").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/resources\?path=clips$"))
    assert page.locator("#crumbs").inner_text().split() == ["Resources", "clips"]

    # Delete asks first; cancelling keeps the file.
    page.get_by_role("button", name="Delete b.txt").click()
    dialog = page.get_by_role("dialog")
    assert "Delete '/clips/b.txt' (6 B)?" in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert page.locator("#entries tr[data-path='clips/b.txt']").count() == 1
    page.get_by_role("button", name="Delete b.txt").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete file").click()
    page.locator("#entries tr[data-path='clips/b.txt']").wait_for(state="detached")
    listed = console.json("resources", "ls", "clips")["data"]
    assert [e["name"] for e in listed] == ["a.txt"]

    # A file deleted elsewhere meanwhile: the API's 404 reaches the person in words.
    console.cli("resources", "rm", "clips/a.txt")
    page.get_by_role("button", name="Delete a.txt").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete file").click()
    page.get_by_role("alert").get_by_text("No file 'clips/a.txt' in the resource pool.").wait_for()
    page.get_by_text("This folder is empty").wait_for()  # the listing caught up
    page.get_by_role("button", name="Dismiss").click()

    # New folder: open it empty, upload into it, and it exists.
    page.get_by_role("button", name="New folder").click()
    page.get_by_label("Folder name").fill("fresh")
    page.get_by_label("Folder name").press("Enter")
    page.wait_for_url(re.compile(r".*/resources\?path=clips%2Ffresh$"))
    page.get_by_text("it is empty until you upload a file into it").wait_for()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Drop files here or press to choose files").press("Enter")
    chooser.value.set_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"frame 12: recheck\n"},
            {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
        ]
    )
    page.wait_for_function(DONE, arg="clips/fresh/notes.txt")
    page.wait_for_function(DONE, arg="clips/fresh/empty.txt")
    page.locator("#entries tr[data-path='clips/fresh/notes.txt']").wait_for()
    assert "0 B" in page.locator("#entries tr[data-path='clips/fresh/empty.txt']").inner_text()

    # A file's path opens the folder it is in, the file marked.
    page.goto("/resources?path=clips/fresh/notes.txt")
    page.get_by_text("'clips/fresh/notes.txt' is a file; this is the folder it is in.").wait_for()
    assert page.locator("#entries tr.selected").get_attribute("data-name") == "notes.txt"
    page.locator("#crumbs").get_by_role("link", name="clips").click()
    page.wait_for_url(re.compile(r".*/resources\?path=clips$"))
    page.get_by_role("link", name="fresh/").wait_for()

    # Deleting a folder says what goes with it.
    page.get_by_role("button", name="Delete folder fresh").click()
    dialog = page.get_by_role("dialog")
    assert "the 2 files in it (18 B)" in dialog.inner_text()
    screenshot(page, "resources-delete-folder")
    dialog.get_by_role("button", name="Delete folder").click()
    page.wait_for_function("document.activeElement.id === 'new-folder'")  # focus went on
    assert console.json("resources", "ls", "clips/fresh", "-r")["data"] == []
    assert page.locator("#errors .error").count() == 0

    # An unacceptable name is refused by the server, in words.
    page.get_by_label("Files to upload").set_input_files(
        [{"name": "bad\u0007name.txt", "mimeType": "text/plain", "buffer": b"x"}]
    )
    page.get_by_role("alert").get_by_text("control character").wait_for()

    # A bad ?path= renders the page with the reason, not an API error body.
    response = page.goto("/resources?path=../etc")
    assert response is not None and response.status == 422
    assert "contains '..'" in page.locator("main").inner_text()
    page.get_by_role("link", name="Open the top folder of the resource pool").wait_for()


@pytest.mark.own_server  # it lists the whole resource pool
def test_a_network_drop_is_waited_out_and_cancel_drops_the_upload(page, console, tmp_path) -> None:
    data = os.urandom(5 * PART)
    path = tmp_path / "drop.bin"
    path.write_bytes(data)
    page.goto("/resources")
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    slow = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": 12 * 1024**2}
    network.send("Network.emulateNetworkConditions", {**slow, "offline": False})
    puts = part_puts(page)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url) if "partNumber=" in r.url else None)
    row = page.locator("#upload-rows tr", has_text="drop.bin")

    # The network drops while parts 1 to 4 are on their way: part 5 cannot start, the
    # row says the upload waits, and it goes on by itself once the network is back.
    page.get_by_label("Files to upload").set_input_files(str(path))
    while len(puts) < 4:
        page.wait_for_timeout(50)
    network.send("Network.emulateNetworkConditions", {**slow, "offline": True})
    row.get_by_text("offline: waiting for the network").wait_for()
    network.send("Network.emulateNetworkConditions", {**slow, "offline": False})
    page.wait_for_function(DONE, arg="drop.bin", timeout=60_000)
    assert failed and len(puts) > 5  # the part cut off by the drop was sent again
    assert page.locator("#errors .error").count() == 0
    assert hashlib.sha256(data).hexdigest() == sha256_in_pool(console, "drop.bin")

    # Cancel stops the upload and drops what was sent; nothing is left to resume.
    page.get_by_role("button", name="Clear finished").click()
    # Three times as long, so the upload is still under way when Cancel is clicked on a
    # loaded machine (five parts were done before the click could reach the button).
    (tmp_path / "gone.bin").write_bytes(data * 3)
    page.get_by_label("Files to upload").set_input_files(str(tmp_path / "gone.bin"))
    page.wait_for_function(f"() => ({REMEMBERED})().some(r => r.sent > 0)", timeout=30_000)
    (record,) = page.evaluate(REMEMBERED)
    page.get_by_role("button", name="Cancel upload of gone.bin").click()
    gone = page.locator("#upload-rows tr", has_text="gone.bin")
    gone.get_by_text("cancelled; the parts sent were dropped").wait_for()
    assert page.evaluate(REMEMBERED) == []
    assert page.locator("#interrupted").is_hidden()
    answer = httpx.get(
        f"{console.addr}/api/v1/resources/uploads/{record['upload_id']}/parts",
        params={"path": "gone.bin"},
        headers={"Authorization": f"Bearer {admin_token(console)}"},
    )
    assert answer.status_code == 404
    assert [e["name"] for e in console.json("resources", "ls")["data"]] == ["drop.bin"]
