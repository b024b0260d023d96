"""Cross-field checks: stage names, needs, cycles, variable references, names a shell takes."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import pytest

from winslow.errors import PipelineError, PipelineProblem
from winslow.pipeline.load import load_pipeline_text
from winslow.pipeline.model import Pipeline
from winslow.pipeline.validate import field_path, in_reading_order, semantic_problems


def pipeline(*stages: dict[str, Any], variables: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline.model_validate(
        {"name": "ulm", "variables": variables or {}, "stages": list(stages)}
    )


def messages(value: Pipeline) -> list[str]:
    return [f"{p.field}: {p.message}" for p in semantic_problems(value)]


def located(text: str) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline_text(dedent(text), "p.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_sound_pipeline_has_no_problems():
    value = pipeline(
        {"name": "detect", "image": "cv", "command": ["run", "${MODEL}", "$${HOME}"]},
        {"name": "track", "command": ["track", "${WINSLOW_WORKSPACE}"], "workspace": "fresh"},
        {"name": "report", "image": "cv", "needs": ["detect", "track"]},
        variables={"MODEL": {"default": "yolo"}},
    )

    assert semantic_problems(value) == []


def test_first_stage_may_continue_a_workspace_it_has_none_of():
    assert messages(pipeline({"name": "a", "image": "cv", "workspace": "continue"})) == []


def test_duplicate_stage_name_points_at_the_second():
    assert located("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
          - name: detect
            image: cv:2
        """) == [
        "p.yaml:5:11: stages[detect].name: stage name 'detect' is already used by the stage "
        "at line 3; stage names must be unique"
    ]


def test_unknown_need_suggests_the_close_stage_and_lists_all():
    assert located("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
          - name: track
            image: cv:1
            needs: [detcet]
        """) == [
        "p.yaml:7:13: stages[track].needs[0]: needs unknown stage 'detcet' (did you mean "
        "'detect'?); the stages are: detect, track"
    ]


def test_stage_that_needs_itself_is_refused():
    value = pipeline({"name": "a", "image": "cv"}, {"name": "b", "image": "cv", "needs": ["b"]})

    assert messages(value) == ["stages[b].needs[0]: stage 'b' needs itself; remove 'b'"]


def test_cycle_in_needs_is_named_at_the_needs_key():
    assert located("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            needs: [report]
          - name: track
            image: cv:1
          - name: report
            image: cv:1
        """) == [
        "p.yaml:5:5: stages[detect].needs: needs form a cycle: detect → report → track → "
        "detect; each waits for the next, so none can start"
    ]


def test_two_separate_cycles_are_each_reported():
    value = pipeline(
        {"name": "a", "image": "cv", "needs": ["b"]},
        {"name": "b", "image": "cv", "needs": ["a"]},
        {"name": "c", "image": "cv", "needs": ["d"]},
        {"name": "d", "image": "cv", "needs": ["c"]},
    )

    assert messages(value) == [
        "stages[a].needs: needs form a cycle: a → b → a; each waits for the next, so none can "
        "start",
        "stages[c].needs: needs form a cycle: c → d → c; each waits for the next, so none can "
        "start",
    ]


def test_fan_in_without_a_cycle_is_fine():
    value = pipeline(
        {"name": "a", "image": "cv", "needs": []},
        {"name": "b", "image": "cv", "needs": []},
        {"name": "c", "image": "cv", "needs": ["a", "b"]},
        {"name": "d", "image": "cv"},
    )

    assert messages(value) == []


def test_stage_with_neither_image_nor_command_is_refused():
    value = pipeline({"name": "a", "image": "cv"}, {"name": "b", "command": []})

    assert messages(value) == [
        "stages[b]: stage 'b' has neither image nor command; give it at least one"
    ]


