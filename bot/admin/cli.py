"""``politico admin``: serve the web review desk, or hash the admin password for it.

    politico admin [serve] [--host 127.0.0.1] [--port 8080] [--config PATH]
    politico admin hash-password        # prints an argon2 hash for POLITICO_ADMIN_PASSWORD_HASH
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Mapping

from bot.admin.auth import SECRET_ENV, AdminAuth, hash_password, password_hash_from_env
from bot.config import Settings


def build_desk(settings: Settings, env: Mapping[str, str], *, https_only: bool = False):
    """The desk's ASGI app for ``settings`` (SQLite logs are migrated first, as the bot does)."""
    from bot.admin.app import create_app
    from bot.admin.nearest import TrainingIndex
    from bot.admin.publish import Publisher
    from db.engine import create_engine, is_sqlite
    from db.migrate import upgrade
    from db.review import ReviewStore

    auth = AdminAuth(password_hash_from_env(env))
    url = settings.database.url
    if is_sqlite(url):
        asyncio.run(upgrade(url))
    return create_app(
        ReviewStore(create_engine(url, echo=settings.database.echo)),
        auth,
        session_secret=env.get(SECRET_ENV) or None,
        publisher=Publisher.from_settings(settings),
        nearest=TrainingIndex.from_settings(settings).nearest,
        https_only=https_only,
    )


def main(argv: list[str]) -> int:
    from bot.cli import add_config_argument, settings_from

    parser = argparse.ArgumentParser(
        prog="politico admin",
        description="Mesa de revisión web. La contraseña viene del entorno "
        "(POLITICO_ADMIN_PASSWORD_HASH, o POLITICO_ADMIN_PASSWORD).",
    )
    add_config_argument(parser)
    parser.add_argument("action", nargs="?", default="serve", choices=["serve", "hash-password"])
    parser.add_argument("--host", default="127.0.0.1", help="dirección donde escuchar (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="puerto (8080)")
    parser.add_argument(
        "--https-only", action="store_true",
        help="cookie de sesión solo por HTTPS (detrás de un proxy TLS)",
    )
    options = parser.parse_args(argv)

    if options.action == "hash-password":
        password = getpass.getpass("Contraseña: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if not password:
            print("contraseña vacía", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0

    import uvicorn

    settings = settings_from(options.config)
    try:
        app = build_desk(settings, os.environ, https_only=options.https_only)
    except LookupError as exc:
        print(f"politico admin: {exc}", file=sys.stderr)
        return 2
    print(f"mesa de revisión en http://{options.host}:{options.port}/", file=sys.stderr)
    uvicorn.run(app, host=options.host, port=options.port, proxy_headers=True, log_level="info")
    return 0
