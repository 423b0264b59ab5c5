"""Long polling that confirms an update to Telegram only once it is safe to lose it.

Telegram forgets updates when the bot asks for the next ones (``getUpdates`` with a higher
offset). python-telegram-bot's Updater asks at once, so a command fetched but not yet logged
was lost if the process died in between. This poller hands every update of a batch to its
handler concurrently and fetches the next batch, which confirms this one, only when each update
is *acknowledged*: its command is logged (the core calls ``Origin.on_logged`` right after
``begin``; the spool counts as logged) or its handling has finished. A slow generation does
not hold up the next fetch, since its command was logged before it started.

A handler that neither logs nor finishes within ``ack_timeout_s`` no longer holds up intake: the
batch is confirmed anyway (logged as a warning). Network errors are retried as PTB does
(``RetryAfter`` waits as told, a timeout retries at once, other errors back off up to 30 s).
``stop`` fetches nothing more, lets the updates in hand finish, then confirms them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError, TimedOut

log = logging.getLogger(__name__)

Process = Callable[[Update], Awaitable[None]]

#: Longest wait for a batch's updates to be acknowledged before confirming it anyway.
ACK_TIMEOUT_S = 30.0
#: Back-off after a failed fetch grows to at most this.
MAX_BACKOFF_S = 30.0


async def handle(process: Process, update: Update, acknowledged: asyncio.Event) -> None:
    """Handle one update; it counts as acknowledged once handled, if its command did not say
    so earlier (anything that is not a logged command)."""
    try:
        await process(update)
    except Exception:
        log.exception("telegram: update %s failed", update.update_id)
    finally:
        acknowledged.set()


class ConfirmingPoller:
    """Fetches updates for ``process`` and confirms each batch once it is acknowledged."""

    def __init__(
        self, bot: Bot, process: Process, *, timeout_s: float = 10.0,
        ack_timeout_s: float = ACK_TIMEOUT_S, allowed_updates: Sequence[str] = Update.ALL_TYPES,
    ) -> None:
        self.bot = bot
        self.process = process
        self.timeout_s = timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.allowed_updates = list(allowed_updates)
        #: The next ``getUpdates`` offset: every update below it is acknowledged.
        self.offset: int | None = None
        self._acks: dict[int, asyncio.Event] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def acknowledger(self, update_id: int) -> Callable[[], None]:
        """What the handler of ``update_id`` calls once its command is logged."""
        return lambda: self.acknowledge(update_id)

    def acknowledge(self, update_id: int) -> None:
        event = self._acks.get(update_id)
        if event is not None:
            event.set()

    async def start(self) -> None:
        """Make sure no webhook is set (Telegram refuses polling then), then poll in the background."""
        await self.bot.delete_webhook()
        self._loop = asyncio.create_task(self._poll(), name="telegram-polling")

    async def stop(self) -> None:
        """Fetch nothing more, let the updates in hand finish, and confirm them."""
        self._stopping.set()
        if self._loop is not None:
            await asyncio.gather(self._loop, return_exceptions=True)
        while self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self.offset is not None:
            try:
                await self.bot.get_updates(offset=self.offset, limit=1, timeout=0,
                                           allowed_updates=self.allowed_updates)
            except TelegramError as exc:
                # Not confirmed: Telegram delivers them again, and the log recognises them.
                log.warning("telegram: could not confirm the last updates: %s", exc)

    # -- the loop ----------------------------------------------------------------------------
    async def _poll(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                updates = await self._fetch()
            except RetryAfter as exc:
                wait = exc.retry_after
                await self._pause((wait.total_seconds() if isinstance(wait, timedelta) else wait) + 0.5)
                continue
            except TimedOut:
                continue
            except InvalidToken:
                log.error("telegram: the token was refused; polling stops")
                return
            except Exception as exc:
                backoff = min(max(backoff * 1.5, 1.0), MAX_BACKOFF_S)
                log.warning("telegram: fetching updates failed (%s); again in %.0f s", exc, backoff)
                await self._pause(backoff)
                continue
            backoff = 0.0
            if updates:
                await self._hand_over(updates)
                self.offset = updates[-1].update_id + 1

    async def _fetch(self) -> list[Update] | None:
        """The next batch (confirming the last one); None when ``stop`` came first."""
        fetch = asyncio.ensure_future(self.bot.get_updates(
            offset=self.offset, timeout=self.timeout_s, allowed_updates=self.allowed_updates,
        ))
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():
            # Whatever this call would have brought is not confirmed: Telegram sends it again.
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await fetch
            return None
        return list(fetch.result())

    async def _hand_over(self, updates: list[Update]) -> None:
        """Start handling every update; return once each is acknowledged (or the wait is capped)."""
        events = []
        for update in updates:
            event = self._acks[update.update_id] = asyncio.Event()
            events.append(event)
            task = asyncio.create_task(self._handle(update, event), name=f"telegram-update-{update.update_id}")
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                await asyncio.gather(*(event.wait() for event in events))
        except TimeoutError:
            late = [u.update_id for u, e in zip(updates, events, strict=True) if not e.is_set()]
            log.warning("telegram: confirming updates %s unlogged after %.0f s", late, self.ack_timeout_s)
        finally:
            for update in updates:
                self._acks.pop(update.update_id, None)

    async def _handle(self, update: Update, acknowledged: asyncio.Event) -> None:
        await handle(self.process, update, acknowledged)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake up for ``stop``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
