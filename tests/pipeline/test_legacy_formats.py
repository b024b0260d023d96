"""Import of the first Winslow's other shapes (plain-list YAML, 2019 TOML drafts) and of the
parts the record format's import used to get wrong: retention, order, `$$`, unset numbers,
and problems told at the original file's lines."""

from __future__ import annotations

import pytest

from winslow.errors import PipelineError
from winslow.pipeline.interpolate import interpolate
from winslow.pipeline.legacy import convert
from winslow.pipeline.load import load_pipeline_text

TOML_DRAFT = """\
[pipelineDefinition]
name = "counting"
description = "A draft of 2019"

[pipelineDefinition.userInput]
valueFor = ["VIDEO_IN"]

[[stageDefinition]]
name = "detect"

[stageDefinition.image]
name = "registry.local/detect:1"
args = ["detect", "--video", "$VIDEO_IN"]

[stageDefinition.requires]
ram = 4096

[stageDefinition.requires.gpu]
count = 1
vendor = "nvidia"

[stageDefinition.progress]
from-log = '([\\d]+)%'

[[stageDefinition]]
name = "check"
depends-on = ["detect"]

[stageDefinition.userInput]
confirmation = "Always"
value-for = ["THRESHOLD"]

[[stageDefinition]]
name = "count"
depends-on = ["check"]

[stageDefinition.image]
name = "registry.local/count:1"

[stageDefinition.env]
OUT = "counts/"

[stageDefinition.allow]
exit-codes = [3]
"""


def test_a_toml_draft_imports_with_depends_on_as_needs() -> None:
    conversion = convert(TOML_DRAFT, "draft.toml")
    assert conversion.yaml.startswith(
        "# Converted from draft.toml (a first-Winslow TOML draft of 2019)"
    )
    pipeline = load_pipeline_text(conversion.yaml, "converted.yaml")
    assert [s.name for s in pipeline.stages] == ["detect", "count"]
    assert pipeline.needs_of("count") == ["detect"]
    detect = pipeline.stage("detect")
    assert detect.requirements.memory == 4096
    assert detect.requirements.gpu.count == 1
    assert detect.command == ["detect", "--video", "$VIDEO_IN"]
    assert pipeline.variables["VIDEO_IN"].required is True
    count = pipeline.stage("count")
    # The image-less stage only asked a person: the stage after it asks instead.
    assert count.confirm.value == "always"
    assert count.required_variables == ["THRESHOLD"]
    assert count.env == {"OUT": "counts/"}
    notes = conversion.unmapped
    assert any(n.startswith("stage 'detect': progress") for n in notes)
    assert any(n.startswith("stage 'count': allow {'exit-codes': [3]}") for n in notes)
    assert any(n.startswith("stage 'check' has no image: it only asked a person") for n in notes)


def test_toml_that_is_no_draft_is_named_as_such() -> None:
    with pytest.raises(PipelineError) as caught:
        convert('title = "x"\n[owner]\nname = "me"\n', "other.toml")
    assert str(caught.value) == (
        "other.toml: this is TOML, but not a first-Winslow TOML draft (those have a "
        "[pipelineDefinition] table and [[stageDefinition]] tables)"
    )


def test_a_toml_draft_depending_on_an_unknown_stage_is_refused() -> None:
    text = '[[stageDefinition]]\nname = "a"\ndepends-on = ["nope"]\n'
    with pytest.raises(PipelineError) as caught:
        convert(text, "d.toml")
    assert "stage 'a': depends-on names unknown stage 'nope'" in str(caught.value)


PLAIN_LIST = """\
name: "plain"
userInput:
  confirmation: Never
  environment: ["CAMERA"]
markers: ["old"]
stages:
  - name: "detect"
    type: Execution
    image: {name: "registry.local/detect:1", args: ["detect"]}
    requirements: {cpu: 2, megabytesOfRam: 1024, gpu: {count: 0, vendor: "", support: []}}
    userInput: {confirmation: Once, environment: ["LEVEL"]}
    tags: ["winslow:node:gpu1"]
    nextStages: ["pick"]
  - name: "pick"
    type: XOrGateway
    nextStages: ["report"]
  - name: "report"
    image: {name: "registry.local/report:1"}
"""


def test_the_older_plain_list_format_imports() -> None:
    conversion = convert(PLAIN_LIST, "plain.yml")
    assert conversion.yaml.startswith(
        "# Converted from plain.yml (a first-Winslow pipeline of the older plain-list format)"
    )
    pipeline = load_pipeline_text(conversion.yaml, "converted.yaml")
    assert [s.name for s in pipeline.stages] == ["detect", "report"]
    assert pipeline.needs_of("report") == ["detect"]
    detect = pipeline.stage("detect")
    assert detect.requirements.cpus == 2
    assert detect.requirements.memory == 1024
    assert detect.requirements.gpu.count == 0
    assert detect.confirm.value == "once"
    assert detect.required_variables == ["LEVEL"]
    assert pipeline.variables["CAMERA"].required is True
    notes = conversion.unmapped
    assert any(n.startswith("the pipeline's markers ['old'] are not carried over") for n in notes)
    assert any(n.startswith("stage 'detect': requirements.tags") for n in notes)
    assert any(n.startswith("XOR gateway 'pick'") for n in notes)


def test_a_plain_list_stage_of_an_unknown_type_is_refused_at_its_line() -> None:
    text = "name: p\nstages:\n  - name: a\n    type: Loop\n"
    with pytest.raises(PipelineError) as caught:
        convert(text, "p.yml")
    problem = caught.value.problems[0]
    assert (problem.file, problem.line) == ("p.yml", 4)
    assert "stages[0] has the type 'Loop'" in problem.message


