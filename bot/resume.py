"""Answering, once, what a dead or stopped process left unanswered: every live process keeps
looking, so nobody waits for a restart.

Each front-end runs a :class:`Resumer` for as long as it runs. Every few seconds it looks in the
log for its platform's requests younger than ``bot.resume_max_age_s`` that nobody holds a live
lease on, and takes over two kinds:

* *pending* ones (their process stopped before the tweet was written): generated now and
  answered, into the placeholder that process had put up when the log names one;
* *unanswered* ones (the answer was stored, but never reached the platform): delivered as
  stored, a tweet into its placeholder (an edit, so repeating it shows one tweet).

Each is first *claimed* (``GenerationLog.claim``: one conditional UPDATE, exactly one process
wins), which leases it to this process; the heartbeat (``db/leases.py``) renews the lease until
the answer is delivered. A live process renews the leases of its own requests, so they are never
taken from it; a process killed with ``kill -9`` stops renewing, and a peer takes its requests
over within ``bot.lease_s`` plus one look. A process that stops cleanly lets its leases go, so
its peers take the rest at their next look. Older pending requests are marked expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core import BotCore, Takeover
from bot.types import Origin, Reply
from db.log import LoggedRequest

logger = logging.getLogger(__name__)

#: How often a process looks for requests to take over, at most (a random part of it less, so
#: that peers started together do not look at the same moment).
LOOK_EVERY_S = 5.0

Send = Callable[[LoggedRequest, Reply], Awaitable[None]]


@dataclass
class Resumer:
    """Takes over one platform's requests that their process left unanswered."""

    core: BotCore
    platform: str
    max_age_s: float
    #: Delivers a reply to a logged request (into its placeholder when it has one) and reports
    #: the delivery to the core.
    send: Send
    #: Whether the platform still lets the bot answer it (an inline query is long gone).
    answerable: Callable[[LoggedRequest], bool]
    #: The origin a pending request is answered from, with the placeholder to put up in its
    #: chat when the log names none (None: answered with a new message).
    origin_of: Callable[[LoggedRequest], Origin | None] = lambda request: None
    every_s: float = LOOK_EVERY_S
    _work: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start looking in the background (needs a running loop)."""
        self._loop = asyncio.create_task(self.run(), name=f"{self.platform}-takeover")

    async def run(self) -> None:
        """Look, start answering what was claimed, and look again, until :meth:`stop`."""
        while not self._stopping.is_set():
            try:
                await self.look()
            except Exception:
                # The database is out of reach (claiming needs it): the next look tries again.
                logger.warning("%s: could not look for requests to take over", self.platform, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every_s * random.uniform(0.5, 1.0))

    async def look(self) -> int:
        """Claim what is free now and start answering it; returns how many were claimed."""
        log = self.core.log
        expired = await log.expire_older_than(self.max_age_s, platform=self.platform)
        claimed = 0
        for request in await log.pending(self.max_age_s, platform=self.platform, free=True):
            if log.holds(request.id):
                continue  # this process's own, begun while the database was down
            if not self.answerable(request):
                await log.expire(request.id)
            elif await log.claim(request.id, self.core.lease_s):
                claimed += 1
                self._start(self._answer(request), "pending")
        for request in await log.unanswered(self.max_age_s, platform=self.platform):
            if log.holds(request.id):
                continue
            if not self.answerable(request):
                await log.answered(request.id)  # nothing left to deliver it to
            elif await log.claim(request.id, self.core.lease_s, finished=True):
                claimed += 1
                self._start(self._redeliver(request), "unanswered")
        if claimed or expired:
            logger.info("%s: taking over %d request(s) (%d expired)", self.platform, claimed, expired)
        return claimed

    async def settle(self) -> None:
        """Wait for the answers started so far."""
        while self._work:
            await asyncio.gather(*self._work, return_exceptions=True)

    async def stop(self, grace_s: float) -> None:
        """Stop looking (a look in progress ends first: cutting it short would cut a database
        call) and give the answers in hand ``grace_s`` to finish; what is cut short stays
        leased until the app lets go."""
        self._stopping.set()
        if self._loop is not None:
            await self._loop
        if self._work:
            await asyncio.wait(set(self._work), timeout=grace_s)
        for task in list(self._work):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._work, return_exceptions=True)

    def _start(self, work: Awaitable[None], kind: Takeover) -> None:
        self.core.monitor.took_over(self.platform, kind)
        task = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _answer(self, request: LoggedRequest) -> None:
        try:
            reply = await self.core.resume(request.id, self.origin_of(request))
            if reply.kind not in ("info", "ignored"):  # answered meanwhile, or taken over
                await self.send(request, reply)
        except Exception:
            logger.exception("%s: could not answer request %s", self.platform, request.id)

    async def _redeliver(self, request: LoggedRequest) -> None:
        try:
            reply = await self.core.redeliver(request)
            if reply is None:
                await self.core.log.answered(request.id)
            else:
                await self.send(request, reply)
        except Exception:
            logger.exception("%s: could not deliver the stored answer of request %s", self.platform, request.id)
