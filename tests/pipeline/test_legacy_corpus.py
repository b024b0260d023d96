"""Every first-Winslow pipeline of the corpus imports, validates and applies through the API,
or is refused with its reason (the corpus's README says how each file states which)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.winslow import Harness
from winslow.errors import PipelineError
from winslow.pipeline.legacy import convert
from winslow.pipeline.load import load_pipeline_text

CORPUS = Path(__file__).parent / "legacy_corpus"
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".yml", ".toml"))
_EXPECT = re.compile(r"# expect: (?:applies; stages: (?P<stages>.+)|refused: (?P<reason>.+))")


def test_the_corpus_holds_every_format_and_record() -> None:
    names = " ".join(p.name for p in FILES)
    for part in ("record_", "plain_list", "toml_draft", "refused_"):
        assert part in names
    text = "\n".join(p.read_text(encoding="utf-8") for p in FILES)
    for record in (
        "Worker:",
        "XorGateway:",
        "AndGateway:",
        "logParsers:",
        "charts:",
        "userInput:",
        "deletionPolicy:",
        "environment:",
        "discardable:",
    ):
        assert record in text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_first_winslow_pipeline_applies_or_is_refused_with_its_reason(
    path: Path, winslow: Harness
) -> None:
    expect = _EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert expect is not None, f"{path.name} does not start with '# expect: ...'"
    text = path.read_text(encoding="utf-8")
    if expect["reason"]:
        with pytest.raises(PipelineError) as caught:
            convert(text, path.name)
        assert expect["reason"] in str(caught.value)
        return

    conversion = convert(text, path.name)
    pipeline = load_pipeline_text(conversion.yaml, "converted.yaml")
    stages = [name.strip() for name in expect["stages"].split(",")]
    assert [s.name for s in pipeline.stages] == stages
    assert conversion.yaml.startswith(f"# Converted from {path.name} (a first-Winslow ")

    winslow.apply_pipeline(conversion.yaml, pipeline.name)
    shown = winslow.api.get(f"/api/v1/pipelines/{pipeline.name}")
    assert shown.status_code == 200, shown.text
    assert [s["name"] for s in shown.json()["definition"]["stages"]] == stages
    project = winslow.create(f"from-{path.stem}".replace("_", "-"), pipeline.name)
    assert project["pipeline"] == pipeline.name
