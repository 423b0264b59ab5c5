"""After a restart: answering, once, what earlier runs logged but never answered or never sent.

Both front-ends run :class:`Resumer` at start-up with their own way of replying to a logged
message. Two kinds of request are picked up, when younger than ``bot.resume_max_age_s``:

* *pending* ones (the bot stopped before the tweet was written): generated now and answered;
* *unsent* ones (the tweet was logged, but the bot stopped before it began sending it): the
  stored tweet is sent as it is. One whose send began is never sent again, even without a
  message id, since it may have arrived.

Several processes may start together on one database, or one may start while another is still
answering, so each request is first *claimed* (``GenerationLog.claim``: exactly one process
wins). A request another process still holds (its lease has not ended) is looked at again when
the lease ends, or sooner, since a process that stops cleanly gives up its leases. Leases are
short and renewed by their live holder (``db/leases.py``), so a dead process's requests are
taken over within ``bot.lease_s`` seconds while a live one keeps its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.core import BotCore
from bot.types import Reply
from db.log import LoggedRequest
from db.models import utcnow

logger = logging.getLogger(__name__)

#: Longest wait before requests held by other processes are looked at again.
RETRY_S = 5.0
#: Shortest wait, so that a lease ending this instant does not make a busy loop.
MIN_WAIT_S = 0.1

Send = Callable[[LoggedRequest, Reply], Awaitable[None]]


@dataclass
class Resumer:
    """Resumes one platform's requests logged before ``started_at`` (later ones are this run's)."""

    core: BotCore
    platform: str
    max_age_s: float
    started_at: datetime
    #: Replies to the logged request's message (sending a tweet marks it as being sent).
    send: Send
    #: Whether the platform still lets the bot answer it (an inline query is long gone).
    answerable: Callable[[LoggedRequest], bool]
    _tried: set[int] = field(default_factory=set)

    async def run(self) -> None:
        """Answer what can be claimed now; wait for what others hold; return when none is left."""
        while True:
            try:
                held = await self._round()
            except Exception:
                logger.exception("%s: could not read the requests to resume", self.platform)
                return
            if not held:
                return
            await asyncio.sleep(_pause(held))

    async def _round(self) -> list[LoggedRequest]:
        """One pass: claim and answer; returns the requests other processes still hold."""
        log = self.core.log
        expired = await log.expire_older_than(self.max_age_s, platform=self.platform)
        pending = self._ours(await log.pending(self.max_age_s, platform=self.platform))
        unsent = self._ours(await log.unsent(self.max_age_s, platform=self.platform))
        held: list[LoggedRequest] = []
        work: list[Awaitable[None]] = []
        for request in pending:
            if not self.answerable(request):
                await log.expire(request.id)
            elif await self._claim(request, "pending"):
                work.append(self._answer(request))
            else:
                held.append(request)
        for request in unsent:
            if not self.answerable(request):
                continue
            if await self._claim(request, "ok"):
                work.append(self._redeliver(request))
            else:
                held.append(request)
        if work or expired:
            logger.info("%s: resuming %d requests (%d expired, %d held by another process)",
                        self.platform, len(work), expired, len(held))
        await asyncio.gather(*work)
        return held

    def _ours(self, requests: list[LoggedRequest]) -> list[LoggedRequest]:
        """Requests of earlier runs this resumer has not taken on yet."""
        return [r for r in requests if r.created_at < self.started_at and r.id not in self._tried]

    async def _claim(self, request: LoggedRequest, status: str) -> bool:
        won = await self.core.log.claim(request.id, self.core.lease_s, status)
        if won:
            self._tried.add(request.id)  # one attempt per run: a failure is not retried in a loop
        return won

    async def _answer(self, request: LoggedRequest) -> None:
        try:
            reply = await self.core.resume(request.id)
            if reply.kind not in ("info", "ignored"):  # answered meanwhile, or taken over
                await self.send(request, reply)
        except Exception:
            logger.exception("%s: could not resume request %s", self.platform, request.id)

    async def _redeliver(self, request: LoggedRequest) -> None:
        try:
            reply = await self.core.redeliver(request)
            if reply is not None:
                await self.send(request, reply)
        except Exception:
            logger.exception("%s: could not send the stored tweet of request %s", self.platform, request.id)


def _pause(held: list[LoggedRequest]) -> float:
    """Seconds until the first lease among ``held`` ends, within [MIN_WAIT_S, RETRY_S]."""
    now = utcnow()
    ends = [(r.lease_until - now).total_seconds() for r in held if r.lease_until is not None]
    return min(max(min(ends, default=0.0), MIN_WAIT_S), RETRY_S)
