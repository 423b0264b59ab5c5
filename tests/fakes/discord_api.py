"""A fake Discord (REST API and gateway) on 127.0.0.1, for driving the real discord.py offline.

The bot is pointed at it with ``[discord] api_base = "http://127.0.0.1:<port>/api/v10"``; the
gateway URL comes from ``GET /gateway/bot`` as with Discord. The gateway speaks plain JSON text
frames: HELLO, then READY after IDENTIFY, heartbeat ACKs, and whatever ``dispatch`` sends
(``INTERACTION_CREATE``). REST covers what the bot calls: login, application info, command
sync, interaction callbacks and follow-up webhooks. Each message is checked against Discord's
limits; a bad one is answered ``400`` and recorded in ``violations``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.recording import CallLog

APP_ID = 900000000000000001
BOT_ID = 900000000000000002
GUILD_ID = 900000000000000003
CHANNEL_ID = 900000000000000004
TOKEN = "discord-test-token"
EPHEMERAL = 1 << 6
#: How long the bot may take to connect and identify itself to the fake gateway.
IDENTIFY_TIMEOUT_S = 60.0

CONTENT = 2000
ROWS = 5
BUTTONS_PER_ROW = 5
CUSTOM_ID = 100
LABEL = 80
CHOICES = 25


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any]
    files: int = 0
    message: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)


class FakeDiscord(CallLog):
    """State and handlers of the fake; start it with ``async with``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.identified = asyncio.Event()
        self._ids = itertools.count(1000)
        self._seq = itertools.count(1)
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.commands: list[dict[str, Any]] = []
        #: Interaction token → its response message (``@original``) as users see it now; gone
        #: once deleted.
        self.originals: dict[str, dict[str, Any]] = {}
        #: Seconds a webhook call (an interaction's answer) waits for its response once
        #: recorded: a test can stop the bot while answers are on their way.
        self.webhook_delay_s = 0.0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        await self._serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner:
            await self._runner.cleanup()

    # -- gateway -----------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                if payload["op"] == 1:
                    await socket.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif payload["op"] == 2:
                    if payload["d"].get("token") != TOKEN:
                        await socket.close(code=4004)
                        break
                    await self._send(socket, "READY", {
                        "v": 10, "user": bot_user(), "guilds": [], "session_id": "s1",
                        "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                        "application": {"id": str(APP_ID), "flags": 0}, "shard": [0, 1],
                    })
                    self.identified.set()
        finally:
            self._sockets.remove(socket)
        return socket

    async def _send(self, socket: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        await socket.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        await asyncio.wait_for(self.identified.wait(), IDENTIFY_TIMEOUT_S)
        await self._send(self._sockets[-1], event, data)

    # -- REST --------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        if request.headers.get("Authorization", "") not in (f"Bot {TOKEN}", "") and "/webhooks/" not in path:
            return _error(401, "401: Unauthorized")
        body, files = await _body(request)
        method = request.method
        problems = check_message(body) if method in ("POST", "PATCH") and "/commands" not in path else []
        if problems:
            self.violations += [f"{method} {path}: {p}" for p in problems]
            return _error(400, problems[0])
        result, message = self._route(method, path, body)
        async with self._changed:
            self.calls.append(Call(method, path, body, files, message))
            self._changed.notify_all()
        if self.webhook_delay_s and "/webhooks/" in path:
            await asyncio.sleep(self.webhook_delay_s)
        if result is None:
            return web.Response(status=204)
        # discord.py decodes JSON only under exactly this content type (no charset).
        return web.Response(body=json.dumps(result).encode(), headers={"Content-Type": "application/json"})

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return bot_user(), None
        if path == "/oauth2/applications/@me":
            return {
                "id": str(APP_ID), "name": "Político", "icon": None, "description": "",
                "bot_public": True, "bot_require_code_grant": False, "verify_key": "k",
                "owner": user(1), "flags": 0, "team": None,
            }, None
        if path == "/gateway/bot":
            return {"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}}, None
        if parts[0] == "applications" and parts[-1] == "commands" and method == "PUT":
            self.commands = [
                {**c, "id": str(next(self._ids)), "application_id": str(APP_ID), "version": "1",
                 **({"guild_id": parts[3]} if "guilds" in parts else {})}
                for c in body.get("_list", [])
            ]
            return self.commands, None
        if parts[0] == "interactions" and parts[-1] == "callback":
            kind = body.get("type")
            message = self._message(body.get("data") or {}) if kind in (4, 5, 7) else None
            if message is not None and kind in (4, 5):
                self.originals[parts[2]] = message
            flags = (body.get("data") or {}).get("flags", 0)
            return {
                "interaction": {"id": parts[1], "type": 2, "response_message_id": message and message["id"],
                                "response_message_loading": kind == 5,
                                "response_message_ephemeral": bool(flags & EPHEMERAL)},
                **({"resource": {"type": kind, "message": message}} if message else {}),
            }, message
        if parts[0] == "webhooks":
            original = parts[-1] == "@original"
            if method == "DELETE":
                if original:
                    self.originals.pop(parts[2], None)
                return None, None
            if original and method == "PATCH":
                # An edit of the deferred response: the same message, with what was sent.
                message = {**self.originals.get(parts[2], self._message({})), "edited_timestamp": "2026-01-01T00:00:01+00:00",
                           **{k: v for k, v in body.items() if k in ("content", "components")}}
                if "attachments" in body:
                    message["attachments"] = [self._attachment(a) for a in body["attachments"]]
                self.originals[parts[2]] = message
                return message, message
            message = self._message(body)
            return message, message
        return {}, None

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)), "channel_id": str(CHANNEL_ID), "type": 0,
            "content": body.get("content", ""), "author": bot_user(), "attachments": [], "embeds": [],
            "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False, "tts": False,
            "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": None, "flags": body.get("flags", 0),
            "components": body.get("components", []),
        }

    def _attachment(self, sent: dict[str, Any]) -> dict[str, Any]:
        """An attachment as Discord describes it once stored (discord.py requires id, filename,
        size and the URLs; the request names only the upload)."""
        name = sent.get("filename", "file")
        url = f"https://cdn.discordapp.test/attachments/{CHANNEL_ID}/{next(self._ids)}/{name}"
        return {"id": str(next(self._ids)), "filename": name, "size": 0, "url": url, "proxy_url": url}

    # -- interactions tests send ---------------------------------------------------------------
    def interaction(self, kind: int, data: dict[str, Any], *, user_id: int = 7, guild: bool = True,
                    message: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(next(self._ids)), "application_id": str(APP_ID), "type": kind,
            "token": f"itoken{next(self._ids)}", "version": 1, "data": data,
            "channel_id": str(CHANNEL_ID), "locale": "es-ES", "app_permissions": "0",
            "entitlements": [], "authorizing_integration_owners": {}, "attachment_size_limit": 8388608,
        }
        if guild:
            payload["guild_id"] = str(GUILD_ID)
            payload["guild_locale"] = "es-ES"
            payload["member"] = {"user": user(user_id), "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                                 "deaf": False, "mute": False, "permissions": "0", "flags": 0}
            payload["channel"] = {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general",
                                  "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None}
            payload["context"] = 0
        else:
            payload["user"] = user(user_id)
            payload["channel"] = {"id": str(CHANNEL_ID), "type": 1, "recipients": [user(user_id)]}
            payload["context"] = 1
        if message is not None:
            payload["message"] = message
        return payload

    async def slash(self, name: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        command = next((c for c in self.commands if c["name"] == name), {"id": "1"})
        data = {"id": command["id"], "name": name, "type": 1,
                "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]}
        payload = self.interaction(2, data, **kw)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def autocomplete(self, name: str, option: str, typed: str) -> dict[str, Any]:
        command = next(c for c in self.commands if c["name"] == name)
        data = {"id": command["id"], "name": name, "type": 1,
                "options": [{"name": option, "type": 3, "value": typed, "focused": True}]}
        payload = self.interaction(4, data)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def click(self, custom_id: str, message: dict[str, Any], **kw: Any) -> dict[str, Any]:
        payload = self.interaction(3, {"custom_id": custom_id, "component_type": 2}, message=message, **kw)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    # -- reading back --------------------------------------------------------------------------
    def for_token(self, token: str) -> list[Call]:
        """Calls answering one interaction (its callback and follow-up webhook)."""
        return [c for c in self.calls if f"/{token}" in c.path]


def bot_user() -> dict[str, Any]:
    return {"id": str(BOT_ID), "username": "politico", "discriminator": "0", "global_name": "Político",
            "avatar": None, "bot": True, "flags": 0}


def user(user_id: int) -> dict[str, Any]:
    return {"id": str(user_id), "username": f"usuaria{user_id}", "discriminator": "0",
            "global_name": f"Usuaria {user_id}", "avatar": None}


def check_message(body: dict[str, Any]) -> list[str]:
    """Discord's limits on a message, callback or follow-up body."""
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    problems: list[str] = []
    content = data.get("content")
    if content is not None and len(content) > CONTENT:
        problems.append(f"content: {len(content)} > {CONTENT}")
    if body.get("type") == 8:
        choices = data.get("choices", [])
        if len(choices) > CHOICES or any(not 1 <= len(c["name"]) <= 100 for c in choices):
            problems.append("autocomplete: bad choices")
        return problems
    if "content" in data and not (content or "").strip() and not data.get("attachments") and not data.get("embeds"):
        problems.append("content: empty message")
    rows = data.get("components") or []
    if len(rows) > ROWS:
        problems.append("components: too many rows")
    for row in rows:
        buttons = row.get("components", [])
        if len(buttons) > BUTTONS_PER_ROW:
            problems.append("components: too many buttons")
        for button in buttons:
            if not 1 <= len(button.get("custom_id", "")) <= CUSTOM_ID:
                problems.append("button: bad custom_id")
            if len(button.get("label", "")) > LABEL:
                problems.append("button: label too long")
    if len(data.get("embeds") or []) > 10:
        problems.append("embeds: too many")
    return problems


async def _body(request: web.Request) -> tuple[dict[str, Any], int]:
    if not request.can_read_body:
        return {}, 0
    if request.content_type.startswith("multipart/"):
        body: dict[str, Any] = {}
        files = 0
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                await part.read()
                files += 1
        return body, files
    data = await request.json()
    return ({"_list": data} if isinstance(data, list) else data), 0


def _error(status: int, message: str) -> web.Response:
    body = json.dumps({"code": 50035, "message": message}).encode()
    return web.Response(status=status, body=body, headers={"Content-Type": "application/json"})
