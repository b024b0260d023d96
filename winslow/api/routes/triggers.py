"""Project tokens, and triggering a project from outside with one.

A project token belongs to one project and carries capabilities; ``trigger`` lets a script
resume the project, or redo a stage and what follows, with one ``POST`` and the token in
``X-Winslow-Trigger-Token``. It is a different kind of token from the API's bearer
tokens on purpose: it works on ``/trigger`` of its own project and nowhere else, and a
bearer token or console session never triggers. Only the token's SHA-256 is stored;
``store.project_token`` compares it in constant time. Every trigger goes through
``apply_command`` as ``trigger:<token name>``, so it lands in the history like a person's
command, with the script's comment.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from winslow.api.access import ProjectManager
from winslow.api.deps import ContextDep, CurrentUser, session_secret
from winslow.api.models import (
    ProjectTokenCreate,
    ProjectTokenCreated,
    ProjectTokenPublic,
    ProjectTokensPublic,
    TriggerBody,
    TriggerPublic,
)
from winslow.api.routes import API_V1
from winslow.core import commands
from winslow.core.models import Project, Run
from winslow.engine.transitions import apply_command
from winslow.errors import AuthError, ForbiddenError, NotFoundError, ValidationError
from winslow.pipeline.model import NAME_PATTERN, Pipeline

log = logging.getLogger(__name__)

router = APIRouter(prefix=f"{API_V1}/projects", tags=["triggers"])

TRIGGER_HEADER = "X-Winslow-Trigger-Token"
"""The header that carries a project token to ``POST /projects/{ref}/trigger``."""

CAPABILITIES = ("trigger",)
"""What a project token may be allowed to do: ``trigger`` resumes or redoes stages."""


def _check_capabilities(capabilities: list[str]) -> list[str]:
    allowed = ", ".join(CAPABILITIES)
    if not capabilities:
        raise ValidationError(f"Give the token at least one capability; allowed: {allowed}.")
    for capability in capabilities:
        if capability not in CAPABILITIES:
            raise ValidationError(
                f"Unknown capability '{capability}'; a project token may have: {allowed}."
            )
    return sorted(set(capabilities))


@router.post("/{ref}/tokens", response_model=ProjectTokenCreated, status_code=201)
def create_token(
    _access: ProjectManager,
    ref: str,
    body: ProjectTokenCreate,
    context: ContextDep,
    user: CurrentUser,
) -> ProjectTokenCreated:
    """Create a project token; the answer holds the token, shown this once."""
    if not re.fullmatch(NAME_PATTERN, body.name):
        raise ValidationError(
            f"{body.name!r} cannot name a token: use 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    capabilities = _check_capabilities(body.capabilities)
    project = context.store.get_project(ref)
    token = context.store.create_project_token(project.id, body.name, capabilities, actor=user)
    created = next(t for t in context.store.list_project_tokens(project.id) if t.name == body.name)
    return ProjectTokenCreated(
        name=created.name,
        capabilities=list(created.capabilities),
        token=token,
        created_at=created.created_at,
        project=project.id,
    )


@router.get("/{ref}/tokens", response_model=ProjectTokensPublic)
def list_tokens(
    _access: ProjectManager, ref: str, context: ContextDep, _user: CurrentUser
) -> ProjectTokensPublic:
    """The project's tokens, revoked ones included; never the tokens themselves."""
    project = context.store.get_project(ref)
    return ProjectTokensPublic(
        data=[
            ProjectTokenPublic(
                name=t.name,
                capabilities=list(t.capabilities),
                created_at=t.created_at,
                revoked=t.revoked,
                revoked_at=t.revoked_at,
            )
            for t in context.store.list_project_tokens(project.id)
        ]
    )


@router.delete("/{ref}/tokens/{name}", status_code=204)
def revoke_token(
    _access: ProjectManager, ref: str, name: str, context: ContextDep, user: CurrentUser
) -> Response:
    """Revoke a project token at once (revoking it again changes nothing)."""
    project = context.store.get_project(ref)
    context.store.revoke_project_token(project.id, name, actor=user)
    return Response(status_code=204)


@router.post("/{ref}/trigger", response_model=TriggerPublic)
def trigger(
    ref: str,
    request: Request,
    context: ContextDep,
    token: Annotated[str | None, Header(alias=TRIGGER_HEADER)] = None,
    body: TriggerBody | None = None,
) -> TriggerPublic:
    """Resume the project; with ``from_stage``, redo that stage and what follows it.

    Needs a token of this project with the ``trigger`` capability in
    ``X-Winslow-Trigger-Token``; a bearer token or console session is refused. A command
    the project's state refuses (a stage runs now) is a 409 with the reason.
    """
    if not token:
        if request.headers.get("authorization") or session_secret(request):
            raise AuthError(
                f"A trigger needs a project trigger token in {TRIGGER_HEADER}; an API token "
                "or console session does not trigger. `winslow project token create` makes one."
            )
        raise AuthError(
            f"This endpoint needs a project trigger token in {TRIGGER_HEADER}; "
            "`winslow project token create` makes one."
        )
    refused = AuthError(
        f"The trigger token is not valid for project '{ref}': it is wrong, revoked, or another "
        "project's (or there is no such project). "
        f"`winslow project token list {ref}` shows the project's tokens."
    )
    try:
        project = context.store.get_project(ref)
    except NotFoundError:
        # The same answer as for a wrong token: without a valid token, nobody learns
        # which project names exist.
        raise refused from None
    found = context.store.project_token(project.id, token.strip())
    if found is None:
        log.info("project %s: trigger refused: no valid token given", project.name)
        raise refused
    if "trigger" not in found.capabilities:
        raise ForbiddenError(
            f"Token '{found.name}' of project '{project.name}' may not trigger (it may: "
            f"{', '.join(found.capabilities) or 'nothing'}); create one with --capability trigger."
        )
    from_stage = body.from_stage if body else None
    comment = body.comment.strip() if body else ""
    said: list[str] = []

    def decide(p: Project, pipeline: Pipeline, runs: list[Run]) -> commands.Change:
        change = commands.resume(p, pipeline, runs, from_stage)
        message = change.message + (f"; comment: {comment}" if comment else "")
        said.append(message)
        data = {**change.data, "trigger": found.name, "comment": comment}
        return dataclasses.replace(change, message=message, data=data)

    after = apply_command(context.store, project.id, decide, f"trigger:{found.name}")
    context.engine.wake()
    return TriggerPublic(
        project=after.name, state=after.state, state_reason=after.state_reason, message=said[-1]
    )
