"""Names a stage wrote, or that reached the pool's bucket past Winslow, in the console: the
Files tab, the gate card and the resources page show invisible and control characters
escaped (``\\u202e``, ``\\x1b``), as the CLI does, so a listing cannot show one name for
another; links and downloads still fetch the file by its real name."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.fixtures.spoofed import LS, SPOOFED_FILE, SPOOFED_FOLDER, invisible, pool_store
from tests.ui.conftest import show_tab
from winslow.core.logformat import escape_name
from winslow.storage.keys import resource_key

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The shell writes the names byte by byte (UTF-8 in octal), as any program may.
PIPELINE = r"""
name: spoof-ui
stages:
  - name: write
    command:
      - sh
      - -c
      - >-
        echo payload > "$(printf 'evil\342\200\256gpj.sh')";
        mkdir "$(printf 'in\342\200\213box')";
        printf 'a,b\n1,2\n' > "$(printf 'in\342\200\213box/t\342\200\250x.csv')";
        ln -s "$(printf 'to\033[31mred')" latest
  - name: look
    gate: true
    command: ["true"]
    ask:
      review: ["evil*"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(autouse=True)
def no_script_errors(page):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


def test_the_files_tab_and_the_gate_card_show_stage_written_names_escaped(
    page, console, tmp_path
) -> None:
    check = expect()
    file = tmp_path / "spoof-ui.yaml"
    file.write_text(PIPELINE)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "spoof-ui", "--pipeline", "spoof-ui", "--start")
    console.wait_for("spoof-ui", {"awaiting_input"})

    page.goto("/projects/spoof-ui")
    caption = page.locator("#gate-card .gate-file figcaption code")
    check(caption).to_have_text("evil\\u202egpj.sh")

    show_tab(page, "Files")
    files = page.locator("#files-view")
    names = files.locator("td.files-name")
    check(names).to_have_count(3)
    assert sorted(names.all_inner_texts()) == [
        "evil\\u202egpj.sh",
        "in\\u200bbox/",
        "latest → to\\x1b[31mred",
    ]
    # The link keeps the real name: it downloads the file the stage wrote.
    link = files.get_by_role("link", name="evil\\u202egpj.sh")
    assert link.get_attribute("download") == SPOOFED_FILE
    assert link.get_attribute("title") == "Download evil\\u202egpj.sh"
    assert page.request.get(link.get_attribute("href")).text() == "payload\n"

    files.get_by_role("button", name="in\\u200bbox/").click()
    crumbs = files.get_by_role("navigation", name="Folder")
    check(crumbs.locator("[aria-current]")).to_have_text("in\\u200bbox")
    check(files.locator("table.files-table")).to_have_attribute(
        "aria-label", "Files in in\\u200bbox/"
    )
    archive = files.get_by_role("link", name="Download in\\u200bbox/ as zip")
    assert f"path={quote(SPOOFED_FOLDER)}" in (archive.get_attribute("href") or "")
    files.get_by_role("button", name="Preview t\\u2028x.csv").click()
    check(files.locator(".files-preview-title")).to_have_text(
        "Preview of in\\u200bbox/t\\u2028x.csv"
    )
    check(files.locator("table.preview-rows")).to_be_visible()
    shown = files.locator(".files-top, .files-bar, .files-table, .files-preview-title")
    assert invisible("".join(shown.all_inner_texts()), allowed="\n\t") == []
    assert invisible(page.locator("#gate-card figcaption").inner_text(), allowed="\n\t") == []


def test_the_resources_page_shows_names_in_the_bucket_escaped(page, console) -> None:
    check = expect()
    store = pool_store(console)
    store.put_bytes(resource_key(f"spoof-ui/{SPOOFED_FILE}"), b"payload\n")
    store.put_bytes(resource_key(f"spoof-ui/{SPOOFED_FOLDER}/a{LS}b.txt"), b"inner\n")

    # The first listing comes with the page, escaped already for a browser without scripts
    # (the raw names stay only in the data attributes the script reads)...
    served = page.request.get(f"/resources?path={quote('spoof-ui')}").text()
    assert ">evil\\u202egpj.sh<" in served and f">{SPOOFED_FILE}<" not in served
    assert f"Download {SPOOFED_FILE}" not in served
    # ... and the next ones are drawn by its script.
    page.goto(f"/resources?path={quote('spoof-ui')}")
    entries = page.locator("#entries")
    check(entries.locator("tr[data-path]")).to_have_count(2)
    check(entries).to_contain_text("evil\\u202egpj.sh")
    assert sorted(entries.locator("td:first-child").all_inner_texts()) == [
        "evil\\u202egpj.sh",
        "in\\u200bbox/",
    ]
    row = entries.locator(f'tr[data-name="{SPOOFED_FILE}"]')
    download = row.get_by_role("link", name="Download evil\\u202egpj.sh")
    assert page.request.get(download.get_attribute("href")).text() == "payload\n"
    check(row.get_by_role("button", name="Delete evil\\u202egpj.sh")).to_be_visible()

    entries.get_by_role("link", name="in\\u200bbox/").click()
    crumbs = page.locator("#crumbs")
    check(crumbs.locator("[aria-current]")).to_have_text("in\\u200bbox")
    check(page.locator("#drop-folder")).to_have_text("/spoof-ui/in\\u200bbox")
    check(entries.locator("td:first-child")).to_have_text(["a\\u2028b.txt"])
    entries.get_by_role("button", name="Delete a\\u2028b.txt").click()
    check(page.locator("#confirm-text")).to_contain_text(
        "Delete '/spoof-ui/in\\u200bbox/a\\u2028b.txt'"
    )
    page.get_by_role("button", name="Cancel").click()
    shown = page.locator("#crumbs, #drop-hint, #entries")
    assert invisible("".join(shown.all_inner_texts()), allowed="\n\t") == []


def test_the_console_escapes_names_by_the_same_rules_as_the_cli(page) -> None:
    page.goto("/")
    # Every character of the BMP but the surrogates, and some beyond it (tags, emoji).
    text = "".join(
        chr(c) for c in [*range(0xD800), *range(0xE000, 0x10000), 0xE0001, 0xE0041, 0x1F697]
    )
    escaped = page.evaluate(
        "async (text) => (await import('/static/js/api.js')).escapeName(text)", text
    )
    assert escaped == escape_name(text)
