"""A small Starlette app served by uvicorn inside the bot's own event loop.

``politico run``'s monitoring port and Telegram's webhook intake both need one: a port opened
and closed by the runner (not by uvicorn's own signal handling, which would take SIGTERM from
the runner), bound before serving so that a port that cannot be had is the operating system's
error at start-up, not a log line later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

log = logging.getLogger(__name__)


class EmbeddedServer:
    """``app`` on ``host:port`` (0: a free port, readable from ``port`` once started)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: _Embedded | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and serve in the background; ``OSError`` when the port cannot be had."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off")
        self._server = server = _Embedded(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"http-{self.port}")
        while not server.started and not self._task.done():  # uvicorn has no event for it
            await asyncio.sleep(0.01)
        if not server.started:
            raise OSError(f"the server on {self.host}:{self.port} did not start")

    async def stop(self) -> None:
        """Close the port: new connections are refused at once, a request in progress is
        answered first."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        except Exception:
            log.exception("the server on %s:%d did not close cleanly", self.host, self.port)
        self._server = self._task = None


class _Embedded(uvicorn.Server):
    """uvicorn inside a process whose signals belong to someone else (the runner)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
