"""What ``build_app`` chooses from the settings."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.app import build_app, build_limiter
from bot.config import Settings, load_settings
from bot.ratelimit import MemoryRateLimiter
from bot.types import FICTION_LABEL, Incoming, Origin
from tests.conftest import write_config
from tests.support.waiting import until


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


async def test_the_app_renews_the_leases_of_the_requests_in_hand(tmp_path: Path, tiny_model_dir: Path) -> None:
    """``build_app`` starts the heartbeat itself: a request the app holds keeps its lease past
    the first one's end, with nobody but the app renewing it."""
    settings = load_settings(write_config(tmp_path, tiny_model_dir, "[bot]\nlease_s = 1\n"))
    app = await build_app(settings, start_engine=False)
    try:
        held = await app.log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit", source="c1:1",
                                   lease_s=app.core.lease_s)

        async def renewed() -> bool:
            request = await app.log.request(held.id)
            return request.lease_until > request.created_at + timedelta(seconds=app.core.lease_s)

        await until(renewed, "the app's heartbeat to renew the lease", timeout=15)
    finally:
        await app.aclose()


async def test_a_clean_stop_lets_go_of_what_is_still_unanswered(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A process stopping on SIGTERM releases the leases of requests it leaves unanswered, so a
    live peer takes them over at its next look instead of waiting for them to run out; what it
    answered keeps its record."""
    settings = load_settings(write_config(tmp_path, tiny_model_dir))
    app = await build_app(settings, start_engine=False)
    left = await app.log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit", source="c1:1",
                               lease_s=app.core.lease_s)
    written = await app.log.begin("telegram", "u2", "Bea", "c2", "private", "", "/tuit", source="c2:1",
                                  lease_s=app.core.lease_s)
    await app.log.finish(written.id, "error", error="algo")  # written, not yet delivered
    answered = await app.log.begin("telegram", "u3", "Caro", "c3", "private", "", "/tuit", source="c3:1",
                                   lease_s=app.core.lease_s)
    await app.log.finish(answered.id, "error", error="algo")
    await app.log.answered(answered.id)
    await app.aclose()
    app = await build_app(settings, start_engine=False)
    try:
        leases = {r: (await app.log.request(r)).lease_until for r in (left.id, written.id, answered.id)}
        assert leases[left.id] is None and leases[written.id] is None
        assert leases[answered.id] is not None  # answered: nothing to hand over
    finally:
        await app.aclose()
