"""Schema migrations (Alembic), run from code: no ``alembic.ini`` needs to be found on disk.

The migration scripts ship inside the ``db`` package, so an installed copy finds them too.
``politico db upgrade`` runs them; ``bot.app.build_app`` runs them on start for SQLite (a
PostgreSQL deployment upgrades once, explicitly, before starting several bot processes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from db.engine import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would read "%" in a password as a reference.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creating every table on a new one)."""
    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def current(url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def main(argv: list[str]) -> int:
    """``politico db upgrade|current [--config PATH]``."""
    import asyncio

    from db.config import DatabaseConfig
    from generation.config import add_config_argument, load_config

    parser = argparse.ArgumentParser(prog="politico db", description="Base de datos del registro.")
    add_config_argument(parser)
    parser.add_argument("action", choices=["upgrade", "current"],
                        help="upgrade: crear o actualizar las tablas; current: revisión actual")
    options = parser.parse_args(argv)
    url = load_config(DatabaseConfig, options.config).database.url
    if options.action == "upgrade":
        asyncio.run(upgrade(url))
        print(f"base de datos al día (revisión {head()})")
    else:
        print(asyncio.run(current(url)) or "(sin tablas)")
    return 0
