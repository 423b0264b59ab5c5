"""What every fake platform server shares: the calls it received, and waiting on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class CallLog:
    """Mixin for a fake server that appends to ``calls`` and notifies ``_changed`` on each call."""

    calls: list[Any]
    _changed: asyncio.Condition
    _runner: web.AppRunner | None
    port: int

    async def _serve(self, app: web.Application) -> None:
        """Serve ``app`` on 127.0.0.1 on a free port (``self.port``)."""
        self._runner = runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until ``predicate()`` is truthy; return its value.

        It is re-checked after every call and every 50 ms (it may read state outside the fake).
        """
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not (value := predicate()):
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = [(c.method, getattr(c, "path", "")) for c in self.calls][-20:]
                    raise AssertionError(f"timed out; last calls: {recent}")
                try:
                    await asyncio.wait_for(self._changed.wait(), min(left, 0.05))
                except TimeoutError:
                    continue
            return value
