"""`${NAME}` substitution: escapes, plain `$NAME` left alone, every missing name at once."""

from __future__ import annotations

import pytest

from winslow.errors import ValidationError
from winslow.pipeline.interpolate import (
    MissingVariableError,
    interpolate,
    interpolate_stage,
    missing_for_stage,
    references,
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
