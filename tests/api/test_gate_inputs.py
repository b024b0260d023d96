"""A gate's typed questions over the API: the card, answers checked, defaults filled,
answers set as variables and named in the history with who gave them."""

from __future__ import annotations

import sys

from tests.fixtures.winslow import Harness

PY = sys.executable
DETECT = (
    "open('frame-1.png','wb').write(b'x'); open('notes.txt','w').write('n'); "
    "print('WINSLOW_RESULT: detections=42')"
)

PIPELINE = f"""\
name: asking
variables:
  VIDEO: {{default: videos/road.mp4}}
  OTHER: {{description: unset here}}
stages:
  - name: detect
    command: ["{PY}", "-c", "{DETECT}"]
  - name: review
    gate: true
    command: ["{PY}", "-c", "import os; print('min', os.environ['MIN_LEN'], os.environ['MODE'])"]
    env:
      MIN_LEN: "${{MIN_LEN}}"
      MODE: "${{MODE}}"
    ask:
      description: |
        Detect found **{{{{ results.detect.detections }}}}** vehicles. <script>alert(1)</script>
      inputs:
        - name: MIN_LEN
          type: number
          min: 2
          max: 50
          help: Shortest track, in frames.
        - name: MODE
          type: choice
          choices: [fast, careful]
          default: careful
        - name: DRAW
          type: boolean
        - name: NOTE
          type: string
          default: ""
      review: ["frame-*.png", "missing.csv", "pool:${{VIDEO}}", "pool:${{OTHER}}"]
"""


def at_the_gate(winslow: Harness) -> None:
    winslow.apply_pipeline(PIPELINE)
    winslow.create("p", "asking", start=True)
    winslow.engine.run_until_idle()
    assert winslow.show("p")["state"] == "awaiting_input"


def test_gate_card_fills_results_into_escaped_markdown_and_lists_questions(
    winslow: Harness,
) -> None:
    at_the_gate(winslow)

    card = winslow.api.get("/api/v1/projects/p/gate").json()

    assert card["stage"] == "review"
    assert "Detect found **42** vehicles." in card["description"]
    assert "<strong>42</strong>" in card["description_html"]
    assert "<script>" not in card["description_html"]
    assert "&lt;script&gt;" in card["description_html"]
    by_name = {item["name"]: item for item in card["inputs"]}
    assert by_name["MIN_LEN"] == {
        "name": "MIN_LEN",
        "label": "MIN_LEN",
        "type": "number",
        "help": "Shortest track, in frames.",
        "required": True,
        "value": None,
        "min": 2.0,
        "max": 50.0,
        "choices": [],
    }
    assert by_name["MODE"]["choices"] == ["fast", "careful"]
    assert by_name["MODE"]["value"] == "careful"
    assert (by_name["DRAW"]["value"], by_name["DRAW"]["required"]) == ("false", False)
    detect_run = winslow.show("p")["runs"][0]["id"]
    assert card["review"] == [
        {"path": "frame-1.png", "run": detect_run, "stage": "detect", "source": "workspace"},
        {"path": "videos/road.mp4", "run": detect_run, "stage": "detect", "source": "pool"},
    ]


def test_plain_resume_cannot_pass_a_gate_with_required_questions(winslow: Harness) -> None:
    at_the_gate(winslow)

    refused = winslow.api.post("/api/v1/projects/p/resume", json={})

    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_answers"
    assert refused.json()["fields"] == {"answers.MIN_LEN": "an answer is required"}
    assert "MIN_LEN" in refused.json()["detail"]
    assert winslow.show("p")["state"] == "awaiting_input"  # nothing changed
    assert "MIN_LEN" not in winslow.show("p")["variables"]


def test_wrong_answers_are_each_named_on_their_field(winslow: Harness) -> None:
    at_the_gate(winslow)

    refused = winslow.api.post(
        "/api/v1/projects/p/resume",
        json={"answers": {"MIN_LEN": 99, "MODE": "reckless", "DRAW": "maybe", "COLOUR": "red"}},
    )

    assert refused.status_code == 422
    assert refused.json()["fields"] == {
        "answers.COLOUR": "gate 'review' asks no 'COLOUR'; it asks MIN_LEN, MODE, DRAW, NOTE",
        "answers.MIN_LEN": "must be at most 50, got 99",
        "answers.MODE": "expected one of fast, careful; got 'reckless'",
        "answers.DRAW": "expected true or false, got 'maybe'",
    }
    text = winslow.api.post("/api/v1/projects/p/resume", json={"answers": {"MIN_LEN": "two"}})
    assert text.json()["fields"] == {"answers.MIN_LEN": "expected a number, got 'two'"}


def test_answers_become_variables_with_defaults_and_one_history_line(winslow: Harness) -> None:
    at_the_gate(winslow)

    resumed = winslow.command("p", "resume", {"answers": {"MIN_LEN": 12.0, "DRAW": True}})
    winslow.engine.run_until_idle()

    assert resumed["variables"] == {"MIN_LEN": "12", "MODE": "careful", "DRAW": "true", "NOTE": ""}
    project = winslow.show("p")
    assert project["state"] == "succeeded"
    review = project["runs"][-1]
    assert "min 12 careful" in winslow.log("p", review["id"])
    events = winslow.api.get("/api/v1/projects/p/history").json()["data"]
    answered = [e for e in events if e["message"].startswith("answered gate")]
    assert len(answered) == 1
    assert answered[0]["actor"] == "tester"
    assert answered[0]["message"] == (
        "answered gate 'review': MIN_LEN=12, MODE=careful, DRAW=true, NOTE=; "
        "resumed; let gated stage 'review' start"
    )
    assert answered[0]["data"]["answers"]["MIN_LEN"] == "12"
    assert winslow.api.get("/api/v1/projects/p/gate").status_code == 404
    # A named gate's card shows afterwards too, with the answers it was given.
    later = winslow.api.get("/api/v1/projects/p/gate", params={"stage": "review"}).json()
    assert {i["name"]: i["value"] for i in later["inputs"]}["MIN_LEN"] == "12"
    not_a_gate = winslow.api.get("/api/v1/projects/p/gate", params={"stage": "detect"})
    assert not_a_gate.status_code == 404
    assert not_a_gate.json()["detail"] == (
        "Stage 'detect' of project 'p' is no gate; its gates are: review."
    )


def test_resume_from_the_gate_stage_asks_too_and_answers_elsewhere_are_refused(
    winslow: Harness,
) -> None:
    at_the_gate(winslow)

    from_gate = winslow.api.post("/api/v1/projects/p/resume", json={"from_stage": "review"})
    from_detect = winslow.api.post(
        "/api/v1/projects/p/resume", json={"from_stage": "detect", "answers": {"MIN_LEN": 3}}
    )

    assert from_gate.json()["fields"] == {"answers.MIN_LEN": "an answer is required"}
    assert from_detect.status_code == 422
    assert "passes no gate" in from_detect.json()["detail"]
