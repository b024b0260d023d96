"""Personal API tokens (table ``api_tokens``), and who a request with one comes from.

A user makes their own tokens, each with a scope (read, steer, admin), optionally an
end and a list of the only projects it acts on. Only the token's SHA-256 is kept: it is
random and 256 bits long, so it is looked up by its hash. Each use is noted as "last
used", at most once a minute.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from winslow import defaults
from winslow.core.access import Principal, Scope
from winslow.errors import ConflictError, NotFoundError, ValidationError
from winslow.store.people import check_name, user_row_id
from winslow.store.people_tables import ApiTokenRow, GroupMemberRow, GroupRow, UserRow
from winslow.store.repo import hash_token
from winslow.store.rows import now, utc
from winslow.store.tables import ConsoleSessionRow

if TYPE_CHECKING:
    from winslow.store.repo import Store

TOKEN_PREFIX = "wsl_"


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: the user, their admin flag and groups, how they came
    (the console session's handle, or the API token's name) and what that allows."""

    name: str
    admin: bool = False
    session: str | None = None
    groups: frozenset[str] = frozenset()
    scope: Scope = Scope.ADMIN
    """The token's scope; a console session signed in with a password has full powers."""
    projects: frozenset[str] | None = None
    token: str | None = None

    @property
    def principal(self) -> Principal:
        return Principal(
            user=self.name,
            admin=self.admin,
            groups=self.groups,
            scope=self.scope,
            projects=self.projects,
        )

    @property
    def via(self) -> str:
        """How the request came, for the audit trail."""
        if self.session is not None:
            return f"session:{self.session}"
        return f"token:{self.token}" if self.token else "token"


@dataclass(frozen=True)
class Token:
    """A token as the store shows it: never the token, never its hash."""

    name: str
    user: str
    scope: Scope
    created_at: datetime
    projects: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def admin(self) -> bool:
        return self.scope is Scope.ADMIN


def _to_token(row: ApiTokenRow, user: str) -> Token:
    return Token(
        name=row.name,
        user=user,
        scope=Scope(row.scope),
        created_at=utc(row.created_at) or now(),
        projects=tuple(row.projects) if row.projects is not None else None,
        expires_at=utc(row.expires_at),
        last_used_at=utc(row.last_used_at),
        revoked_at=utc(row.revoked_at),
    )


def usable(at: datetime) -> list[ColumnElement[bool]]:
    """SQL conditions of a token that works at ``at`` (its user's too)."""
    return [
        ApiTokenRow.revoked_at.is_(None),
        or_(ApiTokenRow.expires_at.is_(None), ApiTokenRow.expires_at > at),
        UserRow.disabled.is_(False),
    ]


def session_token_usable(at: datetime) -> ColumnElement[bool]:
    """A session's token condition: none (a password sign-in), or one that works."""
    return or_(
        ConsoleSessionRow.token_id.is_(None),
        and_(
            ApiTokenRow.revoked_at.is_(None),
            or_(ApiTokenRow.expires_at.is_(None), ApiTokenRow.expires_at > at),
        ),
    )


def groups_of(session: Session, user_id: int) -> frozenset[str]:
    query = (
        select(GroupRow.name)
        .join(GroupMemberRow, GroupMemberRow.group_id == GroupRow.id)
        .where(GroupMemberRow.user_id == user_id)
    )
    return frozenset(session.scalars(query))


def caller_of(
    session: Session, user: UserRow, token: ApiTokenRow | None, handle: str | None
) -> Caller:
    return Caller(
        name=user.name,
        admin=user.admin,
        session=handle,
        groups=groups_of(session, user.id),
        scope=Scope(token.scope) if token is not None else Scope.ADMIN,
        projects=frozenset(token.projects)
        if token is not None and token.projects is not None
        else None,
        token=token.name if token is not None else None,
    )


def find_token(session: Session, secret: str, at: datetime) -> tuple[ApiTokenRow, UserRow] | None:
    """The working token whose hash is ``secret``'s, with its user."""
    query = (
        select(ApiTokenRow, UserRow)
        .join(UserRow, UserRow.id == ApiTokenRow.user_id)
        .where(ApiTokenRow.token_hash == hash_token(secret), *usable(at))
    )
    found = session.execute(query).first()
    return (found[0], found[1]) if found is not None else None


def token_caller(
    store: Store,
    secret: str,
    *,
    at: datetime | None = None,
    touch_seconds: float = defaults.SESSION_TOUCH_SECONDS,
) -> Caller | None:
    """The caller whose working API token is ``secret``, or ``None``."""
    at = at or now()
    with store.sessions() as session:
        found = find_token(session, secret, at)
        if found is None:
            return None
        token, user = found
        caller = caller_of(session, user, token, None)
        last = utc(token.last_used_at)
        token_id = token.id
    if last is None or (at - last).total_seconds() >= touch_seconds:
        with store.transaction() as session:
            session.execute(
                update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=at)
            )
    return caller


def create_token(
    store: Store,
    user: str,
    name: str,
    *,
    scope: Scope = Scope.STEER,
    projects: Collection[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, Token]:
    """Make ``user``'s token ``name``; return it (shown this once) and how it is kept."""
    check_name(name, "token")
    if expires_at is not None and expires_at <= now():
        raise ValidationError(
            "The token would have ended already; give a later end.", field="expires_at"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with store.transaction() as session:
            owner = session.get(UserRow, user_row_id(session, user))
            assert owner is not None
            if scope is Scope.ADMIN and not owner.admin:
                raise ValidationError(
                    f"Only an admin holds an admin token, and '{user}' is none; "
                    "choose read or steer.",
                    field="scope",
                )
            row = ApiTokenRow(
                user_id=owner.id,
                name=name,
                token_hash=hash_token(secret),
                scope=scope.value,
                projects=sorted(projects) if projects is not None else None,
                created_at=now(),
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            return secret, _to_token(row, user)
    except IntegrityError:
        raise ConflictError(f"'{user}' has a token named '{name}' already.") from None


def list_tokens(store: Store, user: str | None = None) -> list[Token]:
    """Tokens (of ``user``), revoked ones included, by user and name."""
    query = (
        select(ApiTokenRow, UserRow.name)
        .join(UserRow, UserRow.id == ApiTokenRow.user_id)
        .order_by(UserRow.name, ApiTokenRow.name)
    )
    if user is not None:
        query = query.where(UserRow.name == user)
    with store.sessions() as session:
        return [_to_token(row, owner) for row, owner in session.execute(query)]


def revoke_token(store: Store, user: str, name: str) -> Token:
    """Revoke ``user``'s token ``name`` and end the console sessions signed in with it."""
    at = now()
    with store.transaction() as session:
        found = session.execute(
            select(ApiTokenRow, UserRow.name)
            .join(UserRow, UserRow.id == ApiTokenRow.user_id)
            .where(UserRow.name == user, ApiTokenRow.name == name)
        ).first()
        if found is None:
            raise NotFoundError(f"'{user}' has no token '{name}'; `winslow token list` shows them.")
        row = found[0]
        if row.revoked_at is None:
            row.revoked_at = at
        session.execute(
            update(ConsoleSessionRow)
            .where(ConsoleSessionRow.token_id == row.id, ConsoleSessionRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        session.flush()
        return _to_token(row, user)
