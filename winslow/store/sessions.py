"""Console sessions (table ``console_sessions``): made at sign-in, ended by the server.

A person signs in to the console once (password, LDAP, OpenID Connect, or an API
token); the browser then holds a session's random secret in its cookie, never a password
or token. Only the secret's SHA-256 is
kept, so the table is no list of ways in. The server decides when a session ends: 14 days
after sign-in at the latest (``SESSION_MAX_AGE_SECONDS``), after 3 days without a request
(``SESSION_IDLE_SECONDS``), at sign-out, when someone revokes it, when its user is
disabled, or when the token it was signed in with is revoked. Each session also has a
public ``handle``, a second random value that names it in lists and revocations and never
signs anybody in.

Time is a parameter (``at``), so tests move the clock instead of waiting for it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, delete, or_, select

from winslow import defaults
from winslow.errors import NotFoundError
from winslow.store.people_tables import ApiTokenRow, UserRow
from winslow.store.repo import Store, hash_token
from winslow.store.rows import now, utc
from winslow.store.tables import ConsoleSessionRow
from winslow.store.tokens import Caller, caller_of, find_token, session_token_usable

USER_AGENT_CHARS = 200
"""Characters of a browser's ``User-Agent`` kept with its session (the column's size)."""

ADDRESS_CHARS = 64
"""Characters of a client's address kept with its session (the column's size)."""


@dataclass(frozen=True)
class ConsoleSession:
    """A session as the store shows it: never its secret, never the secret's hash."""

    handle: str
    user: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    """The absolute end."""
    idle_expires_at: datetime
    """When it ends unless used before."""
    user_agent: str
    address: str

    @property
    def ends_at(self) -> datetime:
        """When the session ends if nothing else ends it: the earlier of its two ends."""
        return min(self.expires_at, self.idle_expires_at)


def _idle(seconds: float | None) -> timedelta:
    return timedelta(seconds=defaults.SESSION_IDLE_SECONDS if seconds is None else seconds)


def _to_session(row: ConsoleSessionRow, user: str, idle: timedelta) -> ConsoleSession:
    last_seen = utc(row.last_seen_at) or now()
    return ConsoleSession(
        handle=row.handle,
        user=user,
        created_at=utc(row.created_at) or now(),
        last_seen_at=last_seen,
        expires_at=utc(row.expires_at) or now(),
        idle_expires_at=last_seen + idle,
        user_agent=row.user_agent,
        address=row.address,
    )


def _live(at: datetime, idle: timedelta) -> list[ColumnElement[bool]]:
    """SQL conditions of a session that has not ended at ``at`` (nor its user or token)."""
    return [
        ConsoleSessionRow.revoked_at.is_(None),
        ConsoleSessionRow.expires_at > at,
        ConsoleSessionRow.last_seen_at > at - idle,
        UserRow.disabled.is_(False),
        session_token_usable(at),
    ]


def _sessions_query(at: datetime, idle: timedelta) -> Select[ConsoleSessionRow, UserRow]:
    return (
        select(ConsoleSessionRow, UserRow)
        .join(UserRow, ConsoleSessionRow.user_id == UserRow.id)
        .outerjoin(ApiTokenRow, ConsoleSessionRow.token_id == ApiTokenRow.id)
        .where(*_live(at, idle))
    )


def start_session(
    store: Store,
    token: str | None = None,
    *,
    user: str | None = None,
    user_agent: str = "",
    address: str = "",
    at: datetime | None = None,
    max_age_seconds: float | None = None,
    idle_seconds: float | None = None,
) -> tuple[str, ConsoleSession] | None:
    """Start a session for the working API token ``token``, or for ``user`` (whose
    password, directory or provider the caller has checked): return its secret (for the
    cookie, shown this once) and the session; ``None`` for a wrong or revoked token or a
    user who does not exist or is disabled.

    Sessions that have ended are deleted on the way, so the table holds live ones and
    those ended since the last sign-in.
    """
    at = at or now()
    idle = _idle(idle_seconds)
    max_age = timedelta(
        seconds=defaults.SESSION_MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds
    )
    secret = secrets.token_urlsafe(32)
    with store.transaction() as session:
        owner: UserRow | None
        token_row: ApiTokenRow | None = None
        if token is not None:
            found = find_token(session, token, at)
            if found is None:
                return None
            token_row, owner = found
        else:
            owner = session.scalars(select(UserRow).where(UserRow.name == user)).first()
            if owner is None or owner.disabled:
                return None
        session.execute(
            delete(ConsoleSessionRow).where(
                or_(
                    ConsoleSessionRow.revoked_at.is_not(None),
                    ConsoleSessionRow.expires_at <= at,
                    ConsoleSessionRow.last_seen_at <= at - idle,
                )
            )
        )
        row = ConsoleSessionRow(
            handle=secrets.token_hex(8),
            secret_hash=hash_token(secret),
            user_id=owner.id,
            token_id=token_row.id if token_row is not None else None,
            created_at=at,
            expires_at=at + max_age,
            last_seen_at=at,
            user_agent=user_agent[:USER_AGENT_CHARS],
            address=address[:ADDRESS_CHARS],
        )
        session.add(row)
        owner.last_sign_in_at = at
        session.flush()
        return secret, _to_session(row, owner.name, idle)


