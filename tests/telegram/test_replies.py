"""The contract between the core and the Telegram front-end: every kind of reply the core can
give (``bot.types.ReplyKind``) reaches the chat within Telegram's limits, a tweet with its
buttons, each with its delivery recorded in the log, and ``ignored`` as nothing at all. A new
reply kind the front-end does not handle fails here."""

from __future__ import annotations

from typing import get_args

from sqlalchemy import select

from bot.types import FICTION_LABEL, Button, Reply, ReplyKind, Tweet
from db.log import NewGeneration
from db.models import Request
from tests.fakes.telegram_api import FakeBotAPI
from tests.support.bots import StartTelegram
from tests.telegram.helpers import buttons_of, text_of


async def test_every_reply_kind_reaches_the_chat_and_is_recorded(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram() as frontend:
        log = frontend.app.log
        ignored = None
        for number, kind in enumerate(get_args(ReplyKind)):
            chat = 40 + number
            request = (await log.begin("telegram", str(chat), "Ana", str(chat), "private", "", "/tuit",
                                       source=f"{chat}:1", lease_s=60)).id
            tweet = None
            if kind == "tweet":
                [generation] = await log.finish(request, "ok", generations=[NewGeneration("Un tuit de prueba")])
                tweet = Tweet(generation_id=generation, request_id=request, text="Un tuit de prueba")
            else:
                await log.finish(request, "error", error="algo")
            text = f"Un tuit de prueba\n\n{FICTION_LABEL}" if tweet else f"respuesta {kind}"
            reply = Reply(kind, text, tweet, (Button("👍", "up", tweet.generation_id),) if tweet else (),
                          request_id=request)
            before = len(api.calls)
            await frontend.deliver(reply, chat, 1)
            sent = [c for c in api.calls[before:] if c.method in ("sendMessage", "sendPhoto")]
            if kind == "ignored":
                assert sent == []
                ignored = request
                continue
            assert len(sent) == 1 and text_of(sent[0]) == text, (kind, sent)
            assert bool(buttons_of(sent[0])) == (kind == "tweet"), kind
        # Every delivery was recorded; the ignored reply's request still waits for its answer.
        async with log.sessions() as session:
            waiting = (await session.scalars(select(Request.id).where(Request.answered_at.is_(None)))).all()
        assert list(waiting) == [ignored]
    assert api.violations == []
