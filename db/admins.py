"""The desk's named accounts and the sessions the server can end.

A session lives here, not in the cookie: the cookie carries a random token, this table its
SHA-256 and whether it was ended. Logging out, a password change and "close every session"
set ``revoked_at``, so a cookie copied before any of them opens nothing afterwards. Password
hashing is the caller's (``bot/admin/auth.py``): this module stores hashes, never passwords.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from db.models import AdminSession, AdminUser, utcnow

#: Account names: short, and safe to show anywhere (the audit, a URL, a log line).
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AccountError(ValueError):
    """An account name that is malformed, taken, or unknown."""


@dataclass(frozen=True)
class OpenSession:
    """A live session as the desk needs it: who, and since when."""

    id: int
    admin: str
    client: str
    created_at: datetime
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminAccounts:
    """Accounts and sessions over the log's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    # -- accounts ------------------------------------------------------------------------------

    async def add(self, name: str, password_hash: str) -> None:
        """A new account; ``AccountError`` for a malformed or taken name."""
        if not NAME.match(name):
            raise AccountError(f"nombre inválido {name!r}: minúsculas, cifras, '.', '_' o '-' (hasta 64)")
        try:
            async with self._sessions.begin() as session:
                session.add(AdminUser(name=name, password_hash=password_hash))
        except IntegrityError:
            raise AccountError(f"ya existe la cuenta {name!r}") from None

    async def password_hash(self, name: str) -> str | None:
        async with self._sessions() as session:
            return await session.scalar(select(AdminUser.password_hash).where(AdminUser.name == name))

    async def names(self) -> list[str]:
        async with self._sessions() as session:
            return list(await session.scalars(select(AdminUser.name).order_by(AdminUser.name)))

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count(AdminUser.id))) or 0)

    async def set_password(self, name: str, password_hash: str, keep_session: int | None = None) -> int:
        """Change an account's password and end its sessions (but ``keep_session``, the one
        that asked); returns how many ended. ``AccountError`` for an unknown account."""
        async with self._sessions.begin() as session:
            changed = await session.execute(
                update(AdminUser).where(AdminUser.name == name)
                .values(password_hash=password_hash, password_changed_at=utcnow())
            )
            if not changed.rowcount:
                raise AccountError(f"no existe la cuenta {name!r}")
        return await self.revoke_all(name, keep=keep_session)

    # -- sessions ------------------------------------------------------------------------------

    async def open(self, admin: str, client: str, lifetime: timedelta) -> str:
        """Start a session; returns the token for the cookie (stored only as its hash)."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._sessions.begin() as session:
            session.add(AdminSession(token_hash=token_hash(token), admin=admin, client=client[:64],
                                     created_at=now, expires_at=now + lifetime))
        return token

    async def find(self, token: str) -> OpenSession | None:
        """The live session a cookie's token names; None once ended or expired."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(AdminSession).where(
                    AdminSession.token_hash == token_hash(token),
                    AdminSession.revoked_at.is_(None),
                    AdminSession.expires_at > utcnow(),
                )
            )
        if found is None:
            return None
        return OpenSession(found.id, found.admin, found.client, found.created_at, found.expires_at)

    async def revoke(self, token: str) -> bool:
        """End one session (logging out); False if it had ended already."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(AdminSession)
                .where(AdminSession.token_hash == token_hash(token), AdminSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return bool(result.rowcount)

    async def revoke_all(self, admin: str | None, keep: int | None = None) -> int:
        """End every live session of ``admin`` (None: of everyone) but ``keep``; returns how many."""
        query = update(AdminSession).where(AdminSession.revoked_at.is_(None))
        if admin is not None:
            query = query.where(AdminSession.admin == admin)
        if keep is not None:
            query = query.where(AdminSession.id != keep)
        async with self._sessions.begin() as session:
            result = await session.execute(query.values(revoked_at=utcnow()))
        return int(result.rowcount or 0)

    async def live(self, admin: str) -> list[OpenSession]:
        """``admin``'s sessions still open, newest first (the account page lists them)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(AdminSession)
                .where(AdminSession.admin == admin, AdminSession.revoked_at.is_(None),
                       AdminSession.expires_at > utcnow())
                .order_by(AdminSession.created_at.desc(), AdminSession.id.desc())
            )
            return [OpenSession(s.id, s.admin, s.client, s.created_at, s.expires_at) for s in rows]
