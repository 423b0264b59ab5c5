"""Reading the bot's answers back from the fake Bot API."""

from __future__ import annotations

from typing import Any

from bot.telegram.frontend import PLACEHOLDER, QUEUE_NOTICE
from tests.fakes.telegram_api import Call, FakeBotAPI

#: What the bot shows before an answer replaces it: a tweet's placeholder, an "en cola" notice.
NOT_YET = (PLACEHOLDER, QUEUE_NOTICE)


def final_answer(api: FakeBotAPI, message_id: int) -> Call | None:
    """The bot's answer to a message: the reply it sent, or the edit that turned its placeholder
    (or "en cola" notice) into the answer; None while there is none."""
    for call in api.replies_to(message_id):
        if call.method not in ("sendMessage", "sendPhoto") or call.message is None:
            continue
        if text_of(call) not in NOT_YET:
            return call
        chat_id = int(call.message["chat"]["id"])
        edits = [c for c in api.edits_of(chat_id, call.message["message_id"]) if text_of(c) not in NOT_YET]
        if edits:
            return edits[-1]
    return None


async def answer_to(api: FakeBotAPI, message_id: int, timeout: float = 60) -> Call:
    return await api.wait_for(lambda: final_answer(api, message_id), timeout)


def shown_answers(api: FakeBotAPI, message_id: int) -> list[dict[str, Any]]:
    """The bot's answers to a message as the chat shows them now (placeholders and notices not
    counted): exactly one for a command answered once."""
    return [m for m in api.shown_replies(message_id) if (m.get("text") or m.get("caption") or "") not in NOT_YET]


def text_of(call: Call) -> str:
    media = call.params.get("media") if isinstance(call.params.get("media"), dict) else {}
    return call.params.get("text") or call.params.get("caption") or media.get("caption") or ""


def buttons_of(call: Call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]
