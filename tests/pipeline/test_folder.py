"""The pipelines folder: broken files never hide good ones; saves are validated and atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from winslow.errors import ConflictError, NotFoundError, PipelineError, ValidationError
from winslow.pipeline.folder import PipelineFolder


def text_of(name: str, image: str = "cv:1") -> str:
    return f"name: {name}\nstages:\n  - name: detect\n    image: {image}\n"


@pytest.fixture
def folder(tmp_path: Path) -> PipelineFolder:
    return PipelineFolder(tmp_path / "pipelines")


def write(folder: PipelineFolder, file: str, text: str) -> Path:
    folder.path.mkdir(parents=True, exist_ok=True)
    path = folder.path / file
    path.write_text(text)
    return path


def test_broken_file_is_reported_beside_the_good_ones(folder: PipelineFolder):
    write(folder, "ulm.yaml", text_of("ulm"))
    write(folder, "broken.yaml", "name: broken\nstages:\n  - name: a\n    image: [cv\n")
    write(folder, "bonn.yml", text_of("bonn"))

    pipelines, errors = folder.load_all()

    assert sorted(pipelines) == ["bonn", "ulm"]
    assert list(errors) == ["broken.yaml"]
    (problem,) = errors["broken.yaml"].problems
    assert problem.file == str(folder.path / "broken.yaml")
    assert problem.line == 5


def test_second_file_with_the_same_pipeline_name_is_the_error(folder: PipelineFolder):
    write(folder, "a.yaml", text_of("ulm", image="first"))
    write(folder, "b.yaml", "# copy\n" + text_of("ulm", image="second"))

    pipelines, errors = folder.load_all()

    assert pipelines["ulm"].stage("detect").image == "first"
    assert str(errors["b.yaml"]) == (
        f"{folder.path / 'b.yaml'}:2:7: name: pipeline 'ulm' is also defined in a.yaml; "
        "pipeline names must be unique, so rename one or delete a file"
    )


def test_missing_folder_holds_no_pipelines(folder: PipelineFolder):
    assert folder.load_all() == ({}, {})


def test_other_files_and_dot_files_are_ignored(folder: PipelineFolder):
    write(folder, "ulm.yaml", text_of("ulm"))
    write(folder, "notes.txt", "not yaml: [")
    write(folder, ".ulm.yaml.swp.yaml", "not yaml: [")
    (folder.path / "sub.yaml").mkdir()

    assert folder.load_all()[1] == {}


def test_save_writes_name_yaml_that_loads_back(folder: PipelineFolder):
    path = folder.save("ulm", text_of("ulm"))

    assert path == folder.path / "ulm.yaml"
    assert path.read_text() == text_of("ulm")
    assert folder.read_text("ulm") == text_of("ulm")
    assert list(folder.load_all()[0]) == ["ulm"]
    assert [p.name for p in folder.path.iterdir()] == ["ulm.yaml"]  # no temporary left behind


def test_save_replaces_the_file_that_already_holds_the_pipeline(folder: PipelineFolder):
    write(folder, "handmade.yml", text_of("ulm", image="old"))

    path = folder.save("ulm", text_of("ulm", image="new"))

    assert path == folder.path / "handmade.yml"
    pipelines, errors = folder.load_all()
    assert pipelines["ulm"].stage("detect").image == "new"
    assert errors == {}


def test_save_of_invalid_text_raises_and_keeps_the_old_file(folder: PipelineFolder):
    folder.save("ulm", text_of("ulm", image="old"))

    with pytest.raises(PipelineError) as caught:
        folder.save("ulm", "name: ulm\nstages:\n  - name: detect\n    imgae: cv\n")

    assert str(caught.value).startswith("ulm.yaml:4:5: stages[detect].imgae: unknown key 'imgae'")
    assert folder.load_all()[0]["ulm"].stage("detect").image == "old"


def test_save_refuses_text_naming_another_pipeline(folder: PipelineFolder):
    with pytest.raises(ValidationError) as caught:
        folder.save("ulm", text_of("bonn"))

    assert str(caught.value) == (
        "The text names pipeline 'bonn' but is being saved as 'ulm'; make `name:` say 'ulm', "
        "or save it under 'bonn'."
    )
    assert not folder.path.exists()


def test_save_refuses_to_overwrite_a_file_holding_another_pipeline(folder: PipelineFolder):
    write(folder, "ulm.yaml", text_of("bonn"))

    with pytest.raises(ConflictError):
        folder.save("ulm", text_of("ulm"))

    assert folder.load_all()[0]["bonn"].name == "bonn"


def test_save_may_replace_a_broken_file_of_that_name(folder: PipelineFolder):
    write(folder, "ulm.yaml", "name: ulm\nstages: [\n")

    folder.save("ulm", text_of("ulm"))

    assert folder.load_all() == ({"ulm": folder.load_all()[0]["ulm"]}, {})


def test_names_that_are_not_file_safe_are_refused(folder: PipelineFolder):
    for name in ["../etc", ".hidden", "a/b", ""]:
        with pytest.raises(ValidationError):
            folder.save(name, text_of(name))
        with pytest.raises(ValidationError):
            folder.delete(name)


def test_delete_removes_the_pipeline_and_only_it(folder: PipelineFolder):
    folder.save("ulm", text_of("ulm"))
    folder.save("bonn", text_of("bonn"))

    folder.delete("ulm")

    assert list(folder.load_all()[0]) == ["bonn"]


def test_delete_of_an_unknown_pipeline_says_how_to_list_them(folder: PipelineFolder):
    with pytest.raises(NotFoundError) as caught:
        folder.delete("ulm")

    assert str(caught.value) == "No pipeline 'ulm'; `winslow pipeline list` shows them."


def test_broken_file_can_be_read_and_deleted_by_its_file_name(folder: PipelineFolder):
    write(folder, "ulm.yaml", "name: ulm\nstages: [\n")

    assert folder.read_text("ulm") == "name: ulm\nstages: [\n"
    folder.delete("ulm")

    assert folder.load_all() == ({}, {})
