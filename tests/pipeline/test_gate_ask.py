"""A gate's `ask:` block: typed inputs, a description quoting results, files to review.
Declarations are checked with file, line and field; answers are checked against them."""

from __future__ import annotations

from textwrap import dedent

import pytest

from winslow.errors import PipelineError
from winslow.pipeline.gate import (
    AnswersError,
    GateAsk,
    check_answers,
    fill_description,
    review_matches,
)
from winslow.pipeline.load import load_pipeline_text

HEAD = """\
name: p
stages:
  - name: detect
    image: cv
  - name: review
    image: cv
    gate: true
    ask:
"""


def ask_text(body: str) -> str:
    return HEAD + "".join("      " + line + "\n" for line in dedent(body).splitlines())


def located(body: str, tail: str = "") -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline_text(ask_text(body) + tail, "p.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_a_sound_ask_block_loads_with_its_types():
    pipeline = load_pipeline_text(
        ask_text("""\
            description: "Found **{{ results.detect.n }}**."
            inputs:
              - name: MIN_LEN
                type: number
                min: 2
                max: 50
                default: 8
                help: Shortest track.
              - name: MODE
                type: choice
                choices: [fast, 2]
                default: fast
              - {name: DRAW, type: boolean, default: true}
              - {name: NOTE}
            review: ["frames/*.jpg", detections.csv]
            """)
        + '  - name: track\n    image: cv\n    env: {M: "${MIN_LEN}"}\n',
        "p.yaml",
    )

    ask = pipeline.stage("review").ask
    assert ask is not None
    assert [(i.name, i.type.value, i.required) for i in ask.inputs] == [
        ("MIN_LEN", "number", False),
        ("MODE", "choice", False),
        ("DRAW", "boolean", False),
        ("NOTE", "string", True),
    ]
    assert ask.inputs[0].default_text() == "8"
    assert ask.inputs[1].choices == ["fast", "2"]  # YAML's numbers are choices as text
    assert ask.inputs[2].default_text() == "true"
    assert ask.review == ["frames/*.jpg", "detections.csv"]


def test_contradicting_inputs_are_each_located():
    assert located("""\
        inputs:
          - name: MIN
            type: number
            min: 5
            max: 1
          - name: MODE
            type: choice
            choices: [a, b]
            default: c
          - name: 1X
          - name: MIN
            type: boolean
            default: "yes"
          - name: SIZE
            type: string
            min: 3
          - name: KIND
            type: choice
        """) == [
        "p.yaml:13:16: stages[review].ask.inputs[0].max: max 1 is below min 5",
        "p.yaml:17:20: stages[review].ask.inputs[1].default: default 'c' is not one of the "
        "choices: a, b",
        "p.yaml:18:17: stages[review].ask.inputs[2].name: '1X' is not a valid variable name; "
        "use at most 128 letters, digits and '_', not starting with a digit",
        "p.yaml:19:17: stages[review].ask.inputs[3].name: gate 'review' asks 'MIN' twice",
        "p.yaml:21:20: stages[review].ask.inputs[3].default: expected true or false, got 'yes'",
        "p.yaml:24:16: stages[review].ask.inputs[4].min: `min` applies to a number; 'SIZE' is "
        "a string",
        "p.yaml:26:11: stages[review].ask.inputs[5].type: choice 'KIND' has no `choices`; list "
        "what it may be",
    ]


def test_unknown_type_and_key_are_schema_errors_with_their_place():
    assert located("""\
        inputs:
          - name: K
            type: colour
            hlep: typo
        """) == [
        "p.yaml:11:17: stages[review].ask.inputs[0].type: expected one of: string, number, "
        "boolean, choice; got 'colour'",
        "p.yaml:12:11: stages[review].ask.inputs[0].hlep: unknown key 'hlep' (did you mean "
        "'help'?); expected one of: choices, default, help, label, max, min, name, type",
    ]


def test_review_paths_stay_inside_the_workspace():
    assert located('review: ["../secrets", "/etc/passwd"]') == [
        "p.yaml:9:15: stages[review].ask.review: review path '../secrets' must be a path "
        "inside the workspace, relative and without '..'"
    ]


def test_pool_entries_stay_inside_the_pool_and_name_declared_variables():
    assert located('review: ["pool:../up.mp4", "pool:${VIDEO}"]') == [
        "p.yaml:9:15: stages[review].ask.review: review path 'pool:../up.mp4' must be a path "
        "inside the resource pool, relative and without '..'"
    ]
    assert located('review: ["pool:${VIDEO}"]') == [
        "p.yaml:9:16: stages[review].ask.review[0]: stage 'review' references ${VIDEO}, but "
        "no variable 'VIDEO' is declared; declare it under `variables:`, or write '$${VIDEO}' "
        "for a literal '${VIDEO}'"
    ]


def test_description_may_only_quote_results_of_stages_before_the_gate():
    assert located(
        'description: "{{ results.track.n }} and {{ results.detect.n }} {{ results.detcet.n }}"',
        "  - name: track\n    image: cv\n",
    ) == [
        "p.yaml:9:20: stages[review].ask.description: the description quotes results of "
        "unknown stage 'detcet' (did you mean 'detect'?)",
        "p.yaml:9:20: stages[review].ask.description: the description quotes results of "
        "stage 'track', which need not have run before 'review'; add 'track' to its needs "
        "(or to a stage it needs)",
    ]
    assert located('description: "{{ oops"')[0].startswith(
        "p.yaml:9:20: stages[review].ask.description: stage 'review': the description is not "
        "a valid template (line 1)"
    )


def test_ask_without_a_gate_is_refused():
    text = "name: p\nstages:\n  - name: a\n    image: cv\n    ask: {description: hi}\n"
    with pytest.raises(PipelineError) as caught:
        load_pipeline_text(text, "p.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "p.yaml:5:5: stages[a].ask: stage 'a' asks (`ask:`) but never waits for a person; add "
        "`gate: true` (or `confirmation: once`), or remove `ask:`"
    ]


ASK = GateAsk.model_validate(
    {
        "inputs": [
            {"name": "MIN_LEN", "type": "number", "min": 2, "max": 50},
            {"name": "MODE", "type": "choice", "choices": ["fast", "careful"], "default": "fast"},
            {"name": "DRAW", "type": "boolean"},
            {"name": "SCORE", "type": "number", "default": 0.25},
        ]
    }
)


def test_answers_become_text_and_defaults_fill_the_rest():
    assert check_answers("review", ASK, {"MIN_LEN": "12", "DRAW": "yes"}) == {
        "MIN_LEN": "12",
        "MODE": "fast",
        "DRAW": "true",
        "SCORE": "0.25",
    }
    assert check_answers("review", ASK, {"MIN_LEN": 2.5, "DRAW": False})["MIN_LEN"] == "2.5"


def test_an_earlier_answer_counts_for_a_left_out_one():
    values = check_answers("review", ASK, {}, previous={"MIN_LEN": "9", "MODE": "careful"})
    assert (values["MIN_LEN"], values["MODE"]) == ("9", "careful")


def test_every_wrong_answer_is_reported_under_its_field():
    with pytest.raises(AnswersError) as caught:
        check_answers(
            "review",
            ASK,
            {"MIN_LEN": "1", "MODE": "slow", "DRAW": 3, "SCORE": "nan", "X": "1"},
        )
    assert caught.value.fields == {
        "answers.X": "gate 'review' asks no 'X'; it asks MIN_LEN, MODE, DRAW, SCORE",
        "answers.MIN_LEN": "must be at least 2, got 1",
        "answers.MODE": "expected one of fast, careful; got 'slow'",
        "answers.DRAW": "expected true or false, got 3",
        "answers.SCORE": "expected a finite number, got 'nan'",
    }
    assert caught.value.message.startswith("The answers to gate 'review' are not complete")


def test_description_fills_results_and_marks_missing_values():
    text = "{{ results.detect.n }} cars, {{ results.detect.nope }}, {{ vars.MODE }}"
    assert fill_description(text, {"detect": {"n": 4}}, {"MODE": "fast"}) == (
        "4 cars, (no value), fast"
    )


def test_review_patterns_match_in_their_order_without_repeats():
    paths = ["frames/b.jpg", "frames/a.jpg", "detections.csv", "notes.txt"]
    assert review_matches(["frames/*.jpg", "*.csv", "frames/a.jpg"], paths, 10) == [
        "frames/a.jpg",
        "frames/b.jpg",
        "detections.csv",
    ]
    assert review_matches(["*"], paths, 2) == ["detections.csv", "frames/a.jpg"]