def test_undeclared_variable_in_command_is_located_and_named():
    assert located("""\
        name: ulm
        variables:
          MODEL: {default: yolo}
        stages:
          - name: detect
            command: [python, detect.py, --weights, "${WEIGHTS}"]
        """) == [
        "p.yaml:6:45: stages[detect].command[3]: stage 'detect' references ${WEIGHTS}, but no "
        "variable 'WEIGHTS' is declared; declare it under `variables:`, or write '$${WEIGHTS}' "
        "for a literal '${WEIGHTS}'"
    ]


def test_undeclared_variables_in_env_and_inputs_are_reported_too():
    value = pipeline(
        {
            "name": "detect",
            "image": "cv",
            "env": {"SITE": "${SITE}", "TEXT": "$${NOT_A_REFERENCE}"},
            "inputs": ["videos/${DAY}/", "models/${WINSLOW_PROJECT}"],
        }
    )

    assert [m.split(",")[0] for m in messages(value)] == [
        "stages[detect].env.SITE: stage 'detect' references ${SITE}",
        "stages[detect].inputs[0]: stage 'detect' references ${DAY}",
    ]


def test_unknown_winslow_name_is_not_a_builtin():
    value = pipeline({"name": "a", "command": ["echo", "${WINSLOW_RUNS}"]})

    assert messages(value) == [
        "stages[a].command[1]: stage 'a' references ${WINSLOW_RUNS}, but no variable "
        "'WINSLOW_RUNS' is declared (did you mean 'WINSLOW_RUN'?); declare it under "
        "`variables:`, or write '$${WINSLOW_RUNS}' for a literal '${WINSLOW_RUNS}'"
    ]


def test_reference_that_is_not_a_name_is_refused():
    value = pipeline({"name": "a", "command": ["echo", "${ MODEL }"]})

    assert messages(value) == [
        "stages[a].command[1]: '${ MODEL }' is not a valid variable reference; use at most "
        "128 letters, digits and '_', not starting with a digit, or write '$${ MODEL }' for a "
        "literal '${ MODEL }'"
    ]


def test_required_variable_with_a_default_points_at_the_default():
    assert located("""\
        name: ulm
        variables:
          SITE:
            required: true
            default: ulm
        stages: [{name: a, image: cv}]
        """) == [
        "p.yaml:5:5: variables.SITE.default: variable 'SITE' is required and has a default; "
        "required variables have no default, so remove one of the two"
    ]


def test_env_key_a_shell_refuses_points_at_the_key():
    assert located("""\
        name: ulm
        stages:
          - name: a
            image: cv
            env:
              MODEL-DIR: /models
        """) == [
        "p.yaml:6:7: stages[a].env.MODEL-DIR: 'MODEL-DIR' is not a valid environment variable "
        "name; use at most 128 letters, digits and '_', not starting with a digit"
    ]


def test_variable_name_a_shell_refuses_is_reported():
    value = pipeline({"name": "a", "image": "cv"}, variables={"2FAST": {}, "ok_name": {}})

    assert messages(value) == [
        "variables.2FAST: '2FAST' is not a valid variable name; use at most 128 letters, "
        "digits and '_', not starting with a digit"
    ]


def test_field_path_prefers_stage_names_and_quotes_odd_keys():
    names = ["detect", "bad name"]

    assert field_path(("stages", 0, "requirements", "gpu", "count"), names) == (
        "stages[detect].requirements.gpu.count"
    )
    assert field_path(("stages", 1, "env", "a.b"), names) == "stages[1].env['a.b']"
    assert field_path(("stages", 5, "command", 2), names) == "stages[5].command[2]"
    assert field_path(()) == ""


def test_problems_sort_by_position_with_unlocated_last():
    late = PipelineProblem("f", 9, 1, "", "late")
    early = PipelineProblem("f", 2, 5, "", "early")
    nowhere = PipelineProblem("f", None, None, "", "nowhere")

    assert in_reading_order([nowhere, late, early, late]) == [early, late, nowhere]


def test_cycle_through_a_long_chain_is_found_without_hitting_recursion_limits():
    stages = [{"name": f"s{i}", "image": "cv"} for i in range(3000)]
    stages[0]["needs"] = ["s2999"]

    (problem,) = semantic_problems(pipeline(*stages))

    assert problem.field == "stages[s0].needs"
    assert problem.message.startswith("needs form a cycle: s0 → s2999 → s2998 → ")


