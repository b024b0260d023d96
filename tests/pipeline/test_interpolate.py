"""`${NAME}` substitution: escapes, plain `$NAME` left alone, every missing name at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from winslow.errors import ValidationError
from winslow.pipeline.interpolate import (
    MissingVariableError,
    interpolate,
    interpolate_stage,
    missing_for_stage,
    node_literal,
    references,
    resolve_node_paths,
)
from winslow.pipeline.model import Stage


def test_references_leave_out_escapes_and_plain_dollars():
    text = "${MODEL} ${MODEL} $${HOME} $PATH ${WINSLOW_RUN} ${unclosed"

    assert references(text) == {"MODEL", "WINSLOW_RUN"}


def test_interpolate_substitutes_and_turns_escapes_into_literals():
    text = "--model ${MODEL} --cache $${HOME}/c --path $PATH"

    assert interpolate(text, {"MODEL": "yolo"}) == "--model yolo --cache ${HOME}/c --path $PATH"


def test_substituted_values_are_not_interpolated_again():
    assert interpolate("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_missing_names_are_all_reported_sorted():
    with pytest.raises(MissingVariableError) as caught:
        interpolate("${ZED} ${ALPHA} ${ZED} ${KNOWN}", {"KNOWN": "x"})

    assert caught.value.names == ["ALPHA", "ZED"]
    assert str(caught.value) == (
        "The text references variables without a value: ALPHA, ZED. Set them on the project, "
        "or give a default under `variables:` in the pipeline."
    )


def test_missing_variable_is_both_a_validation_error_and_a_key_error():
    with pytest.raises(ValidationError):
        interpolate("${A}", {})
    with pytest.raises(KeyError):
        interpolate("${A}", {})


STAGE = Stage(
    name="detect",
    command=["python", "detect.py", "--model", "${MODEL}", "--out", "${WINSLOW_WORKSPACE}"],
    env={"SITE": "${SITE}", "LITERAL": "$${SITE}"},
    inputs=["videos/${DAY}/"],
)


def test_interpolate_stage_substitutes_command_env_and_inputs():
    values = {"MODEL": "yolo", "WINSLOW_WORKSPACE": "/ws", "SITE": "ulm", "DAY": "0603"}

    command, env, inputs = interpolate_stage(STAGE, values)

    assert command == ["python", "detect.py", "--model", "yolo", "--out", "/ws"]
    assert env == {"SITE": "ulm", "LITERAL": "${SITE}"}
    assert inputs == ["videos/0603/"]
    assert STAGE.command is not None and STAGE.command[3] == "${MODEL}"  # the stage is untouched


def test_interpolate_stage_collects_every_missing_name_before_raising():
    with pytest.raises(MissingVariableError) as caught:
        interpolate_stage(STAGE, {"WINSLOW_WORKSPACE": "/ws"})

    assert caught.value.names == ["DAY", "MODEL", "SITE"]
    assert caught.value.stage == "detect"
    assert str(caught.value).startswith(
        "Stage 'detect' references variables without a value: DAY, MODEL, SITE."
    )


def test_missing_for_stage_is_sorted_and_empty_when_all_are_set():
    assert missing_for_stage(STAGE, {"SITE": "ulm"}) == ["DAY", "MODEL", "WINSLOW_WORKSPACE"]
    every = dict.fromkeys(["DAY", "MODEL", "SITE", "WINSLOW_WORKSPACE"], "")
    assert missing_for_stage(STAGE, every) == []


def test_stage_without_command_gets_an_empty_one():
    command, env, inputs = interpolate_stage(Stage(name="a", image="cv"), {})

    assert (command, env, inputs) == ([], {}, [])


# ---------------------------------------------------------------------------------------
# Node text: ${WINSLOW_WORKSPACE} and ${WINSLOW_INPUTS} resolved on the node, nothing else


def for_node(text: str, **values: str) -> str:
    """What the node makes of ``text`` written in a stage's command."""
    command, _, _ = interpolate_stage(Stage(name="s", command=[text]), values, for_node=True)
    return resolve_node_paths(command[0], "/ws", "/in")


