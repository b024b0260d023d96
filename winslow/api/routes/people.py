"""People and groups: who is signed in, users and groups (admins), group membership.

Admins make and change users and groups. A group's owners and maintainers put people in
it and take them out. Everyone sees who they are (``GET /me``) and the groups there are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from winslow.api.access import AdminCaller, SignedIn
from winslow.api.deps import ContextDep, CurrentCaller
from winslow.api.models import Body, GroupRoleWord
from winslow.api.routes import API_V1
from winslow.core.access import Role
from winslow.errors import ForbiddenError, ValidationError
from winslow.store import people
from winslow.store.tokens import Caller

router = APIRouter(prefix=API_V1, tags=["people"])


class Quota(BaseModel):
    """What a user's or group's projects may hold at once; a missing amount: no limit."""

    gpus: int | None = Field(default=None, ge=0)
    cpus: float | None = Field(default=None, ge=0)
    memory_mb: int | None = Field(default=None, ge=0)


class MePublic(BaseModel):
    name: str
    admin: bool
    groups: list[str]
    scope: str
    """``admin`` for a console session; a token's own scope otherwise."""
    projects: list[str] | None
    via: str


class UserPublic(BaseModel):
    name: str
    display_name: str
    email: str
    source: str
    admin: bool
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None
    groups: dict[str, str]
    """Group → the user's role in it."""
    quota: Quota | None
    has_password: bool

    @classmethod
    def of(cls, user: people.User) -> UserPublic:
        return cls(
            name=user.name,
            display_name=user.display_name,
            email=user.email,
            source=user.source,
            admin=user.admin,
            disabled=user.disabled,
            created_at=user.created_at,
            last_sign_in_at=user.last_sign_in_at,
            groups=user.groups,
            quota=Quota(**user.quota) if user.quota is not None else None,
            has_password=user.has_password,
        )


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserCreate(Body):
    name: str
    password: str | None = Field(
        default=None, description="Unset: the user has no password until one is set."
    )
    admin: bool = False
    display_name: str = ""
    email: str = ""


class UserUpdate(Body):
    admin: bool | None = None
    disabled: bool | None = Field(
        default=None, description="A disabled user's sessions end and tokens stop working."
    )
    display_name: str | None = None
    email: str | None = None
    quota: Quota | None = Field(default=None, description="Set the quota; see clear_quota.")
    clear_quota: bool = False


class PasswordChange(Body):
    password: str
    current: str | None = Field(
        default=None, description="Your current password (not needed by an admin)."
    )


class GroupPublic(BaseModel):
    name: str
    description: str
    source: str
    created_at: datetime
    members: dict[str, str]
    """User → their role in the group."""
    quota: Quota | None

    @classmethod
    def of(cls, group: people.Group) -> GroupPublic:
        return cls(
            name=group.name,
            description=group.description,
            source=group.source,
            created_at=group.created_at,
            members=group.members,
            quota=Quota(**group.quota) if group.quota is not None else None,
        )


class GroupsPublic(BaseModel):
    data: list[GroupPublic]
    count: int


class GroupCreate(Body):
    name: str
    description: str = ""


class GroupUpdate(Body):
    description: str | None = None
    quota: Quota | None = None
    clear_quota: bool = False


class MemberBody(Body):
    role: GroupRoleWord = "member"


def _quota(body: UserUpdate | GroupUpdate) -> dict[str, Any] | None:
    if body.clear_quota:
        return None
    assert body.quota is not None
    return body.quota.model_dump()


@router.get("/me", response_model=MePublic)
def me(caller: SignedIn) -> MePublic:
    """Who the request comes from, and what its credentials allow."""
    return MePublic(
        name=caller.name,
        admin=caller.admin,
        groups=sorted(caller.groups),
        scope=caller.scope.value,
        projects=sorted(caller.projects) if caller.projects is not None else None,
        via=caller.via,
    )


@router.get("/users", response_model=UsersPublic)
def list_users(_admin: AdminCaller, context: ContextDep) -> UsersPublic:
    users = people.list_users(context.store)
    return UsersPublic(data=[UserPublic.of(u) for u in users], count=len(users))


@router.post("/users", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, _admin: AdminCaller, context: ContextDep) -> UserPublic:
    """Make a local user; with a password they sign in to the console with it."""
    user = people.create_user(
        context.store,
        body.name,
        password=body.password,
        admin=body.admin,
        display_name=body.display_name,
        email=body.email,
    )
    return UserPublic.of(user)


def _self_or_admin(name: str, caller: CurrentCaller) -> Caller:
    if caller.name != name and not caller.principal.acts_as_admin:
        raise ForbiddenError(f"Only '{name}' and admins may see or change user '{name}'.")
    return caller


