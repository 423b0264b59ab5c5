"""The game on the command core, without a chat platform: what the console and help say."""

from __future__ import annotations

from pathlib import Path

from bot.app import build_app
from bot.config import load_settings
from bot.game import texts
from bot.types import Incoming, Origin
from tests.game.conftest import game_config, write_real_tweets


async def test_the_console_is_told_the_game_needs_buttons_and_help_mentions_it(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = game_config(tmp_path, tiny_model_dir, "", str(write_real_tweets(tmp_path)))
    app = await build_app(load_settings(config), start_engine=False)
    try:
        origin = Origin("console", "local", "console")
        for command in ("/adivina", "/Guess"):
            reply = await app.core.handle(Incoming(origin, command))
            assert (reply.kind, reply.text, reply.buttons) == ("info", texts.PLATFORM_ONLY, ())
        assert (await app.core.handle(Incoming(origin, "/puntos"))).text == texts.NO_SCORES
        assert "/adivina" in (await app.core.handle(Incoming(origin, "/ayuda"))).text
        assert (await app.core.press(origin, "vote_a:12345")).text == texts.GONE
        assert (await app.core.press(origin, "reveal:12345")).text == texts.GONE
    finally:
        await app.aclose()
