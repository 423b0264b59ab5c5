"""Webhook intake that answers Telegram's call only once the update is safe to lose.

python-telegram-bot's own webhook server answers 200 as soon as an update arrives and handles
it afterwards, so a process killed in between lost the command: Telegram had heard it was
delivered. Here, as with :class:`~bot.telegram.polling.ConfirmingPoller`, the call is answered
only when the update is *acknowledged*: its command is logged (the core calls
``Origin.on_logged`` right after ``begin``; the spool counts as logged) or its handling has
finished. A process that dies before answering leaves the call unanswered, and Telegram (or the
balancer in front of several processes) delivers the update again; the log recognises a
command it already holds by its ``source``, so it is answered once.

Stopping closes the port first, so a balancer moves new calls to the other processes at once,
then lets the updates in hand finish.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, Update

from bot.embedded_http import EmbeddedServer
from bot.telegram.polling import ACK_TIMEOUT_S, Process, handle

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookIntake:
    """Receives Telegram's calls on ``listen:port`` at ``path`` for ``process``."""

    def __init__(
        self, bot: Bot, process: Process, *, url: str, listen: str, port: int, path: str,
        secret: str = "", ack_timeout_s: float = ACK_TIMEOUT_S,
    ) -> None:
        self.bot = bot
        self.process = process
        self.url = url
        self.secret = secret
        self.ack_timeout_s = ack_timeout_s
        route = "/" + path.strip("/")
        self.server = EmbeddedServer(Starlette(routes=[Route(route, self._receive, methods=["POST"])]), listen, port)
        self._acks: dict[int, asyncio.Event] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False

    def acknowledger(self, update_id: int) -> Callable[[], None]:
        """What the handler of ``update_id`` calls once its command is logged."""
        return lambda: self._acknowledge(update_id)

    def _acknowledge(self, update_id: int) -> None:
        event = self._acks.get(update_id)
        if event is not None:
            event.set()

    async def start(self) -> None:
        """Listen, then tell Telegram where to call (every process registers the same URL)."""
        await self.server.start()
        await self.bot.set_webhook(self.url, secret_token=self.secret or None, allowed_updates=Update.ALL_TYPES)

    async def stop(self) -> None:
        """Close the port (calls in progress are answered), then let the updates in hand finish."""
        self._closing = True
        await self.server.stop()
        while self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _receive(self, request: Request) -> Response:
        if self._closing:
            return Response(status_code=503)
        given = request.headers.get(SECRET_HEADER, "")
        if self.secret and not hmac.compare_digest(given.encode(), self.secret.encode()):
            return Response(status_code=403)
        try:
            update = Update.de_json(await request.json(), self.bot)
        except Exception:
            log.info("telegram: a webhook call that is not an update was refused")
            return Response(status_code=400)
        acknowledged = self._acks[update.update_id] = asyncio.Event()
        task = asyncio.create_task(handle(self.process, update, acknowledged),
                                   name=f"telegram-update-{update.update_id}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                await acknowledged.wait()
        except TimeoutError:
            log.warning("telegram: answering webhook update %s unlogged after %.0f s",
                        update.update_id, self.ack_timeout_s)
        finally:
            self._acks.pop(update.update_id, None)
        return Response(status_code=200)
