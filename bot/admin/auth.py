"""Who may use the desk: one admin password (argon2-hashed), lockout, CSRF tokens.

The password never lives in the config file: the environment holds its argon2 hash
(``POLITICO_ADMIN_PASSWORD_HASH``, from ``politico admin hash-password``) or, for quick
starts, the password itself (``POLITICO_ADMIN_PASSWORD``), hashed at start and then forgotten.
"""

from __future__ import annotations

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

_hasher = PasswordHasher()

Verdict = Literal["ok", "wrong", "locked"]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_hash_from_env(env: Mapping[str, str]) -> str:
    """The admin password hash from the environment; ``LookupError`` when neither is set."""
    stored = env.get(HASH_ENV, "").strip()
    if stored:
        if not stored.startswith("$argon2"):
            raise LookupError(f"{HASH_ENV} no es un hash argon2 (use `politico admin hash-password`)")
        return stored
    plain = env.get(PASSWORD_ENV, "")
    if plain:
        return hash_password(plain)
    raise LookupError(f"defina {HASH_ENV} (o {PASSWORD_ENV}) para habilitar la mesa de revisión")


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0


@dataclass
class AdminAuth:
    """Checks the password, locking a client out after ``max_failures`` wrong tries in a row.

    Lockout is per client address, so one attacker can't lock the real admin out from
    elsewhere; argon2's cost keeps guessing slow within the allowed tries.
    """

    password_hash: str
    max_failures: int = 5
    lockout_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, _Failures] = field(default_factory=dict)

    def check(self, password: str, client: str) -> Verdict:
        state = self._failures.get(client)
        now = self.clock()
        if state and state.locked_until > now:
            return "locked"
        try:
            _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            state = self._failures.setdefault(client, _Failures())
            state.count += 1
            if state.count >= self.max_failures:
                state.count = 0
                state.locked_until = now + self.lockout_s
                return "locked"
            return "wrong"
        self._failures.pop(client, None)
        return "ok"


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode())
    )
