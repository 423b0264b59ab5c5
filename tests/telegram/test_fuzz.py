"""Hundreds of hostile updates of every kind the Bot API sends: the bot stays up, logs no
traceback, answers every command addressed to it, and every call it makes is one Telegram
accepts (the fake server checks text, caption, markup and button limits on each)."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pytest

from tests.fakes.telegram_api import BOT_USERNAME, FakeBotAPI, user
from tests.support.bots import StartTelegram
from tests.telegram.helpers import answer_to, final_answer

COMMANDS = ("/tuit", "/otra", "/ayuda", "/opciones", "/start")
NASTY = (
    "", " ", "x" * 5000, "🤖" * 3000, "\u0000\u202e\ufeff", "<b>hola</b> *negrita* _x_ [a](b) `c`",
    "derecha derecha izquierda", 'partido="', "lado=", "=", "#" * 300, "@" * 100, "ñandú ÁÉÍÓÚ",
    "\n\n\n", "\\", "%s %d {0}", "' OR 1=1 --", "partido=PDC coalicion=Chile Vamos", "𝕏" * 100,
)


class Fuzzer:
    """Builds raw updates; ``expect`` collects (message_id) of commands that must be answered."""

    def __init__(self, rng: random.Random, api: FakeBotAPI) -> None:
        self.rng = rng
        self.api = api
        self.expect: list[int] = []
        self.ignored: list[int] = []

    def chat(self) -> dict[str, Any]:
        kind = self.rng.choice(["private", "group", "supergroup"])
        chat_id = self.rng.randint(1, 10**6) if kind == "private" else -self.rng.randint(1, 10**12)
        return {"id": chat_id, "type": kind, **({"title": self.rng.choice(NASTY) or "g"} if kind != "private" else {})}

    def message(self, **content: Any) -> dict[str, Any]:
        return {
            "message_id": self.api.new_message_id(), "date": int(time.time()), "chat": self.chat(),
            "from": user(self.rng.randint(1, 10**9)), **content,
        }

    def command(self) -> dict[str, Any]:
        name = self.rng.choice(COMMANDS)
        addressee = self.rng.choice(["", "", f"@{BOT_USERNAME}", f"@{BOT_USERNAME.lower()}", "@OtraBot"])
        head = name + addressee
        text = f"{head} {self.rng.choice(NASTY)}".rstrip() if self.rng.random() < 0.7 else head
        message = self.message(text=text, entities=[{"type": "bot_command", "offset": 0, "length": len(head)}])
        (self.ignored if addressee == "@OtraBot" else self.expect).append(message["message_id"])
        return {"message": message}

    def hostile(self) -> dict[str, Any]:
        """Anything but a plain command: other update types, media, service messages, junk."""
        r = self.rng
        text = r.choice(NASTY) or "hola"
        kinds: list[dict[str, Any]] = [
            {"edited_message": {**self.message(text="/tuit editado"), "edit_date": 1}},
            {"channel_post": {**self.message(text="/tuit en canal"), "chat": {"id": -1001, "type": "channel", "title": "c"}}},
            {"edited_channel_post": {**self.message(text="/ayuda"), "chat": {"id": -1001, "type": "channel", "title": "c"}, "edit_date": 1}},
            {"message": self.message(text=text)},
            {"message": self.message(text="/tuit", entities=[{"type": "bot_command", "offset": 3, "length": 900}])},
            {"message": self.message(text="hola /tuit", entities=[{"type": "bot_command", "offset": 5, "length": 5}])},
            {"message": self.message(photo=[{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
                                     caption="/tuit derecha", caption_entities=[{"type": "bot_command", "offset": 0, "length": 5}])},
            {"message": self.message(sticker={"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1, "is_animated": False, "is_video": False})},
            {"message": self.message(voice={"file_id": "v", "file_unique_id": "u", "duration": 1})},
            {"message": self.message(document={"file_id": "d", "file_unique_id": "u"}, caption=text)},
            {"message": self.message(location={"latitude": -33.4, "longitude": -70.6})},
            {"message": self.message(contact={"phone_number": "+56", "first_name": "x"})},
            {"message": self.message(dice={"emoji": "🎲", "value": 3})},
            {"message": self.message(new_chat_members=[user(5), {"id": 123, "is_bot": True, "first_name": "b"}])},
            {"message": self.message(left_chat_member=user(6))},
            {"message": self.message(new_chat_title=text or "t")},
            {"message": self.message(group_chat_created=True)},
            {"message": self.message(migrate_to_chat_id=-100999)},
            {"message": self.message(pinned_message={"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}})},
            {"message": {**self.message(text="/tuit anon"), "from": None, "sender_chat": {"id": -100, "type": "supergroup", "title": "x"}}},
            {"message": {**self.message(text="/ayuda"), "from": {"id": 999, "is_bot": True, "first_name": "otro bot"}}},
            {"callback_query": {"id": f"c{r.random()}", "from": user(r.randint(1, 99)), "chat_instance": "i", "data": r.choice(["", "up:", "again:0", "again:99999999", "x" * 64, "down:abc", ":", "approve:1", "🔁", "up:1:2"]), "message": self.message(text="viejo")}},
            {"callback_query": {"id": f"c{r.random()}", "from": user(1), "chat_instance": "i", "data": "up:1", "inline_message_id": "im1"}},
            {"callback_query": {"id": f"c{r.random()}", "from": user(1), "chat_instance": "i", "game_short_name": "juego"}},
            {"callback_query": {"id": f"c{r.random()}", "from": user(1), "chat_instance": "i", "data": "again:1", "message": {"message_id": 5, "date": 0, "chat": {"id": 3, "type": "private"}}}},
            {"inline_query": {"id": f"q{r.random()}", "from": user(r.randint(1, 99)), "query": text[:256], "offset": ""}},
            {"chosen_inline_result": {"result_id": "g1", "from": user(1), "query": "x"}},
            {"my_chat_member": {"chat": self.chat(), "from": user(1), "date": 0,
                                "old_chat_member": {"status": "member", "user": user(123)},
                                "new_chat_member": {"status": "kicked", "user": user(123), "until_date": 0}}},
            {"chat_member": {"chat": self.chat(), "from": user(1), "date": 0,
                             "old_chat_member": {"status": "left", "user": user(7)},
                             "new_chat_member": {"status": "member", "user": user(7)}}},
            {"chat_join_request": {"chat": self.chat(), "from": user(8), "user_chat_id": 8, "date": 0}},
            {"message_reaction": {"chat": self.chat(), "message_id": 5, "date": 0, "user": user(1),
                                  "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}},
            {"message_reaction_count": {"chat": self.chat(), "message_id": 5, "date": 0, "reactions": []}},
            {"poll": {"id": "p", "question": "q", "options": [], "total_voter_count": 0, "is_closed": True,
                      "is_anonymous": True, "type": "regular", "allows_multiple_answers": False,
                      "allows_revoting": False, "members_only": False}},
            {"poll_answer": {"poll_id": "p", "user": user(1), "option_ids": [], "option_persistent_ids": []}},
            {"shipping_query": {"id": "s", "from": user(1), "invoice_payload": "x",
                                "shipping_address": {"country_code": "CL", "state": "", "city": "", "street_line1": "", "street_line2": "", "post_code": ""}}},
            {"pre_checkout_query": {"id": "s", "from": user(1), "currency": "CLP", "total_amount": 1, "invoice_payload": "x"}},
            {"a_future_update_type": {"anything": [1, 2, 3]}},
        ]
        return r.choice(kinds)


@pytest.mark.parametrize("seed", [1, 2])
async def test_hostile_updates_never_break_the_bot(
    seed: int, api: FakeBotAPI, start_telegram: StartTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    fuzzer = Fuzzer(random.Random(seed), api)
    updates = [fuzzer.command() if i % 3 == 0 else fuzzer.hostile() for i in range(300)]
    limits = "[rate_limits]\nper_user_per_minute = 0\nper_chat_per_minute = 0\n"
    async with start_telegram(limits):
        for update in updates:
            await api.push(update)
        for message_id in fuzzer.expect:
            await answer_to(api, message_id, timeout=120)
        alive = await api.send_text("/ayuda", user_id=4242)
        await answer_to(api, alive)
        assert all(final_answer(api, m) is None for m in fuzzer.ignored)
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
    assert api.violations == []
    assert len(fuzzer.expect) >= 60
