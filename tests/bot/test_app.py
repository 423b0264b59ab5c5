"""What ``build_app`` chooses from the settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import build_app, build_limiter
from bot.config import Settings, load_settings
from bot.ratelimit import MemoryRateLimiter
from bot.types import FICTION_LABEL, Incoming, Origin


async def test_limiter_is_in_memory_unless_redis_is_configured(settings: Settings) -> None:
    assert isinstance(build_limiter(settings), MemoryRateLimiter)
    shared = settings.model_copy(update={"rate_limits": settings.rate_limits.model_copy(
        update={"redis_url": "redis://127.0.0.1:6379/0"})})
    limiter = build_limiter(shared)
    try:
        assert type(limiter).__name__ == "RedisRateLimiter"
    finally:
        await limiter.aclose()


async def test_concurrent_commands_through_the_real_engine(config_path: Path) -> None:
    """The whole stack in one process: the tiny model batches concurrent requests, every
    reply is a labelled tweet, and every one is in the log before the reply comes back."""
    app = await build_app(load_settings(config_path))
    try:
        origins = [Origin("console", f"u{i}", f"c{i % 3}") for i in range(8)]
        commands = ["/tuit", "/tuit derecha positivo pensiones", "/tuit izquierda #Salud", "/tuit centro mixto"]
        replies = await asyncio.gather(*(
            app.core.handle(Incoming(o, commands[i % len(commands)])) for i, o in enumerate(origins)))
        assert all(r.kind == "tweet" and r.text.endswith(FICTION_LABEL) for r in replies), replies
        for reply in replies:
            assert reply.tweet is not None
            logged = await app.log.generation(reply.tweet.generation_id)
            assert logged is not None and logged.text == reply.tweet.text and logged.model == "demo"
    finally:
        await app.aclose()
