"""People and access in the store: users, groups, grants on projects and pipelines.

Local users' passwords are kept as argon2id hashes; LDAP and OpenID Connect users have
none here (their directory checks them) and their groups of that source follow the
directory at each sign-in. Personal API tokens live in ``store/tokens.py``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from winslow.core.access import GROUP_ROLES, ExternalIdentity, Grant, Role, check_principal
from winslow.errors import ConflictError, NotFoundError, ValidationError
from winslow.store.people_tables import (
    AccessGrantRow,
    ApiTokenRow,
    GroupMemberRow,
    GroupRow,
    UserRow,
)
from winslow.store.rows import now, utc
from winslow.store.tables import ConsoleSessionRow

if TYPE_CHECKING:
    from winslow.store.repo import Store

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
"""User and group names: LDAP uids and OIDC usernames (which may hold ``@``) fit."""

MIN_PASSWORD = 8

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the user does not exist, so the answer takes as long (made
    at first use: hashing takes a CPU-heavy moment every importer would pay)."""
    return _hasher.hash("winslow: no such user")


KINDS = ("project", "pipeline")

GRANT_QUERY_SLICE = 900
"""Keys asked for in one query (SQLite allows 999 parameters in older builds)."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    source: str
    admin: bool
    disabled: bool
    created_at: datetime
    display_name: str = ""
    email: str = ""
    last_sign_in_at: datetime | None = None
    quota: dict[str, Any] | None = None
    groups: dict[str, str] = field(default_factory=dict)
    """Group name → the user's role in it."""
    has_password: bool = False


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    source: str
    created_at: datetime
    description: str = ""
    quota: dict[str, Any] | None = None
    members: dict[str, str] = field(default_factory=dict)
    """User name → role in the group."""


def check_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise ValidationError(
            f"'{name}' cannot name a {what}: use letters, digits, '.', '_', '-' or '@' "
            "(up to 100, starting with a letter or digit).",
            field="name",
        )
    return name


