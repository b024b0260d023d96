"""A project's ``pipelines/`` folder: one YAML file per pipeline, read and written whole.

Loading never lets one broken file hide the others: good pipelines come back by name, broken
files by file name with every problem. A pipeline is known by the ``name`` inside its file, so
two files claiming one name is an error of the second. Saves validate first and replace the
file atomically, so a reader sees the old text or the new, never half of one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from winslow.atomic import write_text_atomic
from winslow.errors import (
    ConflictError,
    NotFoundError,
    PipelineError,
    PipelineProblem,
    ValidationError,
)
from winslow.pipeline.load import load_pipeline_with_source, read_pipeline_file
from winslow.pipeline.model import NAME_PATTERN, Pipeline
from winslow.pipeline.validate import NAME_RULE

PIPELINE_SUFFIXES = (".yaml", ".yml")


@dataclass
class _Scan:
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    errors: dict[str, PipelineError] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    """The file each good pipeline came from, by pipeline name."""


class PipelineFolder:
    """The pipeline files of one folder; the folder need not exist until the first save."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_all(self) -> tuple[dict[str, Pipeline], dict[str, PipelineError]]:
        """Return the valid pipelines by name and the broken files' errors by file name.

        Files are read in name order; where two define one pipeline name, the later file is
        the broken one and its error names both files.
        """
        scan = self._scan()
        return scan.pipelines, scan.errors

    def files(self) -> dict[str, Path]:
        """Return the file each valid pipeline comes from, by pipeline name."""
        return dict(self._scan().files)

    def read_text(self, name: str) -> str:
        """Return the text of pipeline ``name``'s file, broken or not; raise ``NotFoundError``.

        Bytes that are not UTF-8 show as U+FFFD, so a broken file can still be fetched and fixed.
        """
        return self._file_of(name).read_text(encoding="utf-8", errors="replace")

    def save(self, pipeline_name: str, text: str) -> Path:
        """Validate ``text`` and write it as pipeline ``pipeline_name``; return the file written.

        The file is ``<name>.yaml``, or the file that already holds the pipeline (a hand-made
        ``<name>.yml``, say) so one pipeline never ends up in two files. Raises
        ``PipelineError`` for invalid text, ``ValidationError`` when the text's ``name`` is
        another, ``ConflictError`` when ``<name>.yaml`` holds a different valid pipeline.
        """
        _check_name(pipeline_name)
        scan = self._scan()
        target = scan.files.get(pipeline_name) or self.path / f"{pipeline_name}.yaml"
        pipeline, _ = load_pipeline_with_source(text, target.name)
        if pipeline.name != pipeline_name:
            raise ValidationError(
                f"The text names pipeline '{pipeline.name}' but is being saved as "
                f"'{pipeline_name}'; make `name:` say '{pipeline_name}', or save it under "
                f"'{pipeline.name}'."
            )
        holder = next((n for n, f in scan.files.items() if f == target), None)
        if holder is not None and holder != pipeline_name:
            raise ConflictError(
                f"{target.name} holds pipeline '{holder}'; rename that pipeline or its file "
                f"before saving '{pipeline_name}'."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text)
        return target

    def delete(self, name: str) -> None:
        """Delete pipeline ``name``'s file; raise ``NotFoundError`` if there is none."""
        self._file_of(name).unlink()

    def _scan(self) -> _Scan:
        scan = _Scan()
        for path in self._pipeline_files():
            try:
                pipeline, source = load_pipeline_with_source(read_pipeline_file(path), str(path))
            except PipelineError as exc:
                scan.errors[path.name] = exc
                continue
            first = scan.files.get(pipeline.name)
            if first is not None:
                line, column = source.value(("name",))
                message = (
                    f"pipeline '{pipeline.name}' is also defined in {first.name}; pipeline "
                    "names must be unique, so rename one or delete a file"
                )
                problem = PipelineProblem(str(path), line, column, "name", message)
                scan.errors[path.name] = PipelineError([problem])
                continue
            scan.pipelines[pipeline.name] = pipeline
            scan.files[pipeline.name] = path
        return scan

    def _pipeline_files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        # Dot files are skipped: editors' swap files and our own temporary files live there.
        return sorted(
            path
            for path in self.path.iterdir()
            if path.suffix in PIPELINE_SUFFIXES and not path.name.startswith(".") and path.is_file()
        )

    def _file_of(self, name: str) -> Path:
        """The file of pipeline ``name``: the valid one that defines it, else a broken file
        named after it."""
        _check_name(name)
        found = self._scan().files.get(name)
        if found is not None:
            return found
        for suffix in PIPELINE_SUFFIXES:
            candidate = self.path / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
        raise NotFoundError(f"No pipeline '{name}'; `winslow pipeline list` shows them.")


def _check_name(name: str) -> None:
    # The name becomes a file name: the pattern also keeps out '/', '..' and dot files.
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValidationError(f"'{name}' is not a valid pipeline name; {NAME_RULE}.")
