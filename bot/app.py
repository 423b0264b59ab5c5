"""Everything a front-end runs on, built from the settings in one place.

Console, Telegram, Discord and the web desk all start with ``await build_app(settings)`` and
finish with ``await app.aclose()``, so they share one log, one engine and one rate limiter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.config import Settings
from bot.core import BotCore
from bot.game.rounds import Game
from bot.ratelimit import MemoryRateLimiter, RateLimiter
from bot.review import ChatReview
from db.engine import is_sqlite
from db.game import GameStore
from db.leases import Heartbeat
from db.log import GenerationLog
from db.migrate import upgrade
from db.review import ReviewStore
from generation.serving.backends import build_backend
from generation.serving.service import TweetGenerator
from generation.types import Backend

logger = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    core: BotCore
    log: GenerationLog
    generator: TweetGenerator
    backend: Backend
    limiter: RateLimiter
    #: Renews the leases of the requests in hand while the app runs.
    heartbeat: Heartbeat
    #: ¿Real o ficticio? (its round timers stop with the app).
    game: Game | None = None

    async def aclose(self) -> None:
        """Let in-flight generations finish (the engine drains, its leases still renewed), stop
        the heartbeat, let go of the leases of whatever is still unanswered (so that live peers
        take it over at their next look rather than when the leases run out), and close the
        database."""
        if self.game is not None:
            await self.game.aclose()
        try:
            await self.generator.aclose()
        finally:
            await self.heartbeat.stop()
            try:
                released = await self.log.release_held()
                if released:
                    logger.info("let go of %d unanswered request(s) for the other processes", released)
            except Exception:
                logger.warning("could not let go of the request leases; they run out on their own", exc_info=True)
            try:
                await self.limiter.aclose()
            finally:
                await self.log.aclose()


def build_limiter(settings: Settings) -> RateLimiter:
    """Redis-backed limits shared by every process when ``rate_limits.redis_url`` is set."""
    if settings.rate_limits.redis_url:
        from bot.ratelimit_redis import RedisRateLimiter

        return RedisRateLimiter(settings.rate_limits.redis_url)
    return MemoryRateLimiter()


async def build_app(settings: Settings, *, start_engine: bool = True) -> App:
    """Migrate (SQLite), open the log, build the backend, generator, limiter and core.

    ``start_engine`` loads the default model now (a local backend), so the first user does
    not wait for it; tests that never generate may skip it.
    """
    database = settings.database
    if is_sqlite(database.url):
        await upgrade(database.url)
    log = await GenerationLog.open(database.url, database.spool_path, database.echo)
    try:
        backend = build_backend(settings.generation)
    except BaseException:
        await log.aclose()
        raise
    start = getattr(backend, "start", None)
    if start_engine and start is not None:
        try:
            await start()
        except BaseException:
            await backend.aclose()
            await log.aclose()
            raise
    generator = TweetGenerator(settings.generation, backend)
    limiter = build_limiter(settings)
    core = BotCore(settings, generator, log, limiter)
    ChatReview(settings, ReviewStore(log.engine)).install(core)
    game = Game(settings, GameStore(log.engine), core)
    game.install()
    heartbeat = Heartbeat(log, core.lease_s, core.lease_s / 3, core.max_hold_s)
    heartbeat.start()
    return App(settings, core, log, generator, backend, limiter, heartbeat, game=game)
