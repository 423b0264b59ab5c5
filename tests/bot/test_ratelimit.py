"""The in-memory sliding window."""

from __future__ import annotations

from bot.ratelimit import MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sliding_window_counts_and_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    assert await limiter.hit("u", 2, 60) is None
    clock.now += 10
    assert await limiter.hit("u", 2, 60) is None
    clock.now += 10
    assert await limiter.hit("u", 2, 60) == 40  # the first hit leaves the window in 40 s
    assert await limiter.hit("other", 2, 60) is None
    clock.now += 40
    assert await limiter.hit("u", 2, 60) is None  # refused hits were not counted


async def test_zero_means_no_limit() -> None:
    limiter = MemoryRateLimiter()
    for _ in range(50):
        assert await limiter.hit("u", 0, 60) is None
