"""Webhook mode: Telegram calls the bot's HTTPS endpoint; only calls with the secret count."""

from __future__ import annotations

import time

import httpx

from bot.types import FICTION_LABEL
from tests.fakes.telegram_api import FakeBotAPI, user
from tests.support.bots import StartTelegram
from tests.support.ports import on_free_port
from tests.telegram.helpers import answer_to, text_of


async def test_webhook_mode_takes_updates_with_the_secret_only(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    def keys(port: int) -> str:
        return f'webhook_url = "https://bot.example.cl/tg/hook"\nwebhook_port = {port}\nwebhook_secret = "s3creto"\n'

    async with on_free_port(lambda port: start_telegram(telegram=keys(port))) as (port, _):
        registered = api.of("setWebhook")[0].params
        assert registered["url"] == "https://bot.example.cl/tg/hook" and registered["secret_token"] == "s3creto"
        update = {"update_id": 1, "message": {
            "message_id": 77, "date": int(time.time()), "text": "/tuit izquierda",
            "chat": {"id": 5, "type": "private"}, "from": user(5),
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        }}
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/tg/hook"
            refused = await client.post(url, json={**update, "update_id": 2}, headers={"X-Telegram-Bot-Api-Secret-Token": "otro"})
            accepted = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3creto"})
        assert refused.status_code == 403 and accepted.status_code == 200
        assert FICTION_LABEL in text_of(await answer_to(api, 77))
        assert len(api.replies_to(77)) == 1
    assert api.violations == []