SelfOrAdmin = Annotated[Caller, Depends(_self_or_admin)]


@router.get("/users/{name}", response_model=UserPublic)
def show_user(name: str, _caller: SelfOrAdmin, context: ContextDep) -> UserPublic:
    return UserPublic.of(people.get_user(context.store, name))


@router.patch("/users/{name}", response_model=UserPublic)
def update_user(name: str, body: UserUpdate, admin: AdminCaller, context: ContextDep) -> UserPublic:
    """Change a user: admin, disabled (ends their sessions), name shown, e-mail, quota."""
    if name == admin.name and (body.admin is False or body.disabled):
        raise ValidationError("You cannot take away your own admin or disable yourself.")
    changes: dict[str, Any] = {}
    if body.quota is not None or body.clear_quota:
        changes["quota"] = _quota(body)
    user = people.update_user(
        context.store,
        name,
        admin=body.admin,
        disabled=body.disabled,
        display_name=body.display_name,
        email=body.email,
        **changes,
    )
    if changes:
        context.engine.wake()  # a raised quota may let waiting stages start now
    return UserPublic.of(user)


@router.put("/users/{name}/password", status_code=204)
def change_password(
    name: str, body: PasswordChange, caller: SelfOrAdmin, context: ContextDep
) -> Response:
    """Set a local user's password; your own needs your current one."""
    if not caller.principal.acts_as_admin and (
        body.current is None or people.verify_password(context.store, name, body.current) is None
    ):
        raise ForbiddenError("Give your current password to change it.")
    people.set_password(context.store, name, body.password)
    return Response(status_code=204)


@router.get("/groups", response_model=GroupsPublic)
def list_groups(_caller: SignedIn, context: ContextDep) -> GroupsPublic:
    groups = people.list_groups(context.store)
    return GroupsPublic(data=[GroupPublic.of(g) for g in groups], count=len(groups))


@router.post("/groups", response_model=GroupPublic, status_code=201)
def create_group(body: GroupCreate, _admin: AdminCaller, context: ContextDep) -> GroupPublic:
    return GroupPublic.of(
        people.create_group(context.store, body.name, description=body.description)
    )


@router.get("/groups/{name}", response_model=GroupPublic)
def show_group(name: str, _caller: SignedIn, context: ContextDep) -> GroupPublic:
    return GroupPublic.of(people.get_group(context.store, name))


@router.patch("/groups/{name}", response_model=GroupPublic)
def update_group(
    name: str, body: GroupUpdate, _admin: AdminCaller, context: ContextDep
) -> GroupPublic:
    changes: dict[str, Any] = {}
    if body.quota is not None or body.clear_quota:
        changes["quota"] = _quota(body)
    group = people.update_group(context.store, name, description=body.description, **changes)
    if changes:
        context.engine.wake()  # a raised quota may let waiting stages start now
    return GroupPublic.of(group)


@router.delete("/groups/{name}", status_code=204)
def delete_group(name: str, _admin: AdminCaller, context: ContextDep) -> Response:
    """Delete a group; the roles it held on projects and pipelines go with it."""
    people.delete_group(context.store, name)
    return Response(status_code=204)


def group_manager(name: str, caller: CurrentCaller, context: ContextDep) -> Caller:
    """An admin, or an owner or maintainer of group ``name``."""
    if caller.principal.acts_as_admin:
        return caller
    role = people.get_group(context.store, name).members.get(caller.name)
    if role is None or Role.parse(role) < Role.MAINTAINER:
        raise ForbiddenError(
            f"Only admins and the owners and maintainers of group '{name}' change who is in it."
        )
    return caller


group_manager.access_label = "group:manage"  # type: ignore[attr-defined]
GroupManager = Annotated[Caller, Depends(group_manager)]


@router.put("/groups/{name}/members/{user}", response_model=GroupPublic)
def set_member(
    name: str, user: str, body: MemberBody, manager: GroupManager, context: ContextDep
) -> GroupPublic:
    """Put ``user`` in the group with ``role``, or change their role there; only an owner
    of the group (or an admin) makes owners."""
    if body.role == "owner" and not manager.principal.acts_as_admin:
        role = people.get_group(context.store, name).members.get(manager.name, "member")
        if Role.parse(role) < Role.OWNER:
            raise ForbiddenError(f"Only owners of group '{name}' make others owners.")
    return GroupPublic.of(people.set_member(context.store, name, user, body.role))


@router.delete("/groups/{name}/members/{user}", response_model=GroupPublic)
def remove_member(name: str, user: str, _manager: GroupManager, context: ContextDep) -> GroupPublic:
    return GroupPublic.of(people.remove_member(context.store, name, user))
