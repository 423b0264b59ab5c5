"""Fixtures for the review desk: a migrated log on SQLite or PostgreSQL and a way to fill it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from db.migrate import upgrade
from db.review import ReviewStore
from tests.review.factory import LogFactory


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> ReviewStore:
    return ReviewStore(engine)


@pytest.fixture
def factory(engine: AsyncEngine) -> LogFactory:
    return LogFactory(engine)
