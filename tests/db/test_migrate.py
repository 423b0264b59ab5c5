"""Migrations: together they create exactly db/models.py's schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db.engine import create_engine
from db.log import GenerationLog
from db.migrate import MIGRATIONS, current, head, upgrade
from db.models import Base

ROOT = Path(__file__).resolve().parents[2]


async def test_upgrade_creates_the_models_schema(database_url: str) -> None:
    assert await current(database_url) is None
    await upgrade(database_url)
    await upgrade(database_url)  # idempotent
    assert await current(database_url) == head()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata))
    finally:
        await engine.dispose()
    assert diff == []


async def test_tweets_stored_before_0002_are_never_sent_again(database_url: str) -> None:
    """Upgrading a live database must not make the bot resend every tweet it still holds."""
    await upgrade(database_url, "0001")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            for statement in (
                "INSERT INTO requests (id, created_at, platform, raw_command, controls, side, coalition, party, "
                "sentiment, model, prompt, params, status, error, reply_to) VALUES (1, CURRENT_TIMESTAMP, "
                "'telegram', '/tuit', '{}', '', '', '', '', '', '', '{}', 'ok', '', '{}')",
                "INSERT INTO generations (id, request_id, created_at, candidate, text, tokens, latency_ms, shown, "
                "review_status, message_ref) VALUES (1, 1, CURRENT_TIMESTAMP, 0, 'viejo', 0, 0, TRUE, 'pending', '')",
            ):
                await connection.exec_driver_sql(statement)
        await upgrade(database_url)
        log = GenerationLog(engine)
        assert await log.unanswered(3600) == []
        assert not await log.mark_sending(1)
    finally:
        await engine.dispose()


async def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    await upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            modes = [(await connection.exec_driver_sql(f"PRAGMA {p}")).scalar()
                     for p in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")]
    finally:
        await engine.dispose()
    assert modes == ["wal", 1, 30000, 1]


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file() and (MIGRATIONS / "script.py.mako").is_file()
    assert MIGRATIONS.parent == ROOT / "db"


def test_politico_db_upgrade(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[database]\nurl = "sqlite+aiosqlite:///log.db"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert head() in done.stdout and (tmp_path / "log.db").is_file()
    done = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config), "db", "current"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.stdout.strip() == head()
