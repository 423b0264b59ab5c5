"""A test load balancer for bot processes in webhook mode, as nginx runs in front of them.

Calls go round-robin to the upstreams; one whose port refuses the connection (dead, or
draining: a webhook process closes its port on SIGTERM) is skipped for the next, as
``proxy_next_upstream error`` does. An upstream that dies while it holds a call is not retried
here (Telegram's webhook POST is not idempotent): the caller gets 502, and Telegram delivers the
update again later, as :func:`deliver` does.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
from aiohttp import web


class Balancer:
    """Round-robin over ``upstreams`` (base URLs) on a free port of 127.0.0.1."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0
        #: (upstream, status) of every call passed on; status 0: the upstream refused to connect.
        self.passed: list[tuple[str, int]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Balancer:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("x-", "content-type"))}
        start = next(self._turn)
        for offset in range(len(self.upstreams)):
            upstream = self.upstreams[(start + offset) % len(self.upstreams)]
            try:
                async with self._session.post(f"{upstream}/{request.match_info['path']}", data=body,
                                              headers=headers) as response:
                    self.passed.append((upstream, response.status))
                    return web.Response(status=response.status, body=await response.read())
            except aiohttp.ClientConnectorError:
                self.passed.append((upstream, 0))
                continue  # nobody listening: the next upstream
            except (TimeoutError, aiohttp.ClientError):
                return web.Response(status=502)  # it died holding the call
        return web.Response(status=502)


async def deliver(session: aiohttp.ClientSession, url: str, update: dict[str, Any], secret: str,
                  deadline_s: float = 90.0) -> int:
    """Post ``update`` as Telegram does: again (after a pause) until it is answered 200; returns
    how many tries it took."""
    deadline = time.monotonic() + deadline_s
    tries = 0
    while True:
        tries += 1
        try:
            async with session.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as response:
                if response.status == 200:
                    return tries
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"update {update['update_id']} was never accepted in {deadline_s:g} s")
        await asyncio.sleep(0.5)
