"""Telegram follow-ups by reply: the real python-telegram-bot against the fake Bot API. A reply
to one of the bot's tweets changes only what it says; chat that merely replies to the bot gets
nothing in a group and a hint in private."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.telegram.frontend import TelegramFrontend
from bot.types import FICTION_LABEL
from db.log import LoggedGeneration
from db.models import Request
from tests.fakes.telegram_api import FakeBotAPI
from tests.support.bots import StartTelegram
from tests.telegram.helpers import answer_to, buttons_of, final_answer, text_of

GROUP = -100777


async def tweet_of(frontend: TelegramFrontend, answer: Any) -> LoggedGeneration:
    """The logged tweet an answer shows (its buttons carry the generation id)."""
    generation = await frontend.app.log.generation(int(buttons_of(answer)[0].split(":")[1]))
    assert generation is not None
    return generation


async def handled(api: FakeBotAPI, message_id: int) -> None:
    """Wait until the bot confirmed the update carrying ``message_id``: it does so only once
    the update's handling finished (bot/telegram/polling.py), so nothing more will be sent."""
    update_id = api.update_of(message_id)
    await api.wait_for(lambda: update_id in api.confirmed)


async def test_a_reply_to_a_tweet_writes_it_again_changed_where_it_says(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram() as frontend:
        log = frontend.app.log
        answer = await answer_to(api, await api.send_text("/tuit derecha feliz pensiones"))
        first = await tweet_of(frontend, answer)

        angrier = await answer_to(api, await api.send_text("más enojado", reply_to_message=answer.message))
        assert FICTION_LABEL in text_of(angrier) and "negativo" in text_of(angrier)
        second = await tweet_of(frontend, angrier)
        assert (second.sentiment, second.party, second.controls["entities"]) == ("NEGATIVE", first.party, ["pensiones"])
        assert (await log.request(second.request_id)).parent_id == first.request_id

        # Replying to the first tweet again follows that one, not the latest.
        left = await answer_to(api, await api.send_text("ahora de izquierda", reply_to_message=answer.message))
        third = await tweet_of(frontend, left)
        assert (third.side, third.sentiment) == ("izquierda", "POSITIVE")
        assert (await log.request(third.request_id)).parent_id == first.request_id

        hint = await answer_to(api, await api.send_text("gracias", reply_to_message=answer.message))
        assert "más enojado" in text_of(hint) and FICTION_LABEL not in text_of(hint)
        help_message = (await answer_to(api, await api.send_text("/ayuda"))).message
        not_a_tweet = await api.send_text("más enojado", reply_to_message=help_message)
        await handled(api, not_a_tweet)
        assert final_answer(api, not_a_tweet) is None
    assert api.violations == []


async def test_in_a_group_chat_is_left_alone_and_otra_follows_the_tweet_replied_to(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram() as frontend:
        def say(text: str, **extra: Any):
            return api.send_text(text, user_id=5, chat_id=GROUP, chat_type="supergroup", **extra)

        answer = await answer_to(api, await say("/tuit kast positivo sobre seguridad"))
        first = await tweet_of(frontend, answer)
        chatter = [await say(text, reply_to_message=answer.message) for text in ("jajaja qué malo", "xd", "buenísimo")]
        for message_id in chatter:
            await handled(api, message_id)
            assert final_answer(api, message_id) is None
        async with frontend.app.log.sessions() as session:  # nor logged as requests
            sources = set((await session.scalars(select(Request.source))).all())
        assert sources.isdisjoint({f"{GROUP}:{m}" for m in chatter})

        other = await answer_to(api, await say("/tuit izquierda"))  # the user's latest request
        followed = await answer_to(api, await say("/otra sobre salud", reply_to_message=answer.message))
        fourth = await tweet_of(frontend, followed)
        assert (fourth.party, fourth.sentiment, fourth.controls["entities"]) == ("IND", "POSITIVE", ["salud"])
        assert (await frontend.app.log.request(fourth.request_id)).parent_id == first.request_id
        assert other.message["message_id"] != followed.message["message_id"]
    assert api.violations == []
