"""Webhook mode: Telegram calls the bot's HTTPS endpoint; only calls with the secret count."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from telegram import Bot, Update

from bot.telegram.webhook import WebhookIntake
from bot.types import FICTION_LABEL
from tests.fakes.telegram_api import TOKEN, FakeBotAPI, message_update, user
from tests.support.bots import StartTelegram
from tests.support.ports import on_free_port
from tests.support.waiting import until
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



async def test_the_call_is_answered_once_the_command_is_logged_and_a_stop_closes_the_port_first(
    api: FakeBotAPI,
) -> None:
    """The intake answers Telegram only when the handler says the command is logged (a process
    that dies before that leaves the update to be delivered again), and a stop (SIGTERM, a
    rolling restart) closes the port at once, so a balancer moves on, while the updates in hand
    are still being handled."""
    logged, release, handled = asyncio.Event(), asyncio.Event(), []
    intakes: list[WebhookIntake] = []

    async def process(update: Update) -> None:
        await logged.wait()
        intakes[-1].acknowledger(update.update_id)()  # what the core's on_logged does
        await release.wait()  # generating
        handled.append(update.update_id)

    async with Bot(TOKEN, base_url=api.base_url) as bot:
        @asynccontextmanager
        async def intake_on(port: int) -> AsyncIterator[WebhookIntake]:
            intake = WebhookIntake(bot, process, url="https://bot.example.cl/tg", listen="127.0.0.1",
                                   port=port, path="/tg")
            intakes.append(intake)
            await intake.start()
            try:
                yield intake
            finally:
                logged.set()
                release.set()
                await intake.stop()

        async with on_free_port(intake_on) as (port, intake), httpx.AsyncClient(timeout=30) as client:
            call = asyncio.create_task(client.post(f"http://127.0.0.1:{port}/tg", json=message_update(1, 80, 5, "/tuit izquierda")))
            await until(lambda: bool(intake._handlers), "the call to reach the intake")
            # Not logged yet: the call cannot be answered (how long a wrong answer is given to
            # show up is all this wait decides).
            done, _ = await asyncio.wait({call}, timeout=1.0)
            assert not done
            logged.set()
            assert (await call).status_code == 200
            stopping = asyncio.create_task(intake.stop())
            await until(lambda: not _accepts(port), "the port to close")
            assert not stopping.done() and handled == []  # the one in hand is still being written
            release.set()
            await stopping
    assert handled == [1] and api.of("setWebhook")[0].params["url"] == "https://bot.example.cl/tg"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
