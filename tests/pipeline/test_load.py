"""Loading pipeline YAML: every problem at file:line:column, with a field path and words."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from winslow.errors import PipelineError
from winslow.pipeline.load import (
    MAX_DEPTH,
    MAX_NODES,
    load_pipeline_file,
    load_pipeline_text,
    load_pipeline_with_source,
)
from winslow.pipeline.model import WorkspaceMode


def problems_of(text: str) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline_text(dedent(text), "p.yaml")
    return [str(problem) for problem in caught.value.problems]


GOOD = """\
name: ulm
variables:
  MODEL: {default: yolov8}
stages:
  - name: detect
    image: cv:1
    command: [python, detect.py, --model, "${MODEL}"]
    requirements: {cpus: 4, memory: 8G, gpu: {count: 1, min_memory: 24G}}
    timeout: 2h
    env:
      DEBUG: yes
      ON: 1
  - name: track
    command: [python, track.py]
    workspace: fresh
"""


def test_valid_pipeline_loads_with_sizes_and_durations_parsed():
    pipeline = load_pipeline_text(GOOD)

    detect = pipeline.stage("detect")
    assert detect.requirements.memory == 8 * 1024
    assert detect.requirements.gpu.min_memory == 24 * 1024
    assert detect.timeout == 2 * 3600
    assert detect.env == {"DEBUG": "true", "ON": "1"}  # the key ON stays text, not True
    assert pipeline.stage("track").workspace is WorkspaceMode.FRESH
    assert pipeline.needs_of("track") == ["detect"]


def test_unknown_key_points_at_the_key_and_suggests_the_close_one():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            comand: [python, detect.py]
        """)

    assert problems == [
        "p.yaml:5:5: stages[detect].comand: unknown key 'comand' (did you mean 'command'?); "
        "expected one of: approvers, ask, checkpoint, command, confirmation, description, env, "
        "gate, image, inputs, "
        "log_parsers, name, needs, required_variables, requirements, retention, retry, sweep, "
        "timeout, when, workspace"
    ]


def test_unknown_key_without_a_close_match_only_lists_the_allowed_keys():
    problems = problems_of("""\
        name: ulm
        owner: anna
        stages: [{name: a, image: i}]
        """)

    assert problems == [
        "p.yaml:2:1: owner: unknown key 'owner'; expected one of: description, name, retention, "
        "stages, variables"
    ]


def test_string_where_a_list_is_expected_says_both_kinds():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            command: python detect.py
        """)

    assert problems == [
        "p.yaml:4:14: stages[detect].command: expected a list of strings, got a string"
    ]


def test_unquoted_number_in_a_command_suggests_quotes():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: wait
            command: [sleep, 10]
        """)

    assert problems == [
        "p.yaml:4:22: stages[wait].command[1]: expected a string, got the number 10; "
        "put it in quotes if it is meant as text"
    ]


def test_negative_cpus_is_located_at_the_value():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            requirements:
              cpus: -1
        """)

    assert problems == [
        "p.yaml:6:13: stages[detect].requirements.cpus: must be more than 0, got -1"
    ]


def test_negative_retries_say_the_lower_bound():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            retry: {on_failure: -1}
        """)

    assert problems == ["p.yaml:5:25: stages[detect].retry.on_failure: must be at least 0, got -1"]


def test_absurd_gpu_count_is_called_a_likely_typo():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            requirements:
              gpu:
                count: 1000
        """)

    assert problems == [
        "p.yaml:7:16: stages[detect].requirements.gpu.count: got 1000, more than the limit of "
        "64 GPUs; is this a typo?"
    ]


def test_yaml_syntax_error_is_located_where_the_parser_stopped():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            command: [python, detect.py
          - name: track
        """)

    assert problems == [
        "p.yaml:5:9: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 4)"
    ]


def test_tab_indentation_is_explained():
    problems = problems_of("name: ulm\nstages:\n\t- name: a\n")

    assert problems == [
        "p.yaml:3:1: invalid YAML: found character '\\t' that cannot start any token; "
        "indent YAML with spaces, not tabs"
    ]


def test_missing_stages_is_reported_at_the_top_of_the_file():
    problems = problems_of("name: ulm\n")

    assert problems == [
        "p.yaml:1:1: stages: missing required key 'stages'; a pipeline needs at least one stage"
    ]


def test_empty_stage_list_is_refused():
    problems = problems_of("name: ulm\nstages: []\n")

    assert problems == [
        "p.yaml:2:9: stages: a pipeline needs at least one stage; `stages` is empty"
    ]


def test_stage_without_a_name_is_shown_by_its_index():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
          - image: cv:1
            command: [track]
        """)

    assert problems == ["p.yaml:5:5: stages[1].name: missing required key 'name'"]


def test_stage_name_with_a_space_breaks_the_name_pattern():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: my detect
            image: cv:1
        """)

    assert problems == [
        "p.yaml:3:11: stages[0].name: 'my detect' is not a valid name; use letters, digits, "
        "'_', '.' and '-', starting with a letter or digit, at most 63 characters"
    ]


