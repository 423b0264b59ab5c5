"""Who may use the desk: named accounts (argon2), lockout by account and by client, CSRF tokens.

Accounts live in the database (``politico admin add-user NAME``). For a quick start the
environment may define one more account, ``admin``: its argon2 hash
(``POLITICO_ADMIN_PASSWORD_HASH``, from ``politico admin hash-password``) or the password itself
(``POLITICO_ADMIN_PASSWORD``), hashed at start and then forgotten. Passwords never live in
the config file.

Lockout counts wrong passwords per client address and per account. The client count stops
one guesser quickly; the account count stops a guesser who changes address (or forges one),
at the price that a determined attacker can keep an account locked: an account's threshold is
higher so a typo-prone admin is not the one locked out.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASH_ENV = "POLITICO_ADMIN_PASSWORD_HASH"
PASSWORD_ENV = "POLITICO_ADMIN_PASSWORD"
SECRET_ENV = "POLITICO_ADMIN_SESSION_SECRET"
#: The account the environment's password opens.
ENV_ACCOUNT = "admin"
#: Failure records kept at most (each client and account one); the oldest go first.
_MAX_TRACKED = 10_000

_hasher = PasswordHasher()
#: Verified when the account does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

Verdict = Literal["ok", "wrong", "locked"]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_hash_from_env(env: Mapping[str, str]) -> str | None:
    """The ``admin`` account's hash from the environment; None when neither variable is set,
    ``LookupError`` when the hash variable holds something that is not an argon2 hash."""
    stored = env.get(HASH_ENV, "").strip()
    if stored:
        if not stored.startswith("$argon2"):
            raise LookupError(f"{HASH_ENV} no es un hash argon2 (use `politico admin hash-password`)")
        return stored
    plain = env.get(PASSWORD_ENV, "")
    return hash_password(plain) if plain else None


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


@dataclass
class _Counter:
    """Wrong tries in a row per key (a client address or an account), and lockouts."""

    limit: int
    lockout_s: float
    clock: Callable[[], float]
    failures: dict[str, _Failures] = field(default_factory=dict)

    def locked(self, key: str) -> bool:
        state = self.failures.get(key)
        return bool(state and state.locked_until > self.clock())

    def fail(self, key: str) -> bool:
        """Count one failure; True when it locks ``key`` out."""
        state = self.failures.pop(key, None) or _Failures()
        self.failures[key] = state  # most recent last, so pruning drops the stalest
        while len(self.failures) > _MAX_TRACKED:
            self.failures.pop(next(iter(self.failures)))
        state.count += 1
        if state.count >= self.limit:
            state.count = 0
            state.locked_until = self.clock() + self.lockout_s
            return True
        return False

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


@dataclass
class AdminAuth:
    """Checks a name and password against a stored hash, with lockout.

    ``password_hash`` is the environment's ``admin`` account (None: accounts come only from the
    database). A locked client or account is refused before the password is even checked, so
    the right password does not get through a lockout either.
    """

    password_hash: str | None = None
    max_failures: int = 5
    account_max_failures: int = 10
    lockout_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _clients: _Counter = field(init=False)
    _accounts: _Counter = field(init=False)

    def __post_init__(self) -> None:
        self._clients = _Counter(self.max_failures, self.lockout_s, self.clock)
        self._accounts = _Counter(self.account_max_failures, self.lockout_s, self.clock)

    def env_hash(self, name: str) -> str | None:
        """The environment account's hash, when ``name`` is that account."""
        return self.password_hash if name == ENV_ACCOUNT else None

    async def check(self, name: str, password: str, client: str, stored_hash: str | None) -> Verdict:
        """``ok``, ``wrong`` or ``locked``; argon2 runs on a thread, off the event loop."""
        if self._clients.locked(client) or self._accounts.locked(name):
            return "locked"
        good = await asyncio.to_thread(verify_password, stored_hash or _DUMMY_HASH, password)
        if good and stored_hash:
            self._clients.clear(client)
            self._accounts.clear(name)
            return "ok"
        client_locked = self._clients.fail(client)
        account_locked = self._accounts.fail(name)
        return "locked" if client_locked or account_locked else "wrong"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode())
    )
