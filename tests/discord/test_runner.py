"""``politico run``: Telegram and Discord in one process on one app, stopped cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot import runner
from bot.config import load_settings
from bot.types import FICTION_LABEL
from tests.conftest import write_config
from tests.fakes.discord_api import IDENTIFY_TIMEOUT_S, FakeDiscord
from tests.fakes.telegram_api import FakeBotAPI
from tests.support.bots import discord_table, telegram_table
from tests.telegram.helpers import answer_to, text_of


async def test_both_front_ends_share_one_app_and_stop_on_request(
    tmp_path: Path, tiny_model_dir: Path, api: FakeBotAPI, fake: FakeDiscord
) -> None:
    telegram, discord = api, fake
    extra = telegram_table(telegram) + discord_table(discord, guild=False)
    settings = load_settings(write_config(tmp_path, tiny_model_dir, extra))
    stop = asyncio.Event()
    run = asyncio.create_task(runner.run(settings, stop))
    try:
        message = await telegram.send_text("/tuit derecha")
        await asyncio.wait_for(discord.identified.wait(), IDENTIFY_TIMEOUT_S)
        interaction = await discord.slash("tuit", {"lado": "izquierda"})
        assert FICTION_LABEL in text_of(await answer_to(telegram, message))
        answer = await discord.wait_for(lambda: [c for c in discord.for_token(interaction["token"]) if c.path.startswith("/webhooks/")])
        assert FICTION_LABEL in answer[-1].body["content"]

        # A command in flight when the stop comes is still answered before the process ends.
        late = await telegram.send_text("/tuit centro")
        await telegram.wait_for(lambda: telegram.replies_to(late))  # its placeholder: being written
        stop.set()
        assert await asyncio.wait_for(run, 60) == 0
        assert FICTION_LABEL in text_of(await answer_to(telegram, late, timeout=1))
    finally:  # a failure above must not leave the runner running
        stop.set()
        await asyncio.wait_for(asyncio.gather(run, return_exceptions=True), 60)


def test_without_tokens_it_opens_the_console(tmp_path: Path, tiny_model_dir: Path, monkeypatch, capsys) -> None:
    config = write_config(tmp_path, tiny_model_dir)
    opened: list[list[str]] = []
    monkeypatch.setattr("bot.console.main", lambda argv: opened.append(argv) or 0)
    assert runner.main(["--config", str(config)]) == 0
    assert opened == [["--config", str(config)]]
    assert "consola" in capsys.readouterr().err