def session_caller(
    store: Store,
    secret: str,
    *,
    at: datetime | None = None,
    idle_seconds: float | None = None,
    touch_seconds: float = defaults.SESSION_TOUCH_SECONDS,
) -> Caller | None:
    """The caller behind the session whose secret is ``secret``, or ``None`` where there
    is no such session or it has ended. Notes the use as its "last seen", at most once
    every ``touch_seconds``.

    The secret is looked up by its hash: it is random and 256 bits long, so how long the
    lookup takes tells nothing about any other session's.
    """
    at = at or now()
    idle = _idle(idle_seconds)
    query = _sessions_query(at, idle).where(ConsoleSessionRow.secret_hash == hash_token(secret))
    with store.sessions() as session:
        found = session.execute(query).first()
        if found is None:
            return None
        row, user = found
        token = session.get(ApiTokenRow, row.token_id) if row.token_id is not None else None
        caller = caller_of(session, user, token, row.handle)
        last_seen = utc(row.last_seen_at) or at
        row_id = row.id
    if (at - last_seen).total_seconds() >= touch_seconds:
        with store.transaction() as session:
            touched = session.get(ConsoleSessionRow, row_id)
            if touched is not None:
                touched.last_seen_at = at
    return caller


def end_session(store: Store, secret: str, *, at: datetime | None = None) -> bool:
    """End the session whose secret is ``secret`` (signing out); ``False`` if there was
    no such session or it had ended already."""
    with store.transaction() as session:
        row = session.scalars(
            select(ConsoleSessionRow).where(
                ConsoleSessionRow.secret_hash == hash_token(secret),
                ConsoleSessionRow.revoked_at.is_(None),
            )
        ).first()
        if row is None:
            return False
        row.revoked_at = at or now()
        return True


def list_sessions(
    store: Store,
    *,
    user: str | None = None,
    at: datetime | None = None,
    idle_seconds: float | None = None,
) -> list[ConsoleSession]:
    """The sessions that have not ended (of ``user``), newest first."""
    at = at or now()
    idle = _idle(idle_seconds)
    query = _sessions_query(at, idle).order_by(
        ConsoleSessionRow.created_at.desc(), ConsoleSessionRow.id.desc()
    )
    if user is not None:
        query = query.where(UserRow.name == user)
    with store.sessions() as session:
        return [_to_session(row, owner.name, idle) for row, owner in session.execute(query)]


def revoke_session(
    store: Store,
    handle: str,
    *,
    user: str | None = None,
    at: datetime | None = None,
    idle_seconds: float | None = None,
) -> ConsoleSession:
    """End the session named ``handle`` at once (only if it is ``user``'s, when given)
    and return it. Raises ``NotFoundError`` when there is no such session that has not
    ended (or it is someone else's)."""
    at = at or now()
    idle = _idle(idle_seconds)
    query = _sessions_query(at, idle).where(ConsoleSessionRow.handle == handle)
    if user is not None:
        query = query.where(UserRow.name == user)
    with store.transaction() as session:
        found = session.execute(query).first()
        if found is None:
            whose = "" if user is None else f" of {user}"
            raise NotFoundError(
                f"No session '{handle}'{whose} that goes on; `winslow session list` shows them."
            )
        row, owner = found
        row.revoked_at = at
        return _to_session(row, owner.name, idle)
