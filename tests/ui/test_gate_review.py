"""A review at a gate, with the keyboard only: the gate card shows the description with the
results it quotes, a preview of the file to review and the questions as a form, all on
the first screen; a wrong answer is marked on its field; Enter approves; the project goes
on and its history says who answered what."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.ui.conftest import SCREENSHOTS, VIEWPORT, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A 2x2 red PNG: something for the image preview to show.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5E"
    "rkJggg=="
)

PIPELINE = """\
name: gate-walk
stages:
  - name: detect
    command:
      - sh
      - -c
      - "mkdir -p frames && cp {png} frames/frame-1.png && echo 'WINSLOW_RESULT: detections=42'"

  - name: review
    gate: true
    command: ["sh", "-c", "echo answers $MIN_LEN $MODE $DRAW"]
    env: {{MIN_LEN: "${{MIN_LEN}}", MODE: "${{MODE}}", DRAW: "${{DRAW}}"}}
    ask:
      description: |
        Detect found **{{{{ results.detect.detections }}}}** vehicles. <b>not bold</b>
      inputs:
        - name: MIN_LEN
          label: Shortest track
          type: number
          min: 2
          max: 50
          help: In frames.
        - name: MODE
          type: choice
          choices: [fast, careful]
          default: fast
        - name: DRAW
          label: Draw the tracks
          type: boolean
        - name: NOTE
          label: Note
          type: string
          default: ""
      review: ["frames/*.png"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id || ''")


def tab_to(page, element_id: str, limit: int = 80) -> None:
    """Press Tab until ``element_id`` has the focus (it must be reachable by Tab)."""
    for _ in range(limit):
        if focused_id(page) == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}; it stopped at #{focused_id(page)}")


SEEN_WHOLE = """(part) => {
  const box = part.getBoundingClientRect();
  const seen = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
  return part === seen || part.contains(seen);
}"""
"""Whether a person sees the middle of ``part``: not scrolled away inside a box that clips
it (the gate card scrolls within itself when its files are long), nor covered."""


def on_the_first_screen(page, part, what: str) -> None:
    """``part`` is within the first screen of the page as it opens, unscrolled, and seen."""
    assert page.evaluate("window.scrollY") == 0, "the page opened scrolled"
    box = part.bounding_box()
    assert box is not None, f"{what} is not rendered"
    bottom = box["y"] + box["height"]
    assert box["y"] >= 0 and bottom <= VIEWPORT["height"], (
        f"{what} spans {box['y']:.0f} to {bottom:.0f} px, past the first screen"
    )
    assert part.evaluate(SEEN_WHOLE), f"{what} is on the first screen but hidden"


def test_keyboard_only_review_at_a_gate(page, console, tmp_path) -> None:
    check = expect()
    png = tmp_path / "frame.png"
    png.write_bytes(PNG)
    file = tmp_path / "gate-walk.yaml"
    file.write_text(PIPELINE.format(png=png))
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "walk", "--pipeline", "gate-walk", "--start")
    console.json("project", "wait", "walk", "--state", "awaiting_input")

    page.goto("/projects/walk")
    card = page.locator("#gate-card")
    check(card).to_be_visible()
    check(card.get_by_role("heading", name="Gate 'review' waits for you")).to_be_visible()
    check(card.locator(".gate-description strong")).to_have_text("42")
    check(card.locator(".gate-description")).to_contain_text("<b>not bold</b>")  # escaped
    assert card.locator(".gate-description b").count() == 0
    check(card.locator(".gate-file figcaption")).to_contain_text("frames/frame-1.png")
    check(card.locator(".gate-file img")).to_have_count(1)
    check(card.get_by_label("Shortest track")).to_have_attribute("min", "2")
    check(card.get_by_label("Shortest track")).to_have_attribute("max", "50")
    check(card.get_by_label("MODE")).to_have_value("fast")
    help_id = card.get_by_label("Shortest track").get_attribute("aria-describedby").split()[0]
    check(page.locator(f"#{help_id}")).to_have_text("In frames. From 2 to 50.")
    # A description, four questions and a file to review: the card and its button fit the
    # first screen of a laptop, beside the graph.
    approve = card.get_by_role("button", name="Approve and continue")
    on_the_first_screen(page, card, "the gate card")
    on_the_first_screen(page, approve, "the Approve and continue button")

    # axe-core finds nothing serious on the card (light theme; the pages' check has the rest).
    axe = Path(__file__).resolve().parents[2] / "winslow/ui/node_modules/axe-core/axe.min.js"
    if axe.exists():
        page.add_script_tag(path=str(axe))
        found = page.evaluate(
            "async () => (await axe.run('#gate-card', { resultTypes: ['violations'] }))"
            ".violations.filter((v) => ['serious', 'critical'].includes(v.impact))"
            ".map((v) => v.id)"
        )
        assert found == []

    # Keyboard only from here: Tab reaches each field in order.
    page.locator("body").focus()
    tab_to(page, "gate-input-MIN_LEN")
    page.keyboard.type("99")
    page.keyboard.press("Tab")
    assert focused_id(page) == "gate-input-MODE"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert focused_id(page) == "gate-input-DRAW"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert focused_id(page) == "gate-input-NOTE"
    page.keyboard.type("looks right")
    page.keyboard.press("Enter")

    # The API refuses 99; the refusal sits on the field, which gets the focus back.
    error = card.locator("#gate-input-MIN_LEN-error")
    check(error).to_have_text("Shortest track: must be at most 50, got 99")
    check(card.get_by_label("Shortest track")).to_have_attribute("aria-invalid", "true")
    check(card.get_by_label("Shortest track")).to_be_focused()
    assert "gate-input-MIN_LEN-error" in card.get_by_label("Shortest track").get_attribute(
        "aria-describedby"
    )
    assert console.json("project", "show", "walk")["state"] == "awaiting_input"
    screenshot(page, "gate-review-field-error")

    page.keyboard.press("Control+A")
    page.keyboard.type("12")
    page.keyboard.press("Enter")

    check(page.locator("#project-state")).to_have_text("succeeded", timeout=60_000)
    check(card).to_be_hidden()
    answered = page.locator("#history-rows li", has_text="answered gate 'review'")
    check(answered).to_have_count(1)
    check(answered.locator(".actor")).to_have_text("admin")
    check(answered.locator(".message")).to_have_text(
        "answered gate 'review': MIN_LEN=12, MODE=careful, DRAW=true, NOTE=looks right; "
        "resumed; let gated stage 'review' start"
    )
    shown = console.json("project", "show", "walk")
    assert shown["variables"] == {
        "MIN_LEN": "12",
        "MODE": "careful",
        "DRAW": "true",
        "NOTE": "looks right",
    }
    screenshot(page, "gate-review-approved")


