"""Import of first-Winslow pipeline files: stages, needs through gateways, and honest notes."""

from __future__ import annotations

import pytest
import yaml

from winslow.errors import PipelineError
from winslow.pipeline.legacy import convert
from winslow.pipeline.load import load_pipeline_text
from winslow.pipeline.model import Confirmation

# The Worker item is verbatim from the first Winslow's StageWorkerDefinitionTests
# (testWithGpuRequirements), with `nextStages` added to link it into a pipeline.
FIRST_WINSLOW = """
id: "this-should-be-a-uuid"
name: "Traffic Count"
description: "Detect, then track and count in parallel."
userInput:
  requiredEnvVariables: ["KEY_A"]
environment:
  FPS: "25"
deletionPolicy:
  keepWorkspaceOfFailedStage: false
  numberOfWorkspacesOfSucceededStagesToKeep: 2
stages:
  - Worker:
      id: "prepare-id"
      name: "Prepare"
      image:
        name: "registry.local/prep:1"
        args: ["python3", "prep.py", "--video", "${VIDEO}"]
        shmMegabytes: 512
      requirements:
        cpus: 2
        megabytesOfRam: 2048
      environment:
        LEVEL: 3
      nextStages: ["split-id"]
  - AndGateway:
      id: "split-id"
      name: "Split"
      gatewaySubType: SPLITTER
      nextStages: ["70a70ea0-f726-49d0-8863-a4a697bb67ff", "count-id"]
  - Worker:
      id: "70a70ea0-f726-49d0-8863-a4a697bb67ff"
      name: "The name of the stage"
      image:
        name: "hello-world"
      requirements:
        megabytesOfRam: 5120
        gpu:
          count: 4
          vendor: "nvidia"
          support: ["cuda", "vulkan"]
      nextStages: ["join-id"]
  - Worker:
      id: "count-id"
      name: "Count"
      image: {name: "registry.local/count:2"}
      userInput:
        confirmation: ONCE
        requiredEnvVariables: ["CAMERA_HEIGHT"]
      logParsers:
        - {matcher: "loss=(\\\\d+)", destination: "loss.csv", formatter: "$1",
           type: "regex-matcher/csv"}
        - {matcher: "acc=(\\\\d+)", destination: "acc.csv", formatter: "$1",
           type: "regex-matcher/csv"}
      nextStages: ["join-id"]
  - AndGateway:
      id: "join-id"
      name: "Join"
      gatewaySubType: MERGER
      nextStages: ["pick-id"]
  - XorGateway:
      id: "pick-id"
      name: "Pick"
      gatewaySubType: SPLITTER
      conditions: ['{"==": [{"var": "MODE"}, "fast"]}', '{"==": [{"var": "MODE"}, "full"]}']
      nextStages: ["fast-id", "Report"]
  - Worker:
      id: "fast-id"
      name: "Fast"
      image: {name: "registry.local/report:1", args: ["report", "--fast"]}
      userInput: {confirmation: ALWAYS}
  - Worker:
      name: "Report"
      image: {name: "registry.local/report:1"}
      privileged: true
"""


@pytest.fixture(scope="module")
def converted():
    return convert(FIRST_WINSLOW, "traffic.yml")


def stage(conversion, name):
    return next(s for s in conversion.pipeline["stages"] if s["name"] == name)


def test_import_of_a_first_winslow_pipeline_with_a_gateway_and_a_gpu_stage(converted) -> None:
    pipeline = load_pipeline_text(converted.yaml, "converted.yaml")
    assert pipeline.name == "Traffic-Count"
    assert [s.name for s in pipeline.stages] == [
        "Prepare",
        "The-name-of-the-stage",
        "Count",
        "Fast",
        "Report",
    ]
    gpu_stage = pipeline.stage("The-name-of-the-stage")
    assert gpu_stage.image == "hello-world"
    assert gpu_stage.requirements.memory == 5120
    assert gpu_stage.requirements.gpu.count == 4
    assert gpu_stage.requirements.gpu.model is None
    # The AND split fans out, the AND join waits for both, the XOR split's branches both run.
    assert pipeline.needs_of("Prepare") == []
    assert pipeline.needs_of("The-name-of-the-stage") == ["Prepare"]
    assert pipeline.needs_of("Count") == ["Prepare"]
    assert pipeline.needs_of("Fast") == ["The-name-of-the-stage", "Count"]
    assert pipeline.needs_of("Report") == ["The-name-of-the-stage", "Count"]
    # Every stage says what it needs, so the file reads the same whatever its order.
    assert all("needs" in s for s in converted.pipeline["stages"])


