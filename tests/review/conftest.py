"""Fixtures for the review desk: the review store over the suite's migrated ``engine`` (SQLite,
then PostgreSQL) and a way to fill its log."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.review import ReviewStore
from tests.review.factory import LogFactory


@pytest.fixture
def store(engine: AsyncEngine) -> ReviewStore:
    return ReviewStore(engine)


@pytest.fixture
def factory(engine: AsyncEngine) -> LogFactory:
    return LogFactory(engine)
