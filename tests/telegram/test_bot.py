"""Telegram end to end: the real python-telegram-bot and the real app against a fake Bot API."""

from __future__ import annotations

import asyncio
import io
import logging
from types import SimpleNamespace

import pytest
from PIL import Image

from bot import texts
from bot.telegram.frontend import FAILURE, MENU, PLACEHOLDER, QUEUE_NOTICE
from bot.types import FICTION_LABEL
from tests.fakes.telegram_api import BOT_USERNAME, FakeBotAPI
from tests.support.bots import StartTelegram
from tests.support.waiting import eventually
from tests.telegram.helpers import answer_to, buttons_of, final_answer, shown_answers, text_of


async def test_commands_in_a_private_chat(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram() as frontend:
        assert [c["command"] for c in api.of("setMyCommands")[0].params["commands"]] == [m[0] for m in MENU]
        start = await api.send_text("/start")
        help_ = await api.send_text("/ayuda")
        options = await api.send_text("/opciones")
        tweet = await api.send_text("/tuit derecha positivo pensiones")
        assert "/tuit" in text_of(await answer_to(api, start))
        assert "/otra" in text_of(await answer_to(api, help_))
        assert "Chile Vamos" in text_of(await answer_to(api, options))
        answer = await answer_to(api, tweet)
        assert FICTION_LABEL in text_of(answer)
        data = buttons_of(answer)
        assert [d.split(":")[0] for d in data] == ["up", "down", "again"]
        # The tweet was edited into the placeholder put up while it was written: one message.
        [placeholder] = api.replies_to(tweet)
        assert text_of(placeholder) == PLACEHOLDER and answer.method == "editMessageText"
        assert answer.params["message_id"] == placeholder.message["message_id"]
        assert [m["text"] for m in shown_answers(api, tweet)] == [text_of(answer)]
        generation = await eventually(lambda: frontend.app.log.generation(int(data[0].split(":")[1])),
                                      lambda g: g is not None and bool(g.message_ref))
        assert generation is not None and generation.message_ref == f"1:{answer.message['message_id']}"
        assert generation.party and generation.side == "derecha"

        again = await api.send_text("/otra")
        assert FICTION_LABEL in text_of(await answer_to(api, again))
    assert api.violations == []


async def test_groups_answer_commands_for_this_bot_only(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram():
        group = -100123
        mine = await api.send_text(f"/tuit@{BOT_USERNAME} izquierda", user_id=5, chat_id=group, chat_type="supergroup")
        other = await api.send_text("/tuit@OtraBot izquierda", user_id=5, chat_id=group, chat_type="supergroup")
        bare = await api.send_text("/ayuda", user_id=6, chat_id=group, chat_type="group")
        assert FICTION_LABEL in text_of(await answer_to(api, mine))
        assert text_of(await answer_to(api, bare))
        await api.wait_for(lambda: api.update_of(other) in api.confirmed)  # handled: nothing to say
        assert final_answer(api, other) is None and api.replies_to(other) == []
        assert all(c.params.get("chat_id") == group for c in api.calls if c.method == "sendMessage")
    assert api.violations == []


async def test_buttons_rate_and_regenerate(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram() as frontend:
        answer = await answer_to(api, await api.send_text("/tuit centro"))
        up, _, again = buttons_of(answer)
        await api.press(up, answer.message)
        await api.wait_for(lambda: api.of("answerCallbackQuery"))
        assert "👍" in api.of("answerCallbackQuery")[0].params["text"]

        await api.press(again, answer.message)
        second = await answer_to(api, answer.message["message_id"])
        assert FICTION_LABEL in text_of(second) and buttons_of(second) != buttons_of(answer)

        for junk in ("", "up:", "x" * 64, "again:99999", "up:-1", "🔁:1", "approve:abc"):
            await api.press(junk, answer.message)
        await api.wait_for(lambda: len(api.of("answerCallbackQuery")) >= 9)
        generation = await frontend.app.log.generation(int(up.split(":")[1]))
        assert generation is not None
    assert api.violations == []


async def test_inline_mode_offers_a_generated_tweet(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram():
        for typed in ("d", "der", "derecha positivo pensiones"):  # one query per keystroke
            await api.inline(typed, user_id=1)
        await api.inline("x" * 400, user_id=2)
        await api.wait_for(lambda: len(api.of("answerInlineQuery")) == 2)
    # Stopping waits for every handler in hand: the superseded keystrokes' ones have all
    # returned, and none answered.
    assert len(api.of("answerInlineQuery")) == 2
    results = [c.params["results"] for c in api.of("answerInlineQuery")]
    tweets = [r for rs in results for r in rs if r["id"].startswith("g")]
    assert tweets, results
    assert FICTION_LABEL in tweets[0]["input_message_content"]["message_text"]
    assert buttons_of_markup(tweets[0])
    assert api.violations == []


def buttons_of_markup(result: dict) -> list[str]:
    return [b["callback_data"] for row in result.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_rate_limits_answer_kindly(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    limits = "[rate_limits]\nper_user_per_minute = 2\nper_chat_per_minute = 0\n"
    async with start_telegram(limits):
        ids = [await api.send_text(f"/tuit tema {i}", user_id=9) for i in range(3)]
        answers = [text_of(await answer_to(api, i)) for i in ids]
        assert sum(FICTION_LABEL in a for a in answers) == 2
        refused = next(a for a in answers if FICTION_LABEL not in a)
        assert refused and "/tuit" not in refused[:1]
    assert api.violations == []


async def test_bad_input_is_answered_within_limits(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    """Each bad command gets its own Spanish explanation; one that only looks odd gets a tweet."""
    cases = [
        ("/tuit " + "pensiones " * 1000, texts.err_too_long(10006, 300)),
        ("/tuit partido=NOEXISTE", texts.err_unknown_value("party", "NOEXISTE", None)),
        ("/tuit lado=derecha lado=izquierda", texts.err_two_values("side", "derecha", "izquierda")),
        ('/tuit "comillas sin cerrar', None),
        ("/tuit \u202e\u0000\ufffd 🤖" * 30, texts.err_too_long(330, 300)),
        ("/tuiit derecha", texts.unknown_command("tuiit", "tuit")),
        ("/" + "a" * 200, texts.unknown_command("a" * 200, None)),
    ]
    async with start_telegram():
        ids = [await api.send_text(text) for text, _ in cases]
        answers = [text_of(await answer_to(api, i)) for i in ids]
    for (text, error), answer in zip(cases, answers, strict=True):
        if error is None:
            assert answer.endswith(FICTION_LABEL), (text[:40], answer)
        else:
            assert answer == error, text[:40]
    assert api.violations == []


async def test_a_queue_notice_already_up_becomes_the_placeholder(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    """A command shows one message before its answer: an "en cola" notice that went up first is
    the one the tweet is edited into (no second message, no second notification)."""
    async with start_telegram(queue_notice_after_s=0.0):
        messages = [await api.send_text(f"/tuit centro tema {i}", user_id=60 + i) for i in range(4)]
        for message in messages:
            answer = await answer_to(api, message)
            [first] = api.replies_to(message)
            assert text_of(first) in (QUEUE_NOTICE, PLACEHOLDER)
            assert answer.method == "editMessageText" and answer.params["message_id"] == first.message["message_id"]
            assert len(shown_answers(api, message)) == 1
    assert api.violations == []


async def test_without_a_placeholder_a_slow_request_gets_a_queue_notice_the_tweet_replaces(
    api: FakeBotAPI, start_telegram: StartTelegram
) -> None:
    """Telegram refuses the placeholder (say, flood control): the chat shows "typing" and the
    "en cola" notice, which the tweet then replaces."""
    api.failures["sendMessage"] = lambda params: "refused" if params.get("text") == PLACEHOLDER else None
    async with start_telegram(queue_notice_after_s=0.3) as frontend:
        written = frontend.core.generator.generate

        async def slowly(request: object) -> object:  # a tweet that takes longer than the notice
            await asyncio.sleep(1.0)
            return await written(request)

        frontend.core.generator = SimpleNamespace(generate=slowly)
        message = await api.send_text("/tuit izquierda negativo")
        answer = await answer_to(api, message)
        notice = next(c for c in api.replies_to(message) if c.method == "sendMessage")
        assert text_of(notice) == QUEUE_NOTICE and api.of("sendChatAction")[0].params["action"] == "typing"
        assert answer.method == "editMessageText" and FICTION_LABEL in text_of(answer)
        assert answer.params["message_id"] == notice.message["message_id"]
        assert len(shown_answers(api, message)) == 1
    assert api.violations == [("sendMessage", "refused")]


async def test_card_rendering_edits_a_png_with_the_label_into_a_photo_placeholder(
    api: FakeBotAPI, start_telegram: StartTelegram
) -> None:
    async with start_telegram('[bot]\nrender = "card"\n', render="card"):
        first = await api.send_text("/tuit derecha")
        answer = await answer_to(api, first)
        placeholders = [c for c in api.of("sendPhoto") if text_of(c) == PLACEHOLDER]
        assert answer.method == "editMessageMedia" and text_of(answer) == FICTION_LABEL
        assert answer.params["message_id"] == placeholders[0].message["message_id"]
        image = Image.open(io.BytesIO(answer.params[answer.params["media"]["media"].removeprefix("attach://")]))
        assert image.format == "PNG" and image.width == 1000
        assert len(buttons_of(answer)) == 3
        second = await api.send_text("/tuit izquierda")
        await answer_to(api, second)
        # The placeholder card is uploaded once, then reused by its file id.
        uploads = [c.params["photo"] for c in api.of("sendPhoto") if text_of(c) == PLACEHOLDER]
        assert isinstance(uploads[0], bytes) and all(isinstance(u, str) for u in uploads[1:]), uploads
        assert len(shown_answers(api, first)) == len(shown_answers(api, second)) == 1
    assert api.violations == []


@pytest.mark.expect_errors(r"telegram: update 1 failed")
async def test_an_unexpected_failure_is_logged_and_answered(
    api: FakeBotAPI, start_telegram: StartTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    bug = RuntimeError("boom")
    async with start_telegram() as frontend:
        async def broken(incoming: object) -> None:
            raise bug

        frontend.core.handle = broken  # type: ignore[method-assign]
        message = await api.send_text("/tuit")
        assert text_of(await answer_to(api, message)) == FAILURE
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.exc_info[1] for r in errors if r.exc_info] == [bug]


async def test_fifty_users_at_once_are_all_answered(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    async with start_telegram():
        ids = await asyncio.gather(*(
            api.send_text(text, user_id=1000 + user)
            for user in range(50)
            for text in ("/tuit", "/otra", "/ayuda", "/tuit izquierda positivo")
        ))
        answers = [await answer_to(api, i, timeout=120) for i in ids]
        assert len(answers) == 200 and all(text_of(a) for a in answers)
        tweets = [a for a in answers if FICTION_LABEL in text_of(a)]
        assert len(tweets) >= 100  # the rest: "busy" or "no previous request" (/otra raced /tuit)
    assert api.violations == []


async def test_telegram_flood_control_is_waited_out(api: FakeBotAPI, start_telegram: StartTelegram) -> None:
    """PTB's rate limiter (as configured in production) retries after Telegram's 429."""
    from telegram.ext import AIORateLimiter

    async with start_telegram(rate_limiter=AIORateLimiter(max_retries=3)):
        api.flood["sendMessage"] = 1
        message = await api.send_text("/ayuda")
        assert text_of(await answer_to(api, message))
        assert api.flooded == ["sendMessage"]
    assert api.violations == []
