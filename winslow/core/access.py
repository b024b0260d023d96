"""Who may do what: roles on projects and pipelines, token scopes, and the decision.

A project or pipeline carries grants: a role given to a user (``user:alice``), a group
(``group:vision``) or every signed-in user (``*``, which makes it public: read only).
A person's role is the highest any grant gives them; an admin is owner of everything.
What a request may do is then capped by how it came: a token's scope (read, steer,
admin) and the projects it is limited to. Pure: the store loads the grants, the API asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Literal

EVERYONE = "*"
"""The principal of a public project's grant: every signed-in user, read only."""


class Role(IntEnum):
    """A role on a project or pipeline; a higher one may do all a lower one may."""

    PUBLIC = 1
    """Reads a public project: state, history, logs, files."""
    MEMBER = 2
    """Reads; approves a gate only where the pipeline lets members approve."""
    MAINTAINER = 3
    """Steers: start, pause, resume, kill, variables, uploads, change pipeline."""
    OWNER = 4
    """Everything: also delete, access, trigger tokens."""

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named ``text`` (any case); ``ValueError`` naming the choices."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(role.label for role in cls)
            raise ValueError(f"'{text}' is not a role; choose one of {choices}.") from None


GROUP_ROLES = (Role.MEMBER, Role.MAINTAINER, Role.OWNER)
"""Roles within a group: its owners and maintainers manage who is in it."""


class Scope(StrEnum):
    """What a personal API token may be used for."""

    READ = "read"
    """Only reads (GET)."""
    STEER = "steer"
    """Everything the user may do on projects and pipelines; no admin operations."""
    ADMIN = "admin"
    """All the user may do, admin operations too (only an admin's token holds this)."""


class Action(StrEnum):
    """What a request does to a project or pipeline."""

    READ = "read"
    APPROVE = "approve"
    STEER = "steer"
    MANAGE = "manage"


NEEDS: dict[Action, Role] = {
    Action.READ: Role.PUBLIC,
    Action.APPROVE: Role.MAINTAINER,
    Action.STEER: Role.MAINTAINER,
    Action.MANAGE: Role.OWNER,
}
"""The least role each action needs (approving: where members may not approve)."""


@dataclass(frozen=True)
class Grant:
    """``role`` given to ``principal``: ``user:<name>``, ``group:<name>`` or ``*``."""

    principal: str
    role: Role


def user_principal(name: str) -> str:
    return f"user:{name}"


def group_principal(name: str) -> str:
    return f"group:{name}"


def check_principal(principal: str) -> str:
    """``principal`` when it is well formed; ``ValueError`` saying what is, otherwise."""
    kind, _, name = principal.partition(":")
    if principal == EVERYONE or (kind in ("user", "group") and name.strip()):
        return principal
    raise ValueError(
        f"'{principal}' names nobody: give user:<name>, group:<name> or * (every signed-in user)."
    )


@dataclass(frozen=True)
class Principal:
    """A person as one request presents them."""

    user: str
    admin: bool = False
    groups: frozenset[str] = frozenset()
    scope: Scope = Scope.ADMIN
    """The token's scope; a console session has the user's full powers."""
    projects: frozenset[str] | None = None
    """Ids of the only projects a limited token acts on; ``None``: no limit."""

    @property
    def acts_as_admin(self) -> bool:
        """Whether this request may do admin-only operations (people, audit, gc)."""
        return self.admin and self.scope is Scope.ADMIN

    def reaches(self, project_id: str | None) -> bool:
        """Whether a token limited to some projects may act on ``project_id`` at all
        (``None``: an operation on no one project, such as creating one)."""
        if self.projects is None:
            return True
        return project_id is not None and project_id in self.projects


def role_on(principal: Principal, grants: Iterable[Grant]) -> Role | None:
    """The highest role ``grants`` give ``principal``; ``None``: it may not even read.
    An admin owns everything (a read-scope token of theirs still only reads)."""
    if principal.admin:
        return Role.OWNER
    mine = {user_principal(principal.user), EVERYONE}
    mine.update(group_principal(group) for group in principal.groups)
    return max((grant.role for grant in grants if grant.principal in mine), default=None)


def permits(
    principal: Principal,
    role: Role | None,
    action: Action,
    *,
    project_id: str | None = None,
    members_approve: bool = False,
) -> bool:
    """Whether ``principal``, holding ``role``, may do ``action``.

    ``members_approve``: the gate lets members answer it (the pipeline says so).
    """
    if role is None or not principal.reaches(project_id):
        return False
    if principal.scope is Scope.READ and action is not Action.READ:
        return False
    needed = Role.MEMBER if action is Action.APPROVE and members_approve else NEEDS[action]
    return role >= needed


def refusal(role: Role | None, action: Action, what: str) -> str:
    """The sentence a refused person reads: what they hold and what the action needs."""
    needed = NEEDS[action].label
    held = f"you are {role.label} of {what}" if role is not None else f"you have no role on {what}"
    return f"To {action.value} {what} you need to be {needed} or above; {held}."


def scope_allows(principal: Principal, method: str) -> bool:
    """Whether the token's scope lets it send a request with ``method`` at all."""
    return principal.scope is not Scope.READ or method in ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class ExternalIdentity:
    """A person another system vouched for."""

    name: str
    """The Winslow user name (``uid`` in LDAP, the username claim in OIDC)."""
    source: Literal["ldap", "oidc"]
    display_name: str = ""
    email: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    """Names of the groups the other system puts the person in."""
