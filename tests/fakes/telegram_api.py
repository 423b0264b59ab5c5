"""A fake Telegram Bot API server on 127.0.0.1, for driving the real python-telegram-bot offline.

The bot is pointed at it with ``base_url = "http://127.0.0.1:<port>/bot"``. Tests push updates
(commands, button presses, inline queries, anything else as raw JSON) and read back every call
the bot made. Each call is checked against Telegram's limits (``telegram_limits``): a bad one is
answered ``400`` as Telegram would and recorded in ``violations``.

``getUpdates`` works as Telegram's: an offset confirms (forgets) every update below it. The fake
records the offset of every poll (``polls``) and the updates confirmed (``confirmed``), can run a
check at each confirmation (``on_confirm``), and can deliver updates again (``redeliver``), as
Telegram does when the bot's confirmation never arrived.

It keeps the chats as users see them (``messages``: each message the bot sent, as last edited,
until deleted), and edits behave as Telegram's: one that would change nothing is refused with
"message is not modified", one of a message that is not there with "message to edit not found".
``before_reply`` lets a test act on a call after the fake has applied it and before the bot
hears back (say, kill the bot there).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.recording import CallLog
from tests.fakes.telegram_limits import check_call

BOT_ID = 123
BOT_USERNAME = "PoliticoTestBot"
TOKEN = f"{BOT_ID}:TEST"

#: Parameters sent as raw strings (python-telegram-bot JSON-encodes only non-string values).
STRING_FIELDS = {
    "text", "caption", "callback_query_id", "inline_query_id", "action", "url", "secret_token",
    "parse_mode", "inline_message_id", "next_offset", "switch_pm_text", "switch_pm_parameter",
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    #: The message the fake created for it (send*/edit*), else None.
    message: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)
    #: Which bot process made it, where several share the fake (``base_url_for``); "" otherwise.
    via: str = ""


class FakeBotAPI(CallLog):
    """State and HTTP handlers of the fake server; start it with ``async with``."""

    def __init__(self, *, username: str = BOT_USERNAME) -> None:
        self.username = username
        self.calls: list[Call] = []
        self.violations: list[tuple[str, str]] = []
        self.updates: list[dict[str, Any]] = []
        #: Every update pushed, by id (what ``redeliver`` sends again).
        self.pushed: dict[int, dict[str, Any]] = {}
        #: The offset of every ``getUpdates`` call, in order, and when it came (monotonic).
        self.polls: list[int] = []
        self.poll_times: list[float] = []
        self.confirmed: list[int] = []
        #: Called with the updates being confirmed, before they are forgotten.
        self.on_confirm: Callable[[list[dict[str, Any]]], None] | None = None
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: method → callable(params) returning an error description to fail that call with.
        self.failures: dict[str, Callable[[dict[str, Any]], str | None]] = {}
        #: method → how many of its next calls get "429 Too Many Requests, retry after 1".
        self.flood: dict[str, int] = {}
        self.flooded: list[str] = []
        #: (chat id, message id) → the message the bot sent there, as last edited (deleted: gone).
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        #: Called with each applied call before the bot gets the answer.
        self.before_reply: Callable[[Call], Awaitable[None]] | None = None
        #: Calls refused as Telegram refuses them (an edit that changes nothing...), and why.
        self.refused: list[tuple[Call, str]] = []

    # -- server ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def base_url_for(self, via: str) -> str:
        """The base URL for one of several bot processes: its calls carry ``via``."""
        return f"http://127.0.0.1:{self.port}/{via}/bot"

    async def __aenter__(self) -> FakeBotAPI:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        app.router.add_route("*", "/{via}/bot{token}/{method}", self._dispatch)
        await self._serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self._runner:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        try:
            params = await _params(request)
        except ConnectionResetError:  # the bot hung up mid-request: a long poll cut short by its stop
            return web.Response(status=499)
        if self.flood.get(method, 0) > 0:
            # Telegram's flood control: 429 with the seconds to wait.
            self.flood[method] -= 1
            self.flooded.append(method)
            return web.json_response({
                "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }, status=429)
        if method == "getUpdates":
            failure = self.failures[method](params) if method in self.failures else None
            if failure:  # Telegram's own trouble, as its front servers report it
                return _error(502, f"Bad Gateway: {failure}")
            return _ok(await self._get_updates(params))
        problems = check_call(method, params)
        if not problems and method in self.failures:
            failure = self.failures[method](params)
            problems = [failure] if failure else []
        if problems:
            self.violations.extend((method, problem) for problem in problems)
            return _error(400, f"Bad Request: {problems[0]}")
        handler = getattr(self, f"_{method}", None)
        try:
            result = handler(params) if handler else True
        except Refused as exc:
            self.refused.append((Call(method, params), str(exc)))
            return _error(400, f"Bad Request: {exc}")
        message = result if isinstance(result, dict) and "message_id" in result else None
        call = Call(method, params, message, via=request.match_info.get("via", ""))
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if self.before_reply is not None:
            await self.before_reply(call)
        return _ok(result)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = min(float(params.get("timeout") or 0), 1.0)
        deadline = time.monotonic() + timeout
        async with self._changed:
            self.polls.append(offset)
            self.poll_times.append(time.monotonic())
            # Confirming (an offset past them) forgets updates, as Telegram does.
            confirmed = [u for u in self.updates if u["update_id"] < offset]
            if confirmed and self.on_confirm is not None:
                self.on_confirm(confirmed)
            self.confirmed.extend(u["update_id"] for u in confirmed)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
            self._changed.notify_all()
            return self.updates[:limit]

    # -- Bot API methods ---------------------------------------------------------------------
    def _getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user()

    def _sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._keep(self._message(params, text=params["text"]), params)

    def _sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        extra = {"photo": _photo(params.get("photo"))}
        if params.get("caption"):
            extra["caption"] = params["caption"]
        return self._keep(self._message(params, **extra), params)

    def _editMessageText(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        if params.get("inline_message_id"):
            return True
        return self._edit(params, {"text": params["text"]})

    def _editMessageMedia(self, params: dict[str, Any]) -> dict[str, Any]:
        media = params.get("media") or {}
        attached = str(media.get("media", ""))
        photo = params.get(attached.removeprefix("attach://")) if attached.startswith("attach://") else attached
        changes = {"photo": _photo(photo)}
        if media.get("caption"):
            changes["caption"] = media["caption"]
        return self._edit(params, changes, replace=("text", "caption"))

    def _deleteMessage(self, params: dict[str, Any]) -> bool:
        if self.messages.pop((int(params["chat_id"]), int(params["message_id"])), None) is None:
            raise Refused("message to delete not found")
        return True

    def _keep(self, message: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Remember a sent message as the chat shows it, with what it replies to."""
        kept = {**message, "reply_to": _reply_target(params)}
        self.messages[int(message["chat"]["id"]), int(message["message_id"])] = kept
        return message

    def _edit(self, params: dict[str, Any], changes: dict[str, Any],
              replace: tuple[str, ...] = ()) -> dict[str, Any]:
        """Apply an edit as Telegram does (refusing one that changes nothing)."""
        key = (int(params["chat_id"]), int(params["message_id"]))
        current = self.messages.get(key)
        if current is None:
            raise Refused("message to edit not found")
        markup = params.get("reply_markup")
        edited = {k: v for k, v in current.items() if k not in replace}
        edited.update(changes)
        if markup is not None:
            edited["reply_markup"] = markup
        else:
            edited.pop("reply_markup", None)
        if {k: v for k, v in edited.items() if k != "edit_date"} == {k: v for k, v in current.items() if k != "edit_date"}:
            raise Refused("message is not modified: specified new message content and reply markup are "
                          "exactly the same as a current content and reply markup of the message")
        edited["edit_date"] = int(time.time())
        self.messages[key] = edited
        return {k: v for k, v in edited.items() if k != "reply_to"}

    def _getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _message(self, params: dict[str, Any], message_id: int | None = None, **extra: Any) -> dict[str, Any]:
        chat_id = params["chat_id"]
        message = {
            "message_id": message_id or next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if int(chat_id) > 0 else "supergroup"},
            "from": self.bot_user(),
            **extra,
        }
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID, "is_bot": True, "first_name": "Político", "username": self.username,
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }

    # -- what tests push ---------------------------------------------------------------------
    async def push(self, update: dict[str, Any]) -> int:
        """Queue a raw update (its ``update_id`` is assigned here) and return the id."""
        update = {**update, "update_id": next(self._update_ids)}
        async with self._changed:
            self.pushed[update["update_id"]] = update
            self.updates.append(update)
            self._changed.notify_all()
        return update["update_id"]

    async def redeliver(self, update_ids: list[int]) -> None:
        """Deliver these updates again, as Telegram does when it never got their confirmation."""
        async with self._changed:
            again = [self.pushed[i] for i in update_ids if i not in {u["update_id"] for u in self.updates}]
            self.updates = sorted([*self.updates, *again], key=lambda u: u["update_id"])
            self._changed.notify_all()

    def update_of(self, message_id: int) -> int:
        """The id of the update that carried message ``message_id``."""
        return next(i for i, u in self.pushed.items() if u.get("message", {}).get("message_id") == message_id)

    def new_message_id(self) -> int:
        return next(self._message_ids)

    def sent_before(self, chat_id: int, text: str, *, reply_to: int | None = None) -> int:
        """A message an earlier bot process sent (a placeholder, say); its id."""
        params = {"chat_id": chat_id, **({"reply_parameters": {"message_id": reply_to}} if reply_to else {})}
        return int(self._keep(self._message(params, text=text), params)["message_id"])

    async def send_text(
        self, text: str, *, user_id: int = 1, chat_id: int | None = None,
        chat_type: str = "private", **extra: Any,
    ) -> int:
        """A user writes ``text``; a leading ``/command`` gets its bot_command entity."""
        message_id = self.new_message_id()
        chat_id = user_id if chat_id is None else chat_id
        message: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": chat_type, **({"title": "Grupo"} if chat_type != "private" else {})},
            "from": user(user_id), **extra,
        }
        if text.startswith("/"):
            length = len(text.split()[0]) if text.split() else 1
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        await self.push({"message": message})
        return message_id

    async def press(self, data: str, message: dict[str, Any], *, user_id: int = 1) -> int:
        """A user presses a button carrying ``data`` under ``message`` (one the bot sent)."""
        return await self.push({"callback_query": {
            "id": f"cb{self.new_message_id()}", "from": user(user_id), "chat_instance": "ci",
            "message": message, "data": data,
        }})

    async def inline(self, query: str, *, user_id: int = 1) -> int:
        return await self.push({"inline_query": {
            "id": f"iq{self.new_message_id()}", "from": user(user_id), "query": query, "offset": "",
            "chat_type": "sender",
        }})

    # -- what tests read ---------------------------------------------------------------------
    def of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def replies_to(self, message_id: int) -> list[Call]:
        """Messages the bot sent as a reply to ``message_id``."""
        return [c for c in self.calls if _reply_target(c.params) == message_id]

    def shown_replies(self, message_id: int) -> list[dict[str, Any]]:
        """The bot's messages replying to ``message_id`` as the chat shows them now."""
        return [m for m in self.messages.values() if m.get("reply_to") == message_id]

    def edits_of(self, chat_id: int, message_id: int) -> list[Call]:
        """The edits applied to one of the bot's messages, in order."""
        return [c for c in self.calls if c.method.startswith("editMessage")
                and int(c.params.get("chat_id") or 0) == chat_id and int(c.params.get("message_id") or 0) == message_id]