@pytest.mark.parametrize(
    ("text", "final"),
    [
        ("${WINSLOW_WORKSPACE}/out", "/ws/out"),
        ("${WINSLOW_INPUTS}/clip.mp4", "/in/clip.mp4"),
        ("$${WINSLOW_WORKSPACE}/out", "${WINSLOW_WORKSPACE}/out"),
        ("$${WINSLOW_INPUTS}", "${WINSLOW_INPUTS}"),
        ("$$${WINSLOW_INPUTS}", "$${WINSLOW_INPUTS}"),
        ("$$$${WINSLOW_INPUTS}", "$$${WINSLOW_INPUTS}"),
        ("a$ ${WINSLOW_WORKSPACE}", "a$ /ws"),
        ("${WINSLOW_WORKSPACE}$${WINSLOW_WORKSPACE}", "/ws${WINSLOW_WORKSPACE}"),
        ("{WINSLOW_WORKSPACE} $HOME $${HOME}", "{WINSLOW_WORKSPACE} $HOME ${HOME}"),
        ("${V}", "${WINSLOW_WORKSPACE}"),
        ("${DOLLAR}${WINSLOW_WORKSPACE}", "$/ws"),
        ("${DOLLAR}${V}", "$${WINSLOW_WORKSPACE}"),
        ("${BRACE}${WINSLOW_INPUTS}${BRACE}", "{WINSLOW_INPUTS}/in{WINSLOW_INPUTS}"),
    ],
)
def test_only_a_reference_becomes_a_node_path(text, final):
    values = {"V": "${WINSLOW_WORKSPACE}", "DOLLAR": "$", "BRACE": "{WINSLOW_INPUTS}"}
    assert for_node(text, **values) == final


def test_for_node_env_is_node_text_and_inputs_keep_the_reference_as_written():
    stage = Stage(
        name="s",
        command=["run", "${WINSLOW_WORKSPACE}", "$${WINSLOW_INPUTS}"],
        env={"OUT": "${WINSLOW_WORKSPACE}/o", "LIT": "$${WINSLOW_WORKSPACE}"},
        inputs=["videos/${DAY}", "$${WINSLOW_INPUTS}"],
    )
    command, env, inputs = interpolate_stage(stage, {"DAY": "0603"}, for_node=True)

    assert command == ["run", "${WINSLOW_WORKSPACE}", "$${WINSLOW_INPUTS}"]
    assert env == {"OUT": "${WINSLOW_WORKSPACE}/o", "LIT": "$${WINSLOW_WORKSPACE}"}
    assert inputs == ["videos/0603", "${WINSLOW_INPUTS}"]
    with pytest.raises(MissingVariableError):
        interpolate_stage(stage, {"DAY": "0603"})  # without for_node they need values


def test_node_literal_and_resolve_node_paths_round_trip():
    for text in ["${WINSLOW_WORKSPACE}", "$${WINSLOW_INPUTS}", "x$$$${WINSLOW_WORKSPACE}y", "$"]:
        assert resolve_node_paths(node_literal(text), "/ws", "/in") == text
    # What a run spec held before: references resolve as they did.
    assert resolve_node_paths("${WINSLOW_WORKSPACE}:${WINSLOW_INPUTS}", "/w", "/i") == "/w:/i"


_PIECES = st.lists(
    st.one_of(
        st.sampled_from(["$", "$$", "{", "}", "WINSLOW_INPUTS", "x", "${", "{WINSLOW_WORKSPACE}"]),
        st.sampled_from(
            ["${WINSLOW_WORKSPACE}", "${WINSLOW_INPUTS}", "${V}", "$${WINSLOW_INPUTS}"]
        ),
    ),
    max_size=8,
)


@given(_PIECES, st.text(alphabet="${}WINSLOW_PUTSKACE", max_size=12))
def test_node_text_resolves_to_what_plain_substitution_gives(pieces, value):
    """Whatever the text and the values, the node ends with what substituting the paths
    as values would have given: references resolved, everything else literal."""
    text = "".join(pieces)
    paths = {"WINSLOW_WORKSPACE": "/ws", "WINSLOW_INPUTS": "/in"}
    if missing_for_stage(Stage(name="s", command=[text]), {"V": value, **paths}):
        return
    expected = interpolate(text, {"V": value, **paths})
    assert for_node(text, V=value) == expected
    assert resolve_node_paths(node_literal(value), "/ws", "/in") == value
