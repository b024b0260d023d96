"""Pause, resume or kill many projects in one request (the overview's bulk actions).

Each project is steered on its own, exactly as ``POST /projects/{ref}/pause`` (resume,
kill) would: one refusal does not undo or stop the others. The answer is 200 with one
result per project in the order asked, each carrying the status and ``{detail, code}``
that project's own request would have answered, so a person reads which succeeded and
which were refused and why.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from winslow.api.access import SignedIn, check_project
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.routes import API_V1
from winslow.core import commands
from winslow.core.access import Action
from winslow.core.states import ProjectState
from winslow.engine.transitions import apply_command
from winslow.errors import WinslowError

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])

MAX_BULK_PROJECTS = 500
"""Projects one bulk request may name (a page of the overview at most, and then some)."""


class BulkAction(str, Enum):
    PAUSE = "pause"
    """Let the running stages finish, then pause."""
    RESUME = "resume"
    """Go on from where the project stopped."""
    KILL = "kill"
    """Stop the running stages now; the project pauses when they have stopped."""


DECIDERS: dict[BulkAction, commands.Decider] = {
    BulkAction.PAUSE: lambda p, _pl, _r: commands.pause(p),
    BulkAction.RESUME: lambda p, pl, r: commands.resume(p, pl, r, None),
    BulkAction.KILL: lambda p, _pl, r: commands.kill(p, r),
}


class BulkCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: BulkAction
    projects: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]],
        Field(min_length=1, max_length=MAX_BULK_PROJECTS, description="Names or IDs."),
    ]


class BulkResult(BaseModel):
    """What became of one project."""

    project: str
    """As asked (a name or an ID)."""
    ok: bool
    status: int
    """The HTTP status the project's own request would have answered."""
    state: ProjectState | None = None
    """The project's state afterwards, when it was steered."""
    detail: str | None = None
    """Why it was refused, in words for a person."""
    code: str | None = None


class BulkResults(BaseModel):
    action: BulkAction
    data: list[BulkResult]
    succeeded: int
    refused: int


@router.post("/bulk", response_model=BulkResults)
def bulk_command(
    caller: SignedIn, body: BulkCommand, context: ContextDep, user: CurrentUser
) -> BulkResults:
    """Pause, resume or kill each named project; 200 with a result per project, each with
    the status its own request would have had (404 unknown or not yours to see, 403 not
    yours to steer, 409 refused)."""
    # Imported here: the app module imports every route module, this one included.
    from winslow.api.app import status_for

    decide = DECIDERS[body.action]
    results: list[BulkResult] = []
    for ref in dict.fromkeys(body.projects):  # a name given twice is steered once
        try:
            check_project(context, caller, ref, Action.STEER)
            project = apply_command(context.store, ref, decide, user)
        except WinslowError as exc:
            results.append(
                BulkResult(
                    project=ref, ok=False, status=status_for(exc), detail=exc.message, code=exc.code
                )
            )
        else:
            results.append(BulkResult(project=ref, ok=True, status=200, state=project.state))
    context.engine.wake()
    succeeded = sum(r.ok for r in results)
    return BulkResults(
        action=body.action,
        data=results,
        succeeded=succeeded,
        refused=len(results) - succeeded,
    )