class Refused(Exception):
    """A call Telegram answers 400, with its description."""


def _photo(photo: Any) -> list[dict[str, Any]]:
    """A photo message's sizes; the file id names the upload's size (or the file id reused)."""
    file_id = photo if isinstance(photo, str) else f"photo{len(photo) if isinstance(photo, bytes) else 0}"
    return [{"file_id": file_id, "file_unique_id": "u", "width": 1, "height": 1}]


def message_update(update_id: int, message_id: int, user_id: int, text: str) -> dict[str, Any]:
    """An update carrying a command typed in a private chat, as Telegram posts it to a webhook
    (the tests that play Telegram for webhook processes send these themselves)."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id, "date": int(time.time()), "text": text,
            "chat": {"id": user_id, "type": "private"}, "from": user(user_id),
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


def user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"Usuaria {user_id}", "language_code": "es"}


def _reply_target(params: dict[str, Any]) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, dict):
        return int(reply["message_id"])
    if params.get("reply_to_message_id"):
        return int(params["reply_to_message_id"])
    return None


async def _params(request: web.Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            raw.update(await request.json())
            return raw
        form = await request.post()
        for key, value in form.items():
            raw[key] = value.file.read() if isinstance(value, web.FileField) else value
    return {key: _decode(key, value) for key, value in raw.items()}


def _decode(key: str, value: Any) -> Any:
    if key in STRING_FIELDS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)
