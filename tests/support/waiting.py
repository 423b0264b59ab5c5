"""Waiting for state another task writes: front-ends store a reply's message id only after
the platform has accepted the reply, so a test that sees the reply must wait for the id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30.0) -> T:
    """``fetch()`` again until ``ok`` holds for its value (or ``timeout`` passes); the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = await fetch()
    while not ok(value) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        value = await fetch()
    return value
