"""Rate limits shared through the real Redis: two limiters stand for two bot processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from bot.ratelimit_redis import RedisRateLimiter
from tests.support.services import REDIS_HOST, REDIS_PORT, require

URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisRateLimiter, RedisRateLimiter]]:
    require(REDIS_HOST, REDIS_PORT, "Redis")
    prefix = f"politico-test:{uuid.uuid4().hex}:"  # keys of this test only
    first, second = RedisRateLimiter(URL, prefix=prefix), RedisRateLimiter(URL, prefix=prefix)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_two_processes_share_one_window(pair: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    first, second = pair
    hits = [limiter.hit("user:1", 5, 60) for _ in range(10) for limiter in (first, second)]
    results = await asyncio.gather(*hits)
    allowed = [r for r in results if r is None]
    refused = [r for r in results if r is not None]
    assert len(allowed) == 5, "exactly the limit passes, however the hits interleave"
    assert all(0 < wait <= 60 for wait in refused)
    assert await first.hit("user:2", 5, 60) is None, "other keys have their own window"


async def test_window_slides_and_refusals_are_not_counted(
    pair: tuple[RedisRateLimiter, RedisRateLimiter],
) -> None:
    first, second = pair
    assert await first.hit("chat:9", 2, 0.4) is None
    assert await second.hit("chat:9", 2, 0.4) is None
    wait = await first.hit("chat:9", 2, 0.4)
    assert wait is not None and 0 < wait <= 0.4
    assert await second.hit("chat:9", 2, 0.4) is not None
    await asyncio.sleep(wait + 0.05)
    # The refused hits were not recorded, so the wait that was announced is enough.
    assert await second.hit("chat:9", 2, 0.4) is None


async def test_no_limit_and_unreachable_redis_allow(pair: tuple[RedisRateLimiter, RedisRateLimiter]) -> None:
    first, _ = pair
    assert all([await first.hit("user:3", 0, 60) is None for _ in range(3)])
    down = RedisRateLimiter("redis://127.0.0.1:1/0")
    try:
        assert await down.hit("user:4", 1, 60) is None
        assert await down.hit("user:4", 1, 60) is None
    finally:
        await down.aclose()
