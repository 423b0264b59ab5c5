"""Fixtures shared by the whole suite: a tiny model, a config that points at it, databases.

The plugins named below add the rest: the fake platforms and the bots that run against them
(``tests/support/bots.py``), and the rule that a test fails on an ERROR log line it does not
expect (``tests/support/error_logs.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.migrate import upgrade
from tests.support.services import POSTGRES_HOST, POSTGRES_PORT, require
from tests.support.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ("pytester", "tests.support.bots", "tests.support.error_logs")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` skip with one line where torch sees no GPU, so the suite passes on
    a CPU-only machine and checks the GPU path where there is one."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is false here")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny controlled GPT-2 saved with ``save_pretrained`` (built once per test session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def write_config(folder: Path, model_dir: Path, extra: str = "") -> Path:
    """A config.toml for tests: the repo's politics tables, a tiny model on the CPU (the same
    tweets on any machine), SQLite in ``folder``.

    ``extra`` is appended as-is (TOML tables that the test needs to change).
    """
    base = (ROOT / "config.toml").read_text(encoding="utf-8")
    politics = base[base.index("\n[politics.sides.derecha]") + 1:]
    text = f"""
[database]
url = "sqlite+aiosqlite:///{folder / 'test.db'}"
spool_path = "{folder / 'spool.jsonl'}"

[generation]
default_model = "demo"

[generation.engine]
batch_window_ms = 2
request_timeout_s = 30

[generation.models.demo]
path = "{model_dir}"
kind = "controlled"
device = "cpu"

[generation.models.demo.decoding]
max_new_tokens = 24
{extra}
{politics}
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path, tiny_model_dir: Path) -> Path:
    return write_config(tmp_path, tiny_model_dir)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    require(POSTGRES_HOST, POSTGRES_PORT, "PostgreSQL")
    import asyncpg

    name = f"politico_test_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (SQLite, then PostgreSQL), closed after the test."""
    await upgrade(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()