def test_import_maps_image_args_requirements_and_env(converted) -> None:
    prepare = stage(converted, "Prepare")
    assert prepare["image"] == "registry.local/prep:1"
    assert prepare["command"] == ["python3", "prep.py", "--video", "$${VIDEO}"]
    assert prepare["requirements"] == {"cpus": 2, "memory": 2048}
    assert prepare["env"] == {"LEVEL": "3"}
    assert stage(converted, "Fast")["command"] == ["report", "--fast"]


def test_import_maps_user_input_to_confirmation_and_variables(converted) -> None:
    pipeline = load_pipeline_text(converted.yaml, "converted.yaml")
    count = pipeline.stage("Count")
    assert count.confirm is Confirmation.ONCE
    assert count.required_variables == ["CAMERA_HEIGHT"]
    assert pipeline.stage("Fast").confirm is Confirmation.ALWAYS
    assert pipeline.stage("Report").confirm is Confirmation.NEVER
    assert pipeline.variables["CAMERA_HEIGHT"].required is True
    assert pipeline.variables["KEY_A"].required is True
    assert pipeline.variables["FPS"].default == "25"
    assert pipeline.variables["FPS"].required is False


def test_import_turns_log_parsers_into_series_with_named_groups(converted) -> None:
    count = load_pipeline_text(converted.yaml, "converted.yaml").stage("Count")
    assert [(p.name, p.pattern) for p in count.log_parsers] == [
        ("loss", r"loss=(?P<loss>\d+)"),
        ("acc", r"acc=(?P<acc>\d+)"),
    ]


def test_import_names_every_part_it_could_not_map(converted) -> None:
    notes = converted.unmapped
    assert (
        "stage 'Count': logParsers became log_parsers loss, acc: their regex groups are now "
        "series (API, CSV, console charts); the CSV formatters and files (written to loss.csv, "
        "acc.csv) are not kept"
    ) in notes
    xor = [n for n in notes if n.startswith("XOR gateway 'Pick'")]
    assert len(xor) == 1
    assert '{"==": [{"var": "MODE"}, "fast"]}' in xor[0]
    assert "every branch now runs after it" in xor[0]
    assert "`when:` condition" in xor[0]
    assert any(n.startswith("stage 'Prepare': image.shmMegabytes (512 MiB") for n in notes)
    assert any(n.startswith("stage 'Prepare': image.args keeps ${VIDEO}") for n in notes)
    assert any(
        n.startswith("stage 'The name of the stage': requirements.gpu.support ['cuda', 'vulkan']")
        for n in notes
    )
    assert any(
        n.startswith("stage 'The name of the stage' is named 'The-name-of-the-stage'")
        for n in notes
    )
    assert any(n.startswith("stage 'Report': privileged is not carried over") for n in notes)
    assert any(n.startswith("the pipeline's deletionPolicy kept the workspaces") for n in notes)
    # A vendor of 'nvidia' and the AND gateways lose nothing, so they are not mentioned.
    assert not any("vendor" in n or "Split" in n or "Join" in n for n in notes)
    assert notes[0] == (
        "the pipeline 'Traffic Count' is named 'Traffic-Count' now: Winslow pipeline names use "
        "letters, digits, '_', '.' and '-' only"
    )
    assert len(notes) == 9


def test_import_yaml_starts_with_where_it_came_from_and_what_was_lost(converted) -> None:
    first = converted.yaml.splitlines()[0]
    assert first.startswith("# Converted from traffic.yml (a first-Winslow pipeline)")
    assert "#  - stage 'Count': logParsers" in converted.yaml
    assert yaml.safe_load(converted.yaml) == converted.pipeline


