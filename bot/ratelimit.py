"""Sliding-window rate limits: how many requests a key (a user, a chat) may make per window.

Front-ends share one limiter through the core. The in-memory one serves a single process;
``bot.ratelimit_redis.RedisRateLimiter`` has the same interface for several processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: float) -> float | None:
        """Count one request for ``key``: None when allowed, else the seconds until it would be.

        A refused request is not counted, so waiting the returned time always succeeds.
        ``limit <= 0`` means no limit.
        """
        ...

    async def aclose(self) -> None: ...


class MemoryRateLimiter:
    """Per-key deques of request times; keys with no recent requests are dropped as they age."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()
        self._longest = 0.0  # the longest window used, so forgetting never undercounts

    async def hit(self, key: str, limit: int, window_s: float) -> float | None:
        if limit <= 0:
            return None
        async with self._lock:
            now = self._clock()
            self._longest = max(self._longest, window_s)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window_s:
                hits.popleft()
            if len(hits) >= limit:
                return max(hits[len(hits) - limit] + window_s - now, 0.001)
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget(now - self._longest)
            return None

    def _forget(self, before: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= before]:
            del self._hits[key]

    async def aclose(self) -> None:
        self._hits.clear()
