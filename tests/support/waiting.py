"""Waiting for state another task, thread or process writes, always with a deadline.

Front-ends store a reply's message id only after the platform has accepted the reply, engines
and servers change their counters from other threads and processes: a test that sees one
thing must wait for the next. A wait with no deadline turns a missed window into a hung run,
so every wait here gives up after ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import inspect
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


async def until(condition: Callable[[], T | Awaitable[T]], what: str, timeout: float = 30.0,
                every_s: float = 0.01) -> T:
    """Poll ``condition()`` (a plain or an async callable) until its value is truthy; that value.

    Fails with ``what`` (the state that never came) once ``timeout`` passes, so a bug is a
    failure with a reason rather than a hang.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}; it never happened")
        await asyncio.sleep(every_s)
