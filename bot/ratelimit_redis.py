"""Rate limits shared by every bot process through Redis (``rate_limits.redis_url``).

Same sliding-window semantics as ``bot.ratelimit.MemoryRateLimiter``: one sorted set per key
holds the times of the requests in the window. Trimming, counting, refusing or recording all
happen in one Lua script, which Redis runs atomically, so two processes hitting the same key at
once can never both take the last slot. Times come from the Redis server's clock (``TIME``), so
bot machines whose clocks disagree still share one window.

If Redis is unreachable the request is allowed and a warning logged: a limiter outage should
slow abuse-handling, not take the bot down.
"""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

#: KEYS[1]: the key's sorted set. ARGV: limit, window in microseconds, a unique member.
#: Returns -1 when the hit was recorded, else the microseconds until it would be allowed.
SLIDING_WINDOW = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return math.max(tonumber(oldest[2]) + window - now, 1000)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return -1
"""

KEY_PREFIX = "politico:ratelimit:"


class RedisRateLimiter:
    """A ``bot.ratelimit.RateLimiter`` whose windows live in Redis."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX) -> None:
        self._redis = Redis.from_url(url)
        self._script = self._redis.register_script(SLIDING_WINDOW)
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_s: float) -> float | None:
        if limit <= 0:
            return None
        window_us = max(int(window_s * 1_000_000), 1)
        try:
            result = await self._script(
                keys=[self._prefix + key], args=[limit, window_us, uuid.uuid4().hex]
            )
        except RedisError as exc:
            log.warning("rate limiter: Redis unavailable, allowing %s: %s", key, exc)
            return None
        wait_us = int(result)
        return None if wait_us < 0 else wait_us / 1_000_000

    async def aclose(self) -> None:
        await self._redis.aclose()