def test_traffic_review_gate_shows_the_frames_with_their_boxes(page, console, tmp_path) -> None:
    pytest.importorskip("cv2", reason="the traffic example needs opencv-python-headless")
    from tests.examples.test_traffic import EXAMPLE, generate_video

    check = expect()
    video = tmp_path / "road.mp4"
    generate_video(video, tmp_path / "truth.json")
    console.cli("pipeline", "apply", str(EXAMPLE / "pipeline.yaml"))
    console.cli("resources", "upload", str(video), "videos/road.mp4")
    console.cli(
        "project", "create", "ulm", "--pipeline", "traffic", "--start",
        "--var", "INPUT_VIDEO=videos/road.mp4", "--var", f"EXAMPLES_DIR={EXAMPLE}",
    )  # fmt: skip
    console.json("project", "wait", "ulm", "--state", "awaiting_input", "--timeout", "240")
    detections = console.json("project", "show", "ulm")["runs"][0]["results"]["detections"]

    page.goto("/projects/ulm")
    card = page.locator("#gate-card")
    check(card.locator(".gate-description")).to_contain_text(
        f"detect found {detections} vehicle detections"
    )
    check(card.get_by_label("Shortest track (frames)")).to_have_value("8")
    files = card.locator(".gate-file")
    # The pool video, its frames with detect's boxes drawn on them by the previews API (each
    # frame a figure of its own inside: the video's caption is the one directly under it).
    check(files.first.locator(":scope > figcaption")).to_contain_text("videos/road.mp4")
    check(files.first.locator(".preview-note")).to_contain_text("Boxes from detections.csv")
    check(files.first.locator(".preview-frame img").first).to_be_visible(timeout=30_000)
    # The busiest frames detect drew its boxes on, as images.
    drawn = card.locator(".gate-file", has_text="frames/frame-")
    check(drawn.first.locator("img")).to_be_visible()
    assert drawn.count() >= 1
    # With the video's frames and detect's drawn frames in, the card (which scrolls within
    # itself) and its button still fit the first screen.
    on_the_first_screen(page, card, "the gate card")
    on_the_first_screen(page, card.get_by_role("button", name="Approve and continue"), "Approve")
    screenshot(page, "gate-review-traffic")
    drawn.first.scroll_into_view_if_needed()
    drawn.first.screenshot(path=str(SCREENSHOTS / "gate-review-traffic-frame.png"))


MANY_QUESTIONS = """\
name: gate-many
stages:
  - name: look
    gate: true
    command: ["true"]
    ask:
      description: Twelve answers before the stage may go on.
      inputs:
{inputs}
"""


def test_approve_stays_in_sight_however_many_questions_a_gate_asks(page, console, tmp_path):
    """A gate card scrolls within itself when it holds more than the screen: its Approve
    button stays at the card's foot in sight, never below the questions."""
    check = expect()
    inputs = "".join(
        f"        - {{name: Q{n}, label: Question {n}, help: Asked for a reason., default: a}}\n"
        for n in range(12)
    )
    file = tmp_path / "gate-many.yaml"
    file.write_text(MANY_QUESTIONS.format(inputs=inputs))
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "many", "--pipeline", "gate-many", "--start")
    console.json("project", "wait", "many", "--state", "awaiting_input")

    page.goto("/projects/many")
    card = page.locator("#gate-card")
    check(card.get_by_label("Question 11")).to_be_attached()
    assert card.evaluate("c => c.scrollHeight > c.clientHeight"), "the card did not need to scroll"
    approve = card.get_by_role("button", name="Approve and continue")
    on_the_first_screen(page, approve, "the Approve and continue button")
    screenshot(page, "gate-many-questions")
