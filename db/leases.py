"""The heartbeat that keeps a live process's leases alive.

A lease says whether its holder is alive, not how long the slowest generation could take: it is
short (``lease_s``, seconds) and the holder renews every lease it holds every ``every_s`` with
one UPDATE (:meth:`db.log.GenerationLog.renew`). A process killed with ``kill -9`` stops
renewing, so its requests are free for another process at most ``lease_s`` later, while a slow
generation in a live process keeps its lease for as long as it runs (up to ``max_hold_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from db.log import GenerationLog

logger = logging.getLogger(__name__)


@dataclass
class Heartbeat:
    """Renews ``log``'s leases in the background between :meth:`start` and :meth:`stop`."""

    log: GenerationLog
    lease_s: float
    every_s: float
    max_hold_s: float
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        """Start beating (needs a running loop); a second call does nothing."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="lease-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.log.renew(self.lease_s, self.max_hold_s)
            except Exception:
                # The database is out of reach: nobody can take the leases over meanwhile
                # (claiming needs it too), and the next beat tries again.
                logger.warning("could not renew the request leases", exc_info=True)
