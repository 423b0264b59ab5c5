"""Async SQLAlchemy engines for the log, with SQLite set up to survive a killed process.

SQLite gets WAL (readers never block the writer, and a crash mid-write loses nothing
committed), ``synchronous=NORMAL`` (safe with WAL, much faster than FULL), a busy timeout (other
processes wait for the lock instead of failing), foreign keys, and the search's folding function. Write transactions start with
``BEGIN IMMEDIATE`` so two concurrent writers queue on the busy timeout instead of one failing
when it upgrades a read lock ("database is locked").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.fold import SQLITE_FUNCTION, fold_text

BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, echo: bool = False) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``)."""
    options: dict[str, Any] = {"echo": echo}
    if not is_sqlite(url):
        options["pool_pre_ping"] = True
        return create_async_engine(url, **options)
    options["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction handling from the driver so BEGIN IMMEDIATE below is used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        # The desk's accent-insensitive search (db/fold.py): SQLite has no translate().
        dbapi_connection.create_function(SQLITE_FUNCTION, 1, fold_text, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
