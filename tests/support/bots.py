"""The real front-ends on the real app (tiny model, SQLite) against the fake platform servers.

A pytest plugin (``tests/conftest.py`` loads it), so the Telegram, Discord and game tests share
one copy of each fixture: ``api`` (the fake Bot API), ``fake`` (the fake Discord), and
``start_telegram`` / ``start_discord``, which start the app and its front-end from a test
config and stop both when the block ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from telegram.ext import AIORateLimiter

from bot.app import App, build_app
from bot.config import load_settings
from bot.discord.frontend import DiscordFrontend
from bot.telegram.frontend import TelegramFrontend
from tests.conftest import write_config
from tests.fakes import discord_api, telegram_api
from tests.fakes.discord_api import IDENTIFY_TIMEOUT_S, FakeDiscord
from tests.fakes.telegram_api import FakeBotAPI

#: Writes a test config: ``(folder, model_dir, extra_toml) -> path`` (``write_config`` or a
#: variant of it, such as the game's, which also points the model at real tweets).
ConfigWriter = Callable[[Path, Path, str], Path]
StartTelegram = Callable[..., AbstractAsyncContextManager[TelegramFrontend]]
StartDiscord = Callable[..., AbstractAsyncContextManager[DiscordFrontend]]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def telegram_table(api: FakeBotAPI, keys: str = "") -> str:
    """The ``[telegram]`` table that points the bot at ``api``, with more ``keys`` (TOML lines)."""
    return f'[telegram]\ntoken = "{telegram_api.TOKEN}"\nbase_url = "{api.base_url}"\n{keys}'


def discord_table(fake: FakeDiscord, guild: bool = True) -> str:
    """The ``[discord]`` table that points the bot at ``fake`` (commands synced to its guild)."""
    guild_id = discord_api.GUILD_ID if guild else 0
    return f'[discord]\ntoken = "{discord_api.TOKEN}"\napi_base = "{fake.api_base}"\nguild_id = {guild_id}\n'


def telegram_config(folder: Path, model_dir: Path, api: FakeBotAPI, extra: str = "", telegram: str = "") -> Path:
    """A test config; ``extra`` is appended as TOML tables, ``telegram`` as keys of [telegram]."""
    return write_config(folder, model_dir, extra + "\n" + telegram_table(api, telegram))


@asynccontextmanager
async def running_app(config: Path) -> AsyncIterator[App]:
    app = await build_app(load_settings(config))
    try:
        yield app
    finally:
        await app.aclose()


@asynccontextmanager
async def running_bot(app: App, **options: object) -> AsyncIterator[TelegramFrontend]:
    """The Telegram front-end taking updates; Telegram's flood limits off (the fake has none)."""
    options.setdefault("rate_limiter", AIORateLimiter(overall_max_rate=0, group_max_rate=0))
    options.setdefault("queue_notice_after_s", 30.0)
    frontend = TelegramFrontend(app, app.settings.telegram, **options)  # type: ignore[arg-type]
    await frontend.start()
    try:
        yield frontend
    finally:
        await frontend.stop()


@asynccontextmanager
async def running_discord(app: App, fake: FakeDiscord, **options: object) -> AsyncIterator[DiscordFrontend]:
    """The Discord front-end, once the fake gateway has seen it identify."""
    frontend = DiscordFrontend(app, app.settings.discord, **options)  # type: ignore[arg-type]
    try:
        await frontend.start()
        await asyncio.wait_for(fake.identified.wait(), IDENTIFY_TIMEOUT_S)
        yield frontend
    finally:
        await frontend.stop()


@pytest.fixture
def start_telegram(tmp_path: Path, tiny_model_dir: Path, api: FakeBotAPI) -> StartTelegram:
    """``async with start_telegram(extra_toml, telegram="keys", write=..., **frontend_options)``."""

    @asynccontextmanager
    async def start(extra: str = "", telegram: str = "", write: ConfigWriter = write_config,
                    **options: object) -> AsyncIterator[TelegramFrontend]:
        config = write(tmp_path, tiny_model_dir, extra + "\n" + telegram_table(api, telegram))
        async with running_app(config) as app, running_bot(app, **options) as frontend:
            yield frontend

    return start


@pytest.fixture
def start_discord(tmp_path: Path, tiny_model_dir: Path, fake: FakeDiscord) -> StartDiscord:
    """``async with start_discord(extra_toml, guild=True, write=..., **frontend_options)``."""

    @asynccontextmanager
    async def start(extra: str = "", guild: bool = True, write: ConfigWriter = write_config,
                    **options: object) -> AsyncIterator[DiscordFrontend]:
        config = write(tmp_path, tiny_model_dir, extra + "\n" + discord_table(fake, guild))
        async with running_app(config) as app, running_discord(app, fake, **options) as frontend:
            yield frontend

    return start
