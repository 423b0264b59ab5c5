"""The real python-telegram-bot on the real app (tiny model, SQLite), against a fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from telegram.ext import AIORateLimiter

from bot.app import App, build_app
from bot.config import load_settings
from bot.telegram.frontend import TelegramFrontend
from tests.conftest import write_config
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

Start = Callable[..., AbstractAsyncContextManager[TelegramFrontend]]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


def telegram_config(folder: Path, model_dir: Path, api: FakeBotAPI, extra: str = "", telegram: str = "") -> Path:
    """A test config; ``extra`` is appended as TOML tables, ``telegram`` as keys of [telegram]."""
    table = f'[telegram]\ntoken = "{TOKEN}"\nbase_url = "{api.base_url}"\n{telegram}'
    return write_config(folder, model_dir, extra + "\n" + table)


@asynccontextmanager
async def running_app(config: Path) -> AsyncIterator[App]:
    app = await build_app(load_settings(config))
    try:
        yield app
    finally:
        await app.aclose()


@asynccontextmanager
async def running_bot(app: App, **options: object) -> AsyncIterator[TelegramFrontend]:
    """The front-end taking updates; Telegram's flood limits off (the fake has none)."""
    options.setdefault("rate_limiter", AIORateLimiter(overall_max_rate=0, group_max_rate=0))
    options.setdefault("queue_notice_after_s", 30.0)
    frontend = TelegramFrontend(app, app.settings.telegram, **options)  # type: ignore[arg-type]
    await frontend.start()
    try:
        yield frontend
    finally:
        await frontend.stop()


@pytest.fixture
def start_bot(tmp_path: Path, tiny_model_dir: Path, api: FakeBotAPI) -> Start:
    """``async with start_bot(extra_toml, telegram="keys", **frontend_options) as frontend``."""

    @asynccontextmanager
    async def start(extra: str = "", telegram: str = "", **options: object) -> AsyncIterator[TelegramFrontend]:
        config = telegram_config(tmp_path, tiny_model_dir, api, extra, telegram)
        async with running_app(config) as app, running_bot(app, **options) as frontend:
            yield frontend

    return start
