"""Pipeline definitions: list, show, validate, create or replace, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from winslow.api.access import (
    PipelineManager,
    PipelineReader,
    PipelineWriter,
    SignedIn,
    pipeline_exists,
    visible_pipelines,
)
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import (
    PipelinePublic,
    PipelinesPublic,
    PipelineSummary,
    PipelineText,
    Problem,
    ValidationPublic,
)
from winslow.api.routes import API_V1
from winslow.core.access import EVERYONE, Grant, Role, user_principal
from winslow.errors import NotFoundError, PipelineError
from winslow.pipeline.load import load_pipeline_text
from winslow.store import people

router = APIRouter(prefix=f"{API_V1}/pipelines", tags=["pipelines"])


def _problems(error: PipelineError) -> list[Problem]:
    return [Problem(**problem.__dict__) for problem in error.problems]


@router.get("", response_model=PipelinesPublic)
def list_pipelines(caller: SignedIn, context: ContextDep) -> PipelinesPublic:
    """The pipelines the caller may see, and every file that does not load."""
    good, broken = context.pipelines.load_all()
    shown = set(visible_pipelines(context, caller, good))
    good = {name: pipeline for name, pipeline in good.items() if name in shown}
    return PipelinesPublic(
        data=[
            PipelineSummary(
                name=p.name,
                description=p.description,
                stages=[s.name for s in p.stages],
                needs={s.name: p.needs_of(s.name) for s in p.stages},
            )
            for p in sorted(good.values(), key=lambda p: p.name)
        ],
        errors={file: _problems(error) for file, error in broken.items()},
    )


@router.post("/validate", response_model=ValidationPublic)
def validate_pipeline(
    _access: SignedIn, body: PipelineText, _user: CurrentUser
) -> ValidationPublic:
    """Check a definition without saving it; every problem is listed."""
    try:
        load_pipeline_text(body.text, "<request>")
    except PipelineError as error:
        return ValidationPublic(valid=False, problems=_problems(error))
    return ValidationPublic(valid=True, problems=[])


@router.get("/{name}", response_model=PipelinePublic)
def show_pipeline(
    _access: PipelineReader, name: str, context: ContextDep, _user: CurrentUser
) -> PipelinePublic:
    good, _ = context.pipelines.load_all()
    if name not in good:
        raise NotFoundError(f"No pipeline '{name}'; `winslow pipeline list` shows them.")
    return PipelinePublic(
        name=name,
        definition=good[name].model_dump(mode="json"),
        text=context.pipelines.read_text(name),
    )


@router.put("/{name}", response_model=PipelinePublic)
def apply_pipeline(
    access: PipelineWriter, name: str, body: PipelineText, context: ContextDep, user: CurrentUser
) -> PipelinePublic:
    """Create or replace the pipeline ``name``; refused with every problem if invalid.
    Who creates a pipeline owns it; every signed-in user may read and use it unless the
    owner takes ``*`` off its access."""
    created = not pipeline_exists(context, name)
    context.pipelines.save(name, body.text)
    if created and not people.get_access(context.store, "pipeline", name):
        # Shared by default, as the lab's pipelines folder is: everyone reads and uses it,
        # only its owner (and whom they grant) edits it.
        grants = [Grant(user_principal(user), Role.OWNER), Grant(EVERYONE, Role.PUBLIC)]
        people.set_access(context.store, "pipeline", name, grants)
    pipeline = load_pipeline_text(body.text, f"{name}.yaml")
    return PipelinePublic(name=name, definition=pipeline.model_dump(mode="json"), text=body.text)


@router.delete("/{name}", status_code=204)
def delete_pipeline(
    _access: PipelineManager, name: str, context: ContextDep, _user: CurrentUser
) -> Response:
    context.pipelines.delete(name)
    people.forget_access(context.store, "pipeline", name)
    return Response(status_code=204)
