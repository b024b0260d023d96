"""Who may call which operation: the dependencies routes declare, and the OpenAPI marks.

Every operation below ``/api/v1/`` declares what it needs by one dependency of this
module (``ProjectSteerer``, ``AdminCaller``, ...): the dependency finds the caller's role
(``core/access.py`` decides) and refuses with 403, or with 404 where the caller may not
even know the project exists. ``mark_operations`` then writes each operation's need into
the OpenAPI document as ``x-winslow-access``, which the endpoint-by-role matrix test reads,
and ``tests/api/test_access_matrix.py`` checks that no operation is left without one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from winslow.api.deps import ContextDep, CurrentCaller, current_caller
from winslow.core.access import Action, Role, Scope, permits, refusal, role_on
from winslow.errors import ForbiddenError, NotFoundError
from winslow.store import people
from winslow.store.tokens import Caller

if TYPE_CHECKING:
    from winslow.api.context import AppContext
    from winslow.core.models import Project

ACCESS_KEY = "x-winslow-access"


@dataclass(frozen=True)
class ProjectAccess:
    """The project a request acts on, and the caller's role on it: what
    ``check_project`` (404 where the caller may not see it, 403 where they may not do the
    action) returns."""

    project: Project
    role: Role
    caller: Caller


@dataclass(frozen=True)
class PipelineAccess:
    name: str
    role: Role
    caller: Caller


def _labelled(label: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.access_label = label  # type: ignore[attr-defined]
        return function

    return mark


def project_role(context: AppContext, caller: Caller, project: Project) -> Role | None:
    return role_on(caller.principal, people.get_access(context.store, "project", project.id))


def check_project(context: AppContext, caller: Caller, ref: str, action: Action) -> ProjectAccess:
    project = context.store.get_project(ref)
    principal = caller.principal
    role = project_role(context, caller, project)
    if role is None or not principal.reaches(project.id):
        # Someone who may not read it does not learn that it exists.
        raise NotFoundError(f"No project '{ref}'; `winslow project list` shows them.")
    if not permits(principal, role, action, project_id=project.id):
        if principal.scope is Scope.READ and action is not Action.READ:
            raise ForbiddenError("This token may only read; use a steer token to change things.")
        raise ForbiddenError(refusal(role, action, f"project '{project.name}'"))
    return ProjectAccess(project, role, caller)


def _project_need(action: Action, label: str) -> Callable[..., ProjectAccess]:
    @_labelled(label)
    def need(ref: str, context: ContextDep, caller: CurrentCaller) -> ProjectAccess:
        return check_project(context, caller, ref, action)

    need.__name__ = f"project_{action.value}"
    return need


ProjectReader = Annotated[ProjectAccess, Depends(_project_need(Action.READ, "project:read"))]
ProjectApprover = Annotated[ProjectAccess, Depends(_project_need(Action.READ, "project:approve"))]
"""Reads, and may answer a gate if the pipeline lets members; the route checks the rest."""
ProjectSteerer = Annotated[ProjectAccess, Depends(_project_need(Action.STEER, "project:steer"))]
ProjectManager = Annotated[ProjectAccess, Depends(_project_need(Action.MANAGE, "project:manage"))]


def pipeline_role(context: AppContext, caller: Caller, name: str) -> Role | None:
    """The caller's role on pipeline ``name``: a pipeline nobody was granted (one put in
    the folder by hand) is shared, every signed-in user may read and use it."""
    grants = people.get_access(context.store, "pipeline", name)
    if not grants:
        return Role.OWNER if caller.admin else Role.MEMBER
    return role_on(caller.principal, grants)


def _pipeline(context: AppContext, caller: Caller, name: str, action: Action) -> PipelineAccess:
    principal = caller.principal
    role = pipeline_role(context, caller, name)
    if role is None or not pipeline_exists(context, name):
        # A pipeline nobody may see and one that is not there look alike.
        raise NotFoundError(f"No pipeline '{name}'; `winslow pipeline list` shows them.")
    limited = principal.projects is not None and action is not Action.READ
    if limited or not permits(principal, role, action):
        raise ForbiddenError(refusal(role, action, f"pipeline '{name}'"))
    return PipelineAccess(name, role, caller)


def _pipeline_need(action: Action, label: str) -> Callable[..., PipelineAccess]:
    @_labelled(label)
    def need(name: str, context: ContextDep, caller: CurrentCaller) -> PipelineAccess:
        return _pipeline(context, caller, name, action)

    need.__name__ = f"pipeline_{action.value}"
    return need


PipelineReader = Annotated[PipelineAccess, Depends(_pipeline_need(Action.READ, "pipeline:read"))]
PipelineEditor = Annotated[PipelineAccess, Depends(_pipeline_need(Action.STEER, "pipeline:edit"))]
PipelineManager = Annotated[
    PipelineAccess, Depends(_pipeline_need(Action.MANAGE, "pipeline:manage"))
]


def pipeline_exists(context: AppContext, name: str) -> bool:
    """Whether pipeline ``name`` has a file, valid or not."""
    try:
        context.pipelines.read_text(name)
    except NotFoundError:
        return False
    return True


@_labelled("pipeline:edit")
def pipeline_writer(name: str, context: ContextDep, caller: CurrentCaller) -> PipelineAccess:
    """Edit pipeline ``name``; one that does not exist yet anybody who may make things
    may create (and then owns)."""
    if pipeline_exists(context, name) or people.get_access(context.store, "pipeline", name):
        return _pipeline(context, caller, name, Action.STEER)
    return PipelineAccess(name, Role.OWNER, creator(caller))


PipelineWriter = Annotated[PipelineAccess, Depends(pipeline_writer)]


@_labelled("admin")
def admin_caller(caller: CurrentCaller) -> Caller:
    if not caller.admin:
        raise ForbiddenError(f"Only an admin may do this, and '{caller.name}' is none.")
    if not caller.principal.acts_as_admin:
        raise ForbiddenError("This needs an admin token (scope admin) or a console session.")
    return caller


AdminCaller = Annotated[Caller, Depends(admin_caller)]


@_labelled("signed-in")
def signed_in(caller: CurrentCaller) -> Caller:
    return caller


SignedIn = Annotated[Caller, Depends(signed_in)]
"""Any signed-in user: what every user may see (nodes, the resource pool, their own)."""


@_labelled("creator")
def creator(caller: CurrentCaller) -> Caller:
    """A caller that may make new projects and pipelines: not a read-only token, not one
    limited to some projects."""
    if caller.scope is Scope.READ:
        raise ForbiddenError("This token may only read; use a steer token to change things.")
    if caller.projects is not None:
        raise ForbiddenError("This token acts on some projects only; it cannot make new ones.")
    return caller


Creator = Annotated[Caller, Depends(creator)]


def may_write_resources(context: AppContext, caller: Caller) -> bool:
    """Admins, members of the configured writers' group, and who maintains a group."""
    if caller.scope is Scope.READ or caller.projects is not None:
        return False
    if caller.admin or context.settings.resource_writers in caller.groups:
        return True
    user = people.get_user(context.store, caller.name)
    return any(Role.parse(role) >= Role.MAINTAINER for role in user.groups.values())


