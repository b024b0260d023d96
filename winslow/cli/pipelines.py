"""``winslow pipeline ...``: check, convert, apply, list, show and delete pipeline definitions.

Checking and converting happen here, on the person's machine, before anything reaches the
server: ``validate`` prints every problem with its file, line and field and exits 1 if
there is one, and ``apply`` refuses a file that would not load.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from winslow.cli.helpers import JsonOpt, WinslowTyper, api_client, done, emit, err, fail, out
from winslow.errors import PipelineError, PipelineProblem

pipeline_app = WinslowTyper(no_args_is_help=True, help="Pipeline definitions.")


def _problem_words(problem: dict[str, Any]) -> str:
    """``file:line:column: field: message`` of one problem as the API reports it."""
    where = problem["file"]
    if problem.get("line") is not None:
        where += f":{problem['line']}"
        if problem.get("column") is not None:
            where += f":{problem['column']}"
    field = f" {problem['field']}:" if problem.get("field") else ""
    return f"{where}:{field} {problem['message']}"


def stage_graph_lines(stages: list[str], needs: dict[str, list[str]] | None) -> list[str]:
    """Draw a pipeline's stages as text: each line a chain of stages that run one after the
    other, ``detect → track (after prepare)``, so branches and joins show as they are and a
    plain chain stays one line. Without ``needs`` (an older server) the stages in order."""
    if needs is None:
        return [" → ".join(stages)]
    dependents = {name: [s for s in stages if name in needs.get(s, [])] for name in stages}
    chains: list[list[str]] = []
    chain_ending_in: dict[str, list[str]] = {}
    for stage in stages:
        before = needs.get(stage, [])
        chain = chain_ending_in.pop(before[0], None) if len(before) == 1 else None
        if chain is None or dependents[before[0]] != [stage]:
            chain = []
            chains.append(chain)
        chain.append(stage)
        chain_ending_in[stage] = chain
    lines = []
    for chain in chains:
        before = needs.get(chain[0], [])
        after = f" (after {', '.join(before)})" if before else ""
        lines.append(" → ".join(chain) + (after or (" (at start)" if len(chains) > 1 else "")))
    return lines


def _refuse(exc: PipelineError) -> typer.Exit:
    """Print each problem of a file that did not load; return the exit (code 1) to raise."""
    for problem in exc.problems:
        err.print(f"error: {problem}", markup=False, highlight=False)
    return typer.Exit(1)


@pipeline_app.command("validate")
def pipeline_validate(
    files: Annotated[list[Path], typer.Argument(help="Pipeline YAML files.")],
    as_json: JsonOpt = False,
) -> None:
    """Check pipeline files; print every problem with file, line and field.

    Every file is checked, a missing one too; exits 1 if any has a problem.
    """
    from winslow.pipeline.load import load_pipeline_file

    report: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        if not file.is_file():
            what = "a folder, not a file" if file.is_dir() else "no such file"
            report[str(file)] = [PipelineProblem(str(file), None, None, "", what).__dict__]
            continue
        try:
            load_pipeline_file(file)
            report[str(file)] = []
        except PipelineError as exc:
            report[str(file)] = [p.__dict__ for p in exc.problems]
    bad = any(report.values())
    if as_json:
        emit(report, True, print)
    else:
        for checked, problems in report.items():
            if problems:
                for problem in problems:
                    err.print(f"error: {_problem_words(problem)}", markup=False, highlight=False)
            else:
                out.print(f"{checked}: valid", markup=False)
    if bad:
        raise typer.Exit(1)


@pipeline_app.command("list")
def pipeline_list(as_json: JsonOpt = False) -> None:
    """List the pipelines, and the files that failed to load."""
    with api_client() as api:
        data = api.get("/pipelines")
    emit(data, as_json, _show_pipelines)


def _show_pipelines(data: dict[str, Any]) -> None:
    """The pipelines as a table (or why there is none), then each broken file's problems."""
    if data["data"]:
        table = Table("NAME", "STAGES", "DESCRIPTION", box=None)
        for p in data["data"]:
            drawing = "\n".join(stage_graph_lines(p["stages"], p.get("needs")))
            table.add_row(p["name"], drawing, p["description"])
        out.print(table)
    elif not data["errors"]:
        # A bare header read like a command that had failed.
        out.print("No pipelines yet; `winslow pipeline apply FILE` adds one.", markup=False)
    else:
        out.print("No pipeline loads; fix the files below.", markup=False)
    for file, problems in data["errors"].items():
        for problem in problems:
            err.print(f"warning: {file} is broken: {_problem_words(problem)}", markup=False)


@pipeline_app.command("show")
def pipeline_show(name: str, as_json: JsonOpt = False) -> None:
    """Show a pipeline's definition."""
    with api_client() as api:
        data = api.get(f"/pipelines/{name}")
    emit(
        data,
        as_json,
        lambda d: out.print(
            d.get("text") or json.dumps(d["definition"], indent=2), markup=False, highlight=False
        ),
    )


@pipeline_app.command("apply")
def pipeline_apply(
    file: Path,
    name: Annotated[str | None, typer.Option(help="Name; default: the file's `name:`.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or replace a pipeline from a YAML file (validated first)."""
    from winslow.pipeline.load import load_pipeline_file

    try:
        pipeline = load_pipeline_file(file)
    except PipelineError as exc:
        raise _refuse(exc) from None
    with api_client() as api:
        data = api.put(f"/pipelines/{name or pipeline.name}", {"text": file.read_text()})
    emit(data, as_json, lambda d: out.print(f"pipeline '{d['name']}' applied", markup=False))


@pipeline_app.command("import")
def pipeline_import(
    file: Annotated[Path, typer.Argument(help="A pipeline file of the first Winslow.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the YAML here, not to stdout.")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Also apply it, like `winslow pipeline apply`.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON only: the YAML (unless --output), warnings, applied."
        ),
    ] = False,
) -> None:
    """Convert a first-Winslow pipeline file to Winslow's format; warn about what is lost."""
    from winslow.pipeline.legacy import convert
    from winslow.pipeline.load import read_pipeline_file

    if not file.is_file():
        fail(f"No file '{file}'.")
    try:
        conversion = convert(read_pipeline_file(file), str(file))
    except PipelineError as exc:
        raise _refuse(exc) from None
    for sentence in conversion.unmapped:
        err.print(f"warning: {sentence}", markup=False, highlight=False)
    if output is None and not as_json:
        sys.stdout.write(conversion.yaml)
    elif output is not None:
        output.write_text(conversion.yaml, encoding="utf-8")
        err.print(f"wrote {output}", markup=False, highlight=False)
    if apply:
        name = conversion.pipeline["name"]
        with api_client() as api:
            data = api.put(f"/pipelines/{name}", {"text": conversion.yaml})
        err.print(f"pipeline '{data['name']}' applied", markup=False, highlight=False)
    if as_json:
        report = {
            "name": conversion.pipeline["name"],
            "yaml": conversion.yaml if output is None else None,
            "output": None if output is None else str(output),
            "warnings": list(conversion.unmapped),
            "applied": apply,
        }
        emit(report, True, print)


@pipeline_app.command("delete")
def pipeline_delete(name: str, as_json: JsonOpt = False) -> None:
    """Delete a pipeline definition (projects keep the definition they follow)."""
    with api_client() as api:
        api.delete(f"/pipelines/{name}")
    done({"name": name, "deleted": True}, as_json, f"pipeline '{name}' deleted")