def _groups_of(session: Session, user_ids: Collection[int]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {uid: {} for uid in user_ids}
    query = (
        select(GroupMemberRow.user_id, GroupRow.name, GroupMemberRow.role)
        .join(GroupRow, GroupRow.id == GroupMemberRow.group_id)
        .where(GroupMemberRow.user_id.in_(list(user_ids)))
    )
    for user_id, group, role in session.execute(query):
        found[user_id][group] = role
    return found


def _to_user(row: UserRow, groups: dict[str, str]) -> User:
    return User(
        id=row.id,
        name=row.name,
        source=row.source,
        admin=row.admin,
        disabled=row.disabled,
        created_at=utc(row.created_at) or now(),
        display_name=row.display_name,
        email=row.email,
        last_sign_in_at=utc(row.last_sign_in_at),
        quota=row.quota,
        groups=groups,
        has_password=row.password_hash is not None,
    )


def _user_row(session: Session, name: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"No user '{name}'; `winslow user list` shows them.")
    return row


def _group_row(session: Session, name: str) -> GroupRow:
    row = session.scalars(select(GroupRow).where(GroupRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"No group '{name}'; `winslow group list` shows them.")
    return row


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            f"A password needs at least {MIN_PASSWORD} characters.", field="password"
        )
    return password


# -- users ------------------------------------------------------------------------------


def create_user(
    store: Store,
    name: str,
    *,
    password: str | None = None,
    admin: bool = False,
    source: str = "local",
    display_name: str = "",
    email: str = "",
) -> User:
    """Create a user; ``ConflictError`` when the name is taken."""
    check_name(name, "user")
    hashed = _hasher.hash(check_password(password)) if password is not None else None
    try:
        with store.transaction() as session:
            row = UserRow(
                name=name,
                display_name=display_name,
                email=email,
                source=source,
                password_hash=hashed,
                admin=admin,
                disabled=False,
                created_at=now(),
            )
            session.add(row)
            session.flush()
            return _to_user(row, {})
    except IntegrityError:
        raise ConflictError(f"A user named '{name}' exists already.") from None


def ensure_user(store: Store, name: str, *, admin: bool = False) -> User:
    """The user ``name``, made (local, without a password) if there is none yet."""
    try:
        return get_user(store, name)
    except NotFoundError:
        try:
            return create_user(store, name, admin=admin)
        except ConflictError:  # made meanwhile by another request
            return get_user(store, name)


def get_user(store: Store, name: str) -> User:
    with store.sessions() as session:
        row = _user_row(session, name)
        return _to_user(row, _groups_of(session, [row.id])[row.id])


def list_users(store: Store) -> list[User]:
    with store.sessions() as session:
        rows = session.scalars(select(UserRow).order_by(UserRow.name)).all()
        groups = _groups_of(session, [row.id for row in rows])
        return [_to_user(row, groups[row.id]) for row in rows]


_UNSET: Any = object()


def update_user(
    store: Store,
    name: str,
    *,
    admin: bool | None = None,
    disabled: bool | None = None,
    display_name: str | None = None,
    email: str | None = None,
    quota: dict[str, Any] | None = _UNSET,
) -> User:
    """Change what is given; disabling a user ends their console sessions at once."""
    with store.transaction() as session:
        row = _user_row(session, name)
        if admin is not None:
            row.admin = admin
        if disabled is not None:
            row.disabled = disabled
            if disabled:
                session.execute(
                    update(ConsoleSessionRow)
                    .where(
                        ConsoleSessionRow.user_id == row.id,
                        ConsoleSessionRow.revoked_at.is_(None),
                    )
                    .values(revoked_at=now())
                )
        if display_name is not None:
            row.display_name = display_name
        if email is not None:
            row.email = email
        if quota is not _UNSET:
            row.quota = quota
        session.flush()
        return _to_user(row, _groups_of(session, [row.id])[row.id])


def set_password(store: Store, name: str, password: str) -> None:
    hashed = _hasher.hash(check_password(password))
    with store.transaction() as session:
        row = _user_row(session, name)
        if row.source != "local":
            raise ValidationError(
                f"'{name}' signs in through {row.source.upper()}; change the password there."
            )
        row.password_hash = hashed


def verify_password(store: Store, name: str, password: str) -> User | None:
    """The local, enabled user ``name`` if ``password`` is theirs; else ``None``."""
    with store.sessions() as session:
        row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
        stored = row.password_hash if row is not None and row.source == "local" else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or stored is None or row.disabled:
        return None
    if _hasher.check_needs_rehash(stored):
        with store.transaction() as session:
            _user_row(session, name).password_hash = _hasher.hash(password)
    return get_user(store, name)


def note_sign_in(store: Store, name: str) -> None:
    with store.transaction() as session:
        _user_row(session, name).last_sign_in_at = now()


def sync_external(store: Store, identity: ExternalIdentity) -> User:
    """Make or update the user another system vouched for, and its groups of that source:
    groups it is newly in are joined (made where missing), those it left are left.
    ``ConflictError`` where a local user of that name exists (no takeover)."""
    check_name(identity.name, "user")
    with store.transaction() as session:
        row = session.scalars(select(UserRow).where(UserRow.name == identity.name)).first()
        if row is None:
            row = UserRow(
                name=identity.name,
                source=identity.source,
                admin=False,
                disabled=False,
                created_at=now(),
                password_hash=None,
            )
            session.add(row)
        elif row.source != identity.source:
            raise ConflictError(
                f"'{identity.name}' is a {row.source} user here; an admin must remove it "
                f"before it can sign in through {identity.source.upper()}."
            )
        row.display_name = identity.display_name or row.display_name or ""
        row.email = identity.email or row.email or ""
        row.last_sign_in_at = now()
        session.flush()
        _follow_groups(session, row.id, identity.source, set(identity.groups))
    return get_user(store, identity.name)


def _follow_groups(session: Session, user_id: int, source: str, names: set[str]) -> None:
    wanted = {name for name in names if NAME.fullmatch(name)}
    rows = {g.name: g for g in session.scalars(select(GroupRow).where(GroupRow.name.in_(wanted)))}
    for name in wanted - rows.keys():
        rows[name] = GroupRow(name=name, source=source, created_at=now(), description="")
        session.add(rows[name])
    session.flush()
    current = {
        group.name: member
        for member, group in session.execute(
            select(GroupMemberRow, GroupRow)
            .join(GroupRow, GroupRow.id == GroupMemberRow.group_id)
            .where(GroupMemberRow.user_id == user_id, GroupRow.source == source)
        )
    }
    for name, member in current.items():
        if name not in wanted:
            session.delete(member)
    for name in wanted - current.keys():
        if rows[name].source == source:
            session.add(GroupMemberRow(group_id=rows[name].id, user_id=user_id, role="member"))


# -- groups -----------------------------------------------------------------------------


def _to_group(session: Session, row: GroupRow) -> Group:
    members = {
        name: role
        for name, role in session.execute(
            select(UserRow.name, GroupMemberRow.role)
            .join(UserRow, UserRow.id == GroupMemberRow.user_id)
            .where(GroupMemberRow.group_id == row.id)
            .order_by(UserRow.name)
        )
    }
    return Group(
        id=row.id,
        name=row.name,
        source=row.source,
        created_at=utc(row.created_at) or now(),
        description=row.description,
        quota=row.quota,
        members=members,
    )


def create_group(store: Store, name: str, *, description: str = "") -> Group:
    check_name(name, "group")
    try:
        with store.transaction() as session:
            row = GroupRow(name=name, description=description, source="local", created_at=now())
            session.add(row)
            session.flush()
            return _to_group(session, row)
    except IntegrityError:
        raise ConflictError(f"A group named '{name}' exists already.") from None


def get_group(store: Store, name: str) -> Group:
    with store.sessions() as session:
        return _to_group(session, _group_row(session, name))


def list_groups(store: Store) -> list[Group]:
    with store.sessions() as session:
        rows = session.scalars(select(GroupRow).order_by(GroupRow.name)).all()
        return [_to_group(session, row) for row in rows]


def update_group(
    store: Store,
    name: str,
    *,
    description: str | None = None,
    quota: dict[str, Any] | None = _UNSET,
) -> Group:
    with store.transaction() as session:
        row = _group_row(session, name)
        if description is not None:
            row.description = description
        if quota is not _UNSET:
            row.quota = quota
        session.flush()
        return _to_group(session, row)


def delete_group(store: Store, name: str) -> None:
    """Delete a group, its memberships and the grants it held."""
    with store.transaction() as session:
        row = _group_row(session, name)
        session.execute(delete(AccessGrantRow).where(AccessGrantRow.principal == f"group:{name}"))
        session.execute(delete(GroupMemberRow).where(GroupMemberRow.group_id == row.id))
        session.delete(row)


def set_member(store: Store, group: str, user: str, role: str = "member") -> Group:
    """Put ``user`` in ``group`` with ``role`` (or change their role there)."""
    parsed = Role.parse(role)
    if parsed not in GROUP_ROLES:
        raise ValidationError("A group member is member, maintainer or owner.", field="role")
    with store.transaction() as session:
        group_row, user_row = _group_row(session, group), _user_row(session, user)
        if group_row.source != "local":
            raise ValidationError(
                f"Group '{group}' follows {group_row.source.upper()}: change it there."
            )
        member = session.get(GroupMemberRow, (group_row.id, user_row.id))
        if member is None:
            session.add(
                GroupMemberRow(group_id=group_row.id, user_id=user_row.id, role=parsed.label)
            )
        else:
            member.role = parsed.label
        session.flush()
        return _to_group(session, group_row)


def remove_member(store: Store, group: str, user: str) -> Group:
    with store.transaction() as session:
        group_row, user_row = _group_row(session, group), _user_row(session, user)
        member = session.get(GroupMemberRow, (group_row.id, user_row.id))
        if member is None:
            raise NotFoundError(f"'{user}' is not in group '{group}'.")
        session.delete(member)
        session.flush()
        return _to_group(session, group_row)


# -- grants -----------------------------------------------------------------------------


def get_access(store: Store, kind: str, key: str) -> tuple[Grant, ...]:
    return access_of(store, kind, [key]).get(key, ())


def access_of(store: Store, kind: str, keys: Iterable[str]) -> dict[str, tuple[Grant, ...]]:
    """The grants on each of ``keys`` (project ids or pipeline names), in one query."""
    wanted = list(keys)
    found: dict[str, list[Grant]] = {key: [] for key in wanted}
    with store.sessions() as session:
        # In slices: a database takes only so many parameters in one statement.
        for start in range(0, len(wanted), GRANT_QUERY_SLICE):
            query = select(AccessGrantRow).where(
                AccessGrantRow.kind == kind,
                AccessGrantRow.key.in_(wanted[start : start + GRANT_QUERY_SLICE]),
            )
            for row in session.scalars(query):
                found[row.key].append(Grant(row.principal, Role.parse(row.role)))
    return {key: tuple(grants) for key, grants in found.items()}


def set_access(store: Store, kind: str, key: str, grants: Iterable[Grant]) -> tuple[Grant, ...]:
    """Replace the grants on ``key``; a project keeps at least one owner."""
    if kind not in KINDS:
        raise ValidationError(f"Access is kept for {' and '.join(KINDS)}s only.")
    wanted = {check_principal(grant.principal): grant.role for grant in grants}
    if kind == "project" and Role.OWNER not in wanted.values():
        raise ValidationError(
            "A project needs at least one owner; give someone the owner role first.",
            field="grants",
        )
    with store.transaction() as session:
        session.execute(
            delete(AccessGrantRow).where(AccessGrantRow.kind == kind, AccessGrantRow.key == key)
        )
        for principal, role in wanted.items():
            session.add(AccessGrantRow(kind=kind, key=key, principal=principal, role=role.label))
    return tuple(Grant(p, r) for p, r in wanted.items())


def forget_access(store: Store, kind: str, key: str) -> None:
    """Drop the grants on a deleted project or pipeline."""
    with store.transaction() as session:
        session.execute(
            delete(AccessGrantRow).where(AccessGrantRow.kind == kind, AccessGrantRow.key == key)
        )


def user_row_id(session: Session, name: str) -> int:
    return _user_row(session, name).id


def token_rows_of(session: Session, user_id: int) -> list[ApiTokenRow]:
    return list(session.scalars(select(ApiTokenRow).where(ApiTokenRow.user_id == user_id)))