def test_import_links_a_stage_without_id_by_its_name() -> None:
    text = """
name: two
stages:
  - Worker: {name: a, image: {name: img}, nextStages: [b]}
  - Worker: {name: b, image: {name: img}}
"""
    conversion = convert(text, "two.yml")
    assert [s["needs"] for s in conversion.pipeline["stages"]] == [[], ["a"]]
    assert conversion.unmapped == []


def test_import_orders_stages_by_their_links_not_the_file() -> None:
    text = """
name: backwards
stages:
  - Worker: {id: "2", name: second, image: {name: img}}
  - Worker: {id: "1", name: first, image: {name: img}, nextStages: ["2"]}
"""
    conversion = convert(text, "backwards.yml")
    assert [s["name"] for s in conversion.pipeline["stages"]] == ["first", "second"]


def test_import_dedupes_stage_names() -> None:
    text = """
name: dup
stages:
  - Worker: {id: "1", name: "Run it", image: {name: img}, nextStages: ["2"]}
  - Worker: {id: "2", name: "Run-it", image: {name: img}}
"""
    conversion = convert(text, "dup.yml")
    assert [s["name"] for s in conversion.pipeline["stages"]] == ["Run-it", "Run-it-2"]
    assert conversion.pipeline["stages"][1]["needs"] == ["Run-it"]


def test_import_refuses_an_unknown_next_stage_id() -> None:
    text = """
name: broken
stages:
  - Worker: {id: "a-id", name: a, image: {name: img}, nextStages: ["nope-id"]}
"""
    with pytest.raises(PipelineError) as caught:
        convert(text, "broken.yml")
    message = str(caught.value)
    assert message.startswith("broken.yml: ")
    assert "Worker 'a': nextStages names unknown stage id 'nope-id'" in message
    assert "'a-id'" in message


def test_import_refuses_a_cycle() -> None:
    text = """
name: loop
stages:
  - Worker: {id: "1", name: a, image: {name: img}, nextStages: ["g"]}
  - AndGateway: {id: "g", name: gate, nextStages: ["2"]}
  - Worker: {id: "2", name: b, image: {name: img}, nextStages: ["1"]}
"""
    with pytest.raises(PipelineError) as caught:
        convert(text, "loop.yml")
    assert "nextStages form a cycle through 'a', 'gate', 'b'" in str(caught.value)


def test_import_refuses_text_that_is_not_yaml_naming_the_line() -> None:
    text = "name: x\nstages:\n  - Worker: {name: a\n  - Worker: b\n"
    with pytest.raises(PipelineError) as caught:
        convert(text, "bad.yml")
    problem = caught.value.problems[0]
    assert problem.file == "bad.yml"
    assert problem.line == 4
    assert problem.message.startswith("invalid YAML:")


@pytest.mark.parametrize(
    "text",
    ["just text", "- Worker: {name: a}", "name: x\nstages: {a: 1}", "name: x\nstages: [{Job: {}}]"],
)
def test_import_refuses_a_file_without_a_list_of_stages(text) -> None:
    with pytest.raises(PipelineError) as caught:
        convert(text, "odd.yml")
    assert str(caught.value).startswith("odd.yml: ")


def test_import_refuses_what_winslow_would_not_accept_at_the_original_line() -> None:
    text = """
name: huge
stages:
  - Worker: {name: a, image: {name: img}, requirements: {gpu: {count: 1000}}}
"""
    with pytest.raises(PipelineError) as caught:
        convert(text, "huge.yml")
    files = [p.file for p in caught.value.problems]
    assert files == ["huge.yml", "huge.yml"]
    assert (caught.value.problems[0].line, caught.value.problems[0].column) == (4, 64)
    assert "requirements.gpu.count" in caught.value.problems[0].field
    assert "does not validate" in caught.value.problems[-1].message


def test_java_log_parser_regexes_become_python_ones_with_named_groups() -> None:
    from winslow.pipeline.legacy import _python_regex

    assert _python_regex(r"x=(\d+)\((\d)\)", "speed") == r"x=(?P<speed_1>\d+)\((?P<speed_2>\d)\)"
    assert _python_regex(r"b=(?<bee>\d+) [(]x(?:y)", "m") == r"b=(?P<bee>\d+) [(]x(?:y)"
    assert _python_regex(r"(?<=a)done", "v") == r"(?P<v>(?<=a)done)"
