"""Who may do what on one project or pipeline: its grants (the access tab).

Everyone who may read a project sees who has which role on it; its owners change that.
A project keeps at least one owner. ``*`` (every signed-in user) may only be given the
``public`` role: a public project is read-only to those not granted more.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from winslow.api.access import PipelineManager, PipelineReader, ProjectManager, ProjectReader
from winslow.api.deps import ContextDep
from winslow.api.models import Body, RoleWord
from winslow.api.routes import API_V1
from winslow.core.access import EVERYONE, Grant, Role, check_principal
from winslow.errors import ValidationError
from winslow.store import people

router = APIRouter(prefix=API_V1, tags=["access"])


class GrantBody(BaseModel):
    principal: str = Field(description="user:<name>, group:<name>, or * (every signed-in user).")
    role: RoleWord

    @field_validator("principal")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        return check_principal(value.strip())


class AccessPublic(BaseModel):
    grants: list[GrantBody]
    public: bool
    """Whether every signed-in user may read it."""
    your_role: str


class AccessChange(Body):
    grants: list[GrantBody]


def _public(grants: tuple[Grant, ...], role: Role) -> AccessPublic:
    ordered = sorted(grants, key=lambda g: (-g.role, g.principal))
    return AccessPublic(
        grants=[GrantBody(principal=g.principal, role=g.role.label) for g in ordered],  # type: ignore[arg-type]
        public=any(g.principal == EVERYONE for g in grants),
        your_role=role.label,
    )


def _grants(body: AccessChange) -> list[Grant]:
    grants = [Grant(g.principal, Role.parse(g.role)) for g in body.grants]
    for grant in grants:
        if (grant.principal == EVERYONE) != (grant.role is Role.PUBLIC):
            raise ValidationError(
                "Give * (every signed-in user) the public role, and the public role only to *.",
                field="grants",
            )
    return grants


@router.get("/projects/{ref}/access", response_model=AccessPublic)
def project_access(access: ProjectReader, context: ContextDep) -> AccessPublic:
    grants = people.get_access(context.store, "project", access.project.id)
    return _public(grants, access.role)


@router.put("/projects/{ref}/access", response_model=AccessPublic)
def set_project_access(
    body: AccessChange, access: ProjectManager, context: ContextDep
) -> AccessPublic:
    """Replace who has which role on the project (at least one owner stays)."""
    grants = people.set_access(context.store, "project", access.project.id, _grants(body))
    return _public(grants, access.role)


@router.get("/pipelines/{name}/access", response_model=AccessPublic)
def pipeline_access(access: PipelineReader, context: ContextDep) -> AccessPublic:
    """A pipeline without grants is shared: everyone may read and use it, admins edit."""
    return _public(people.get_access(context.store, "pipeline", access.name), access.role)


@router.put("/pipelines/{name}/access", response_model=AccessPublic)
def set_pipeline_access(
    body: AccessChange, access: PipelineManager, context: ContextDep
) -> AccessPublic:
    grants = people.set_access(context.store, "pipeline", access.name, _grants(body))
    return _public(grants, access.role)
