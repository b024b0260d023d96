"""The tables of people and access: users, groups, grants, personal API tokens.

They share ``Base`` with ``store/tables.py``, which imports this module so that
``Base.metadata`` (migrations, schema checks) sees them. Passwords and tokens are kept
as hashes only (argon2id for passwords, SHA-256 for random tokens).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from winslow.store.tables import Base


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(10), default="local")
    """``local``, ``ldap`` or ``oidc``: who checks the person's password."""
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    quota: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    """``{"gpus", "cpus", "memory_mb"}`` the user's projects may hold at once; NULL: none."""


class GroupRow(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(10), default="local")
    """``ldap`` / ``oidc``: membership follows the directory at each sign-in."""
    quota: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GroupMemberRow(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20), default="member")
    """The member's role within the group: its owners and maintainers manage it."""


class AccessGrantRow(Base):
    """A role on a project (``key``: its id) or pipeline (``key``: its name)."""

    __tablename__ = "access_grants"
    __table_args__ = (
        UniqueConstraint("kind", "key", "principal", name="uq_access_grants_principal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(100), index=True)
    principal: Mapped[str] = mapped_column(String(110))
    """``user:<name>``, ``group:<name>`` or ``*`` (every signed-in user)."""
    role: Mapped[str] = mapped_column(String(20))


class ApiTokenRow(Base):
    """Personal API tokens: a user's, with a scope, an optional end and project limit."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_api_tokens_user_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(10), default="steer")
    projects: Mapped[list[str] | None] = mapped_column(JSON, nullable=True, default=None)
    """Ids of the only projects the token acts on; NULL: every project the user may."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
