"""``politico admin``: serve the web review desk, and manage its accounts.

    politico admin [serve] [--host 127.0.0.1] [--port 8080] [--config PATH]
    politico admin add-user NAME        # a named account; asks for its password
    politico admin password NAME        # a new password; ends the account's sessions
    politico admin close-sessions [NAME]  # ends every session (of NAME, or of everyone)
    politico admin hash-password        # an argon2 hash for POLITICO_ADMIN_PASSWORD_HASH

Passwords are read from the terminal without echo, or as one line from a pipe.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.admin.auth import SECRET_ENV, AdminAuth, hash_password, password_hash_from_env
from bot.config import Settings

ACTIONS = ("serve", "add-user", "password", "close-sessions", "hash-password")


def build_desk(settings: Settings, env: Mapping[str, str], *, https_only: bool = False) -> Any:
    """The desk's ASGI app for ``settings`` (SQLite logs are migrated first, as the bot does).

    ``LookupError`` when nobody could log in: no account in the database and none in ``env``.
    """
    from zoneinfo import ZoneInfo

    from bot.admin.app import create_app
    from bot.admin.nearest import TrainingIndex
    from bot.admin.publish import Publisher
    from db.admins import AdminAccounts
    from db.engine import create_engine
    from db.review import ReviewStore

    env_hash = password_hash_from_env(env)
    engine = _migrated_engine(settings)
    accounts = AdminAccounts(engine)
    if env_hash is None and not asyncio.run(_count_and_release(accounts, engine)):
        raise LookupError("no hay cuentas: cree una con `politico admin add-user NOMBRE` "
                          "(o defina POLITICO_ADMIN_PASSWORD_HASH para la cuenta admin)")
    engine = create_engine(settings.database.url, echo=settings.database.echo)
    return create_app(
        ReviewStore(engine, ZoneInfo(settings.admin.timezone)),
        AdminAuth(env_hash),
        accounts=AdminAccounts(engine),
        options=settings.admin,
        ranking=settings.generation.ranking,
        session_secret=env.get(SECRET_ENV) or None,
        publisher=Publisher.from_settings(settings),
        nearest=TrainingIndex.from_settings(settings).nearest,
        https_only=https_only,
    )


def _migrated_engine(settings: Settings) -> Any:
    from db.engine import create_engine, is_sqlite
    from db.migrate import upgrade

    url = settings.database.url
    if is_sqlite(url):
        asyncio.run(upgrade(url))
    return create_engine(url, echo=settings.database.echo)


async def _count_and_release(accounts: Any, engine: Any) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return await accounts.count()
    except SQLAlchemyError as exc:
        raise LookupError(f"no se pudo leer las cuentas ({type(exc).__name__}): "
                          "¿falta `politico db upgrade`?") from None
    finally:
        await engine.dispose()


def server_config(app: Any, host: str, port: int, log_level: str = "info") -> Any:
    """uvicorn's settings for the desk: its own proxy handling (``[admin] trusted_proxies``,
    ``bot/admin/proxies.py``) replaces uvicorn's, which believes any local client."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, proxy_headers=False, forwarded_allow_ips="",
                          log_level=log_level)


def read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


def _accounts_action(settings: Settings, action: Callable[[Any], Awaitable[str]]) -> int:
    """Run ``action`` on the accounts of ``settings``' database; prints what it says."""
    from db.admins import AccountError, AdminAccounts

    engine = _migrated_engine(settings)

    async def run() -> str:
        try:
            return await action(AdminAccounts(engine))
        finally:
            await engine.dispose()

    try:
        print(asyncio.run(run()))
    except AccountError as exc:
        print(f"politico admin: {exc}", file=sys.stderr)
        return 2
    return 0


def _new_password() -> str | None:
    from bot.admin.account_routes import MIN_PASSWORD

    password = read_password("Contraseña: ")
    if len(password) < MIN_PASSWORD:
        print(f"politico admin: la contraseña debe tener al menos {MIN_PASSWORD} caracteres", file=sys.stderr)
        return None
    if sys.stdin.isatty() and getpass.getpass("Repítala: ") != password:
        print("politico admin: las contraseñas no coinciden", file=sys.stderr)
        return None
    return password


def main(argv: list[str]) -> int:
    from bot.cli import add_config_argument, settings_from

    parser = argparse.ArgumentParser(
        prog="politico admin",
        description="Mesa de revisión web y sus cuentas (politico admin add-user NOMBRE).",
    )
    add_config_argument(parser)
    parser.add_argument("action", nargs="?", default="serve", choices=ACTIONS)
    parser.add_argument("name", nargs="?", default="", help="la cuenta (add-user, password, close-sessions)")
    parser.add_argument("--host", default="127.0.0.1", help="dirección donde escuchar (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="puerto (8080)")
    parser.add_argument(
        "--https-only", action="store_true",
        help="cookie de sesión solo por HTTPS (detrás de un proxy TLS)",
    )
    options = parser.parse_args(argv)

    if options.action == "hash-password":
        password = read_password("Contraseña: ")
        if not password:
            print("contraseña vacía", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    if options.action in ("add-user", "password") and not options.name:
        parser.error(f"{options.action} necesita el nombre de la cuenta")

    settings = settings_from(options.config)
    name = options.name.strip().lower()
    if options.action in ("add-user", "password"):
        password = _new_password()
        if password is None:
            return 2

        async def store_password(accounts: Any) -> str:
            if options.action == "add-user":
                await accounts.add(name, hash_password(password))
                return f"cuenta {name} creada"
            closed = await accounts.set_password(name, hash_password(password))
            return f"contraseña de {name} cambiada; sesiones cerradas: {closed}"

        return _accounts_action(settings, store_password)
    if options.action == "close-sessions":

        async def close(accounts: Any) -> str:
            return f"sesiones cerradas: {await accounts.revoke_all(name or None)}"

        return _accounts_action(settings, close)

    import uvicorn

    try:
        app = build_desk(settings, os.environ, https_only=options.https_only)
    except LookupError as exc:
        print(f"politico admin: {exc}", file=sys.stderr)
        return 2
    print(f"mesa de revisión en http://{options.host}:{options.port}/", file=sys.stderr)
    uvicorn.Server(server_config(app, options.host, options.port)).run()
    return 0
