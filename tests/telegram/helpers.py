"""Reading the bot's answers back from the fake Bot API."""

from __future__ import annotations

from tests.fakes.telegram_api import Call, FakeBotAPI

QUEUE_NOTICE_PREFIX = "⏳"


def final_answer(api: FakeBotAPI, message_id: int) -> Call | None:
    """The bot's answer to a message: its reply, or the edit that replaced an "en cola" notice."""
    for call in api.replies_to(message_id):
        if call.method == "sendPhoto":
            return call
        if call.method != "sendMessage":
            continue
        if not call.params["text"].startswith(QUEUE_NOTICE_PREFIX):
            return call
        notice_id = call.message["message_id"] if call.message else None
        edits = [c for c in api.of("editMessageText") if c.params.get("message_id") == notice_id]
        if edits:
            return edits[-1]
        photos = [c for c in api.of("sendPhoto") if c.at > call.at and _reply(c) == message_id]
        if photos:
            return photos[-1]
    return None


async def answer_to(api: FakeBotAPI, message_id: int, timeout: float = 60) -> Call:
    return await api.wait_for(lambda: final_answer(api, message_id), timeout)


def text_of(call: Call) -> str:
    return call.params.get("text") or call.params.get("caption") or ""


def buttons_of(call: Call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def _reply(call: Call) -> int | None:
    reply = call.params.get("reply_parameters") or {}
    return reply.get("message_id")