@_labelled("resources:write")
def resource_writer(context: ContextDep, caller: CurrentCaller) -> Caller:
    if not may_write_resources(context, caller):
        raise ForbiddenError(
            "Changing the resource pool is for admins, group maintainers and members of "
            f"'{context.settings.resource_writers}'; ask one of them."
        )
    return caller


ResourceWriter = Annotated[Caller, Depends(resource_writer)]


def visible_projects(
    context: AppContext, caller: Caller, projects: Sequence[Project]
) -> list[Project]:
    """The projects of ``projects`` the caller may read, in their order."""
    principal = caller.principal
    if principal.admin and principal.projects is None:
        return list(projects)
    grants = people.access_of(context.store, "project", [p.id for p in projects])
    return [
        p
        for p in projects
        if principal.reaches(p.id) and role_on(principal, grants.get(p.id, ())) is not None
    ]


def visible_pipelines(context: AppContext, caller: Caller, names: Iterable[str]) -> list[str]:
    wanted = list(names)
    grants = people.access_of(context.store, "pipeline", wanted)
    return [
        name
        for name in wanted
        if not grants.get(name) or caller.admin or role_on(caller.principal, grants[name])
    ]


def _label_of(dependant: Dependant) -> str | None:
    for sub in dependant.dependencies:
        label = getattr(sub.call, "access_label", None)
        if label is not None:
            return str(label)
        found = _label_of(sub)
        if found is not None:
            return found
    return None


def _declares_caller(dependant: Dependant) -> bool:
    return any(
        sub.call is current_caller or _declares_caller(sub) for sub in dependant.dependencies
    )


def mark_operations(routers: Iterable[APIRouter]) -> None:
    """Write each operation's need into the OpenAPI document (``x-winslow-access``):
    its access dependency's label, ``self`` for one that acts on the caller's own things
    only, ``public`` for one that needs nobody. The label sits on the route, which every
    app serves as it is; ``describe_errors`` copies it into the document."""
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute) or ACCESS_KEY in (route.openapi_extra or {}):
                continue
            label = _label_of(route.dependant)
            if label is None:
                label = "self" if _declares_caller(route.dependant) else "public"
            route.openapi_extra = {**(route.openapi_extra or {}), ACCESS_KEY: label}
