"""Fixtures for the core's tests: the repo's politics tables and a fresh log, no model needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.catalog import Catalog
from bot.config import Settings, load_settings
from db.log import GenerationLog
from db.migrate import upgrade
from tests.conftest import write_config


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings whose model folder does not exist (tests here use a fake generator)."""
    return load_settings(write_config(tmp_path, tmp_path / "no-model"))


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    return Catalog.from_settings(settings.politics)


@pytest.fixture
async def log(settings: Settings) -> AsyncIterator[GenerationLog]:
    await upgrade(settings.database.url)
    opened = await GenerationLog.open(settings.database.url)
    yield opened
    await opened.aclose()
