"""TCP ports for the servers the tests start on 127.0.0.1, without a time-of-check race.

Asking the OS for a free port and then starting a server on it leaves a window in which
another process (another test run on this machine) may take the port. Where a server can take
a socket, :func:`listening_socket` hands it one already bound, so there is no window at all;
where it only takes a number, the start is retried on a fresh port when, and only when, it
failed because the port had been taken (:func:`port_clash`).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"
#: Starts tried before a clash is reported: one clash is bad luck, five in a row a real fault.
TRIES = 5


def listening_socket() -> socket.socket:
    """A socket bound to a port the OS chose on 127.0.0.1, already listening (the caller owns
    it: pass it to the server, which serves on it with no window for another process)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen()
    return sock


def free_port() -> int:
    """A port that was free a moment ago. Another process may take it before the server binds
    it: start the server through :func:`on_free_port` (or retry on :func:`port_clash`)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_clash(failure: BaseException | str) -> bool:
    """Whether a server failed to start only because its port was taken (an exception, with
    its causes, or a server's log text)."""
    if isinstance(failure, str):
        return "address already in use" in failure.lower()
    seen: BaseException | None = failure
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EADDRINUSE:
            return True
        if port_clash(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@asynccontextmanager
async def on_free_port(
    open_server: Callable[[int], AbstractAsyncContextManager[T]], tries: int = TRIES
) -> AsyncIterator[tuple[int, T]]:
    """Enter ``open_server(port)`` on a free port, again on another one if that port was taken
    meanwhile; yields the port and what the server's context gave."""
    attempt = 1
    while True:
        port = free_port()
        async with AsyncExitStack() as stack:
            try:
                value = await stack.enter_async_context(open_server(port))
            except Exception as exc:
                if attempt >= tries or not port_clash(exc):
                    raise
                attempt += 1
                continue
            yield port, value
            return