def test_deletion_policy_and_discardable_become_retention() -> None:
    text = """
name: kept
deletionPolicy:
  keepWorkspaceOfFailedStage: false
  alwaysKeepMostRecentWorkspace: true
  numberOfWorkspacesOfSucceededStagesToKeep: 3
stages:
  - Worker: {id: "1", name: a, image: {name: img}, discardable: true, nextStages: ["2"]}
  - Worker: {id: "2", name: b, image: {name: img}}
"""
    conversion = convert(text, "kept.yml")
    pipeline = load_pipeline_text(conversion.yaml, "converted.yaml")
    assert pipeline.retention is not None
    assert (pipeline.retention.keep_succeeded, pipeline.retention.keep_failed) == (3, False)
    discardable = pipeline.retention_of("a")
    assert discardable is not None
    assert (discardable.keep_succeeded, discardable.keep_failed) == (0, False)
    assert pipeline.retention_of("b") == pipeline.retention
    assert not any("no counterpart" in n or "discardable" in n for n in conversion.unmapped)
    assert any(
        "retention keeps the latest 3 succeeded runs of each stage" in n
        for n in conversion.unmapped
    )


def test_a_default_deletion_policy_keeps_everything_without_a_note() -> None:
    text = """
name: all
deletionPolicy: {keepWorkspaceOfFailedStage: true, alwaysKeepMostRecentWorkspace: false}
stages:
  - Worker: {name: a, image: {name: img}}
"""
    conversion = convert(text, "all.yml")
    assert "retention" not in conversion.pipeline
    assert conversion.unmapped == [
        "the pipeline's deletionPolicy.alwaysKeepMostRecentWorkspace false is not carried "
        "over: Winslow always keeps the workspace of each stage's current and latest run"
    ]


def test_stages_without_next_stages_become_a_chain_in_file_order() -> None:
    text = """
name: ordered
stages:
  - Worker: {name: fetch, image: {name: img}}
  - Worker: {name: detect, image: {name: img}}
  - Worker: {name: report, image: {name: img}}
"""
    conversion = convert(text, "ordered.yml")
    pipeline = load_pipeline_text(conversion.yaml, "converted.yaml")
    assert pipeline.needs_of("fetch") == []
    assert pipeline.needs_of("detect") == ["fetch"]
    assert pipeline.needs_of("report") == ["detect"]
    assert conversion.unmapped == [
        "no stage names nextStages, so the stages run one after another in the file's order, "
        "as the first Winslow ran them: fetch -> detect -> report"
    ]
    single = convert("name: one\nstages:\n  - Worker: {name: a, image: {name: i}}\n", "1.yml")
    assert single.unmapped == []


def test_dollars_reach_the_stage_as_the_first_winslow_passed_them() -> None:
    text = """
name: dollars
environment:
  GREETING: "hi ${USER} $${Z}"
stages:
  - Worker:
      name: a
      image: {name: img, args: ["echo", "${X}", "$${Z}", "$$${Y}", "$HOME"]}
      environment: {LITERAL: "$${Z}"}
"""
    conversion = convert(text, "dollars.yml")
    pipeline = load_pipeline_text(conversion.yaml, "converted.yaml")
    stage = pipeline.stage("a")
    assert [interpolate(part, {}) for part in stage.command or []] == [
        "echo",
        "${X}",
        "$${Z}",
        "$$${Y}",
        "$HOME",
    ]
    assert interpolate(stage.env["LITERAL"], {}) == "$${Z}"
    # A variable's value is never read for references, so it is kept as it was written.
    assert pipeline.variables["GREETING"].default == "hi ${USER} $${Z}"


def test_unset_numbers_of_the_first_winslow_ask_for_nothing() -> None:
    text = """
name: unset
stages:
  - Worker:
      name: a
      image: {name: img}
      requirements: {cpus: -1, megabytesOfRam: 0, gpu: {count: -1}}
"""
    conversion = convert(text, "unset.yml")
    assert "requirements" not in conversion.pipeline["stages"][0]
    load_pipeline_text(conversion.yaml, "converted.yaml")


def test_problems_point_at_the_original_files_lines() -> None:
    text = """\
name: lines
stages:
  - Worker:
      name: a
      image:
        name: img
      requirements:
        cpus: "lots"
        megabytesOfRam: 2048
      environment:
        "1BAD": x
  - Worker:
      name: b
      image: {name: img}
      requirements:
        megabytesOfRam: 99999999999
"""
    with pytest.raises(PipelineError) as caught:
        convert(text, "lines.yml")
    where = [(p.file, p.line, p.field) for p in caught.value.problems]
    assert ("lines.yml", 8, "stages[a].requirements.cpus") in where
    assert ("lines.yml", 16, "stages[b].requirements.memory") in where
    assert all(p.file == "lines.yml" for p in caught.value.problems)


def test_problems_of_a_plain_list_file_point_at_its_lines() -> None:
    text = "name: p\nstages:\n  - name: a\n    image: {name: i}\n    requirements:\n      cpu: x\n"
    with pytest.raises(PipelineError) as caught:
        convert(text, "p.yml")
    first = caught.value.problems[0]
    assert (first.file, first.line, first.field) == ("p.yml", 6, "stages[a].requirements.cpus")


def test_problems_of_a_toml_draft_point_at_the_stage_table() -> None:
    text = """\
[[stageDefinition]]
name = "a"
[stageDefinition.image]
name = "i"

[[stageDefinition]]
name = "b"
depends-on = ["a"]
[stageDefinition.image]
name = "i"
[stageDefinition.requires]
ram = "lots"
"""
    with pytest.raises(PipelineError) as caught:
        convert(text, "d.toml")
    first = caught.value.problems[0]
    assert (first.file, first.line, first.field) == ("d.toml", 6, "stages[b].requirements.memory")