def test_gate_and_another_confirmation_contradict_and_say_where():
    assert located("""\
        name: ulm
        stages:
          - name: review
            image: cv:1
            gate: true
            confirmation: once
            required_variables: [CAMERA_HEIGHT, 9LIVES]
        """) == [
        "p.yaml:6:5: stages[review].confirmation: stage 'review' has `gate: true` "
        "(confirmation always) and `confirmation: once`; keep one of them",
        "p.yaml:7:41: stages[review].required_variables[1]: '9LIVES' is not a valid variable "
        "name; use at most 128 letters, digits and '_', not starting with a digit",
    ]


def test_unknown_confirmation_mode_lists_the_three():
    problems = located("""\
        name: ulm
        stages:
          - name: review
            image: cv:1
            confirmation: sometimes
        """)
    assert len(problems) == 1
    assert problems[0].startswith("p.yaml:5:19: stages[review].confirmation: ")
    assert "expected one of: never, once, always; got 'sometimes'" in problems[0]


# --- GPU model patterns: Go RE2, as Nomad's regexp constraint compiles them ----------------


def test_gpu_model_with_look_ahead_is_located_and_says_nomad_refuses_it():
    """Nomad compiles a constraint's pattern with Go's regexp (RE2: no look-around, no
    back-references), hashicorp/nomad nomad/structs/structs.go ``Constraint.Validate``
    (``regexp.Compile``), and refuses the job at register time; the pipeline says so first."""
    assert located("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            requirements:
              gpu:
                count: 1
                model: "A100(?!-40GB)"
        """) == [
        "p.yaml:8:16: stages[detect].requirements.gpu.model: 'A100(?!-40GB)' uses a "
        "negative look-ahead '(?!', which Nomad's regular expressions (Go RE2) do not have; "
        "write the pattern without it"
    ]


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        ("(?=A)A100", "a look-ahead '(?='"),
        ("(?<=RTX )4090", "a look-behind '(?<='"),
        ("(?<!GTX )1080", "a negative look-behind '(?<!'"),
        (r"(A)\1", r"a back-reference '\1'"),
        ("(?P<m>A)(?P=m)", "a back-reference '(?P=m)'"),
        ("A1+0+", None),
        ("A10*+", "a possessive quantifier '*+'"),
        ("A10++", "a possessive quantifier '++'"),
        ("A10?+", "a possessive quantifier '?+'"),
        ("A10{2}+", "a possessive quantifier '{2}+'"),
        ("(?>A100)", "an atomic group '(?>'"),
        ("(A)?(?(1)B|C)", "a conditional '(?('"),
        ("(?#note)A100", "a comment group '(?#'"),
        ("(?x)A 100", "the flag 'x' in '(?x)'"),
        ("(?a)A100", "the flag 'a' in '(?a)'"),
        (r"A100\Z", r"'\Z' (Go writes '\z')"),
        ("A{1001}", "a repeat count above 1000 '{1001}'"),
        (r"[\d]+0", None),
        (r"\b(A100|H100)\b", None),
        ("(?i)rtx 40[0-9]0", None),
        ("(?P<gen>A|H)100", None),
        (r"A\(100\)", None),
        (r"[(?=]", None),
        ("A{2,}", None),
    ],
)
def test_gpu_model_constructs_go_refuses_are_named(pattern, construct):
    """Go's regexp/syntax (RE2) refuses each named construct that Python's re accepts;
    the rest compile in both, so the local backend and Nomad read the pattern alike."""
    value = pipeline({"name": "detect", "image": "cv", "requirements": {"gpu": {"model": pattern}}})
    problems = messages(value)
    if construct is None:
        assert problems == []
    else:
        assert problems == [
            f"stages[detect].requirements.gpu.model: {pattern!r} uses {construct}, which "
            "Nomad's regular expressions (Go RE2) do not have; write the pattern without it"
        ]