def test_misspelled_workspace_mode_lists_the_choices():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            workspace: fersh
        """)

    assert problems == [
        "p.yaml:5:16: stages[detect].workspace: expected one of: continue, fresh; got 'fersh' "
        "(did you mean 'fresh'?)"
    ]


def test_bad_size_keeps_the_models_own_message():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            requirements: {memory: lots}
        """)

    assert problems == [
        "p.yaml:5:28: stages[detect].requirements.memory: 'lots' is not a size; write a number "
        "with a unit B, K, M, G or T (powers of 1024: G, GB and GiB are all GiB), such as 512M, "
        "8G or 1.5GiB; a number alone is MiB"
    ]


def test_empty_file_says_what_a_pipeline_needs():
    assert problems_of("") == [
        "p.yaml: the file is empty; a pipeline needs at least `name` and `stages`"
    ]


def test_a_list_at_the_top_is_not_a_pipeline():
    assert problems_of("- name: detect\n") == [
        "p.yaml:1:1: the file must be a mapping with `name` and `stages` at the top, got a list"
    ]


def test_key_written_twice_is_reported_though_yaml_would_keep_the_last():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            image: cv:1
            image: cv:2
        """)

    assert problems == [
        "p.yaml:5:5: stages[detect].image: key 'image' is written twice in this mapping "
        "(first at line 4); remove one"
    ]


def test_merged_keys_may_be_overridden():
    pipeline = load_pipeline_text(
        dedent("""\
        name: ulm
        stages:
          - &base
            name: detect
            image: cv:1
            command: [run]
          - <<: *base
            name: track
        """)
    )

    assert [stage.name for stage in pipeline.stages] == ["detect", "track"]
    assert pipeline.stage("track").image == "cv:1"


def test_a_variable_written_as_its_value_shows_how_to_write_it():
    """Found by trying it: `RATE: "5"` got "expected a mapping, got a string" and no word
    of what the mapping holds."""
    problems = problems_of("""\
        name: ulm
        variables:
          RATE: "5"
          FAST: true
        stages: [{name: a, command: ["true"]}]
        """)

    assert problems == [
        "p.yaml:3:9: variables.RATE: expected a mapping, got '5'; a variable is written "
        '`RATE: {default: "5"}` (with `description` and `required: true` if it must be set)',
        "p.yaml:4:9: variables.FAST: expected a mapping, got the boolean true; a variable is "
        'written `FAST: {default: "true"}` (with `description` and `required: true` if it '
        "must be set)",
    ]


def test_impossible_date_is_reported_not_crashed_on():
    problems = problems_of("""\
        name: ulm
        description: 2024-13-45
        stages: [{name: a, image: i}]
        """)

    assert problems == [
        "p.yaml:2:14: description: '2024-13-45' is not a valid YAML !!timestamp; "
        "put it in quotes for text"
    ]


def test_alias_that_contains_itself_is_refused():
    assert problems_of("name: &a [*a]\n") == [
        "p.yaml:1:7: name[0]: an alias (*name) refers to a value that contains it"
    ]


def test_aliases_that_expand_too_far_are_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]

    with pytest.raises(PipelineError) as caught:
        load_pipeline_text("\n".join(lines))

    (problem,) = caught.value.problems
    assert f"expands to more than {MAX_NODES} values" in problem.message


def test_broken_command_does_not_also_count_as_missing():
    problems = problems_of("""\
        name: ulm
        stages:
          - name: detect
            command: run.sh
        """)

    assert problems == [
        "p.yaml:4:14: stages[detect].command: expected a list of strings, got a string"
    ]


def test_schema_and_semantic_problems_are_reported_together_in_reading_order():
    problems = problems_of("""\
        name: ulm
        variables:
          MODEL: {required: true, default: yolo}
        stages:
          - name: detect
            image: cv:1
            command: [python, detect.py, "${MODLE}"]
            requirements: {cpus: -1, gpu: {count: 1000}}
          - name: track
            imgae: cv:1
            command: [python, track.py]
            needs: [detect, trak]
          - name: detect
            image: cv:1
        """)

    assert problems == [
        "p.yaml:3:27: variables.MODEL.default: variable 'MODEL' is required and has a default; "
        "required variables have no default, so remove one of the two",
        "p.yaml:7:34: stages[detect].command[2]: stage 'detect' references ${MODLE}, but no "
        "variable 'MODLE' is declared (did you mean 'MODEL'?); declare it under `variables:`, "
        "or write '$${MODLE}' for a literal '${MODLE}'",
        "p.yaml:8:26: stages[detect].requirements.cpus: must be more than 0, got -1",
        "p.yaml:8:43: stages[detect].requirements.gpu.count: got 1000, more than the limit of "
        "64 GPUs; is this a typo?",
        "p.yaml:10:5: stages[track].imgae: unknown key 'imgae' (did you mean 'image'?); "
        "expected one of: approvers, ask, checkpoint, command, confirmation, description, env, "
        "gate, image, inputs, "
        "log_parsers, name, needs, required_variables, requirements, retention, retry, sweep, "
        "timeout, when, workspace",
        "p.yaml:12:21: stages[track].needs[1]: needs unknown stage 'trak' (did you mean "
        "'track'?); the stages are: detect, track",
        "p.yaml:13:11: stages[detect].name: stage name 'detect' is already used by the stage "
        "at line 5; stage names must be unique",
    ]


def test_problems_carry_their_position_as_attributes():
    with pytest.raises(PipelineError) as caught:
        load_pipeline_text("name: ulm\nstages:\n- {name: a, image: i, gate: maybe}\n", "x.yaml")

    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.column) == ("x.yaml", 3, 29)
    assert problem.field == "stages[a].gate"
    assert problem.message == "expected true or false, got 'maybe'"


def test_source_map_points_at_keys_and_values():
    _, source = load_pipeline_with_source(GOOD)

    assert source.key(("stages", 0, "timeout")) == (9, 5)
    assert source.value(("stages", 0, "timeout")) == (9, 14)
    assert source.value(("stages", 1)) == (13, 5)
    # Never written: the nearest written ancestor.
    assert source.value(("stages", 1, "retry", "on_lost")) == (13, 5)


def test_file_problems_name_the_path_as_given(tmp_path: Path):
    path = tmp_path / "ulm.yaml"
    path.write_text("name: ulm\n")

    with pytest.raises(PipelineError) as caught:
        load_pipeline_file(path)

    assert [p.file for p in caught.value.problems] == [str(path)]
    assert load_pipeline_file(_write(tmp_path / "good.yaml", GOOD)).name == "ulm"


def test_unreadable_and_non_utf8_files_are_pipeline_errors(tmp_path: Path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")

    with pytest.raises(PipelineError) as not_utf8:
        load_pipeline_file(latin)
    with pytest.raises(PipelineError) as missing:
        load_pipeline_file(tmp_path / "absent.yaml")

    assert str(not_utf8.value) == f"{latin}: the file is not UTF-8 text (byte 9); save it as UTF-8"
    assert str(missing.value) == (
        f"{tmp_path / 'absent.yaml'}: the file cannot be read: No such file or directory"
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("name: ulm\x01\n", "p.yaml:1:10", "U+0001 (a control character)"),
        ("name: ulm\r\nstages:\r\n  - name: a\x1b\n", "p.yaml:3:12", "U+001B"),
        ("name: ulm\ndescription: x\ud800\n", "p.yaml:2:15", "U+D800 (half of a surrogate"),
    ],
    ids=["first-line", "crlf", "surrogate"],
)
def test_characters_yaml_refuses_are_located(text: str, where: str, words: str) -> None:
    (problem,) = problems_of(text)

    assert problem.startswith(f"{where}: invalid YAML: {words}")
    assert "cannot appear in a YAML file; delete it" in problem


@pytest.mark.parametrize(
    "text",
    [
        "name: " + "[" * 1000 + "]" * 1000,
        "name:\n" + "".join("  " * depth + "- \n" for depth in range(1, 1000)),
        "".join("  " * depth + f"k{depth}:\n" for depth in range(1000)),
    ],
    ids=["flow", "block-list", "block-map"],
)
def test_deep_nesting_is_refused_before_the_stack_overflows(text: str) -> None:
    (problem,) = problems_of(text)

    assert f"values are nested more than {MAX_DEPTH} deep" in problem


def test_aliases_cannot_nest_deeper_than_the_file_may() -> None:
    text = "a: &a " + "[" * 20 + "1" + "]" * 20 + "\nb: " + "[" * 15 + "*a" + "]" * 15 + "\n"

    (problem,) = problems_of(text)

    assert f"aliases (*name) nest values more than {MAX_DEPTH} deep" in problem


def test_a_file_of_too_many_values_stops_composing_at_the_limit() -> None:
    text = "name: [" + "1, " * MAX_NODES + "1]\n"

    (problem,) = problems_of(text)

    assert problem.startswith("p.yaml:1:")
    assert problem.endswith(
        f"the file holds more than {MAX_NODES} values; a pipeline needs far fewer"
    )


def test_a_pipeline_may_not_define_winslow_variables() -> None:
    problems = problems_of("""\
        name: ulm
        variables:
          WINSLOW_WORKSPACE: {default: /data}
          winslow_mine: {default: ok}
        stages:
          - name: a
            command: [echo]
            sweep:
              over:
                WINSLOW_SEED: [1, 2]
        """)

    assert [p.split(": '")[0] for p in problems] == [
        "p.yaml:3:3: variables.WINSLOW_WORKSPACE",
        "p.yaml:10:9: stages[a].sweep.over.WINSLOW_SEED",
    ]
    assert "starts with WINSLOW_, which names Winslow's own variables" in problems[0]
