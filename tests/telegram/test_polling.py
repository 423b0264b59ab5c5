"""The confirming poller against the fake Bot API: an update is confirmed to Telegram only once
it is acknowledged, a slow or stuck handler does not stop intake, errors are retried, and
``stop`` finishes and confirms what it holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from telegram import Bot, Update

from bot.telegram.polling import ConfirmingPoller
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

Handler = Callable[[Update], Awaitable[None]]


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url) as started:
        yield started


async def message(api: FakeBotAPI) -> int:
    """A user writes to the bot; the id of the update that carries it."""
    return api.update_of(await api.send_text("hola"))


class Handlers:
    """Records the updates handed over; each waits for its own gate before finishing."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.finished: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.poller: ConfirmingPoller | None = None
        self.acknowledge_first = False

    def gate(self, update_id: int) -> asyncio.Event:
        return self.gates.setdefault(update_id, asyncio.Event())

    async def stop(self, poller: ConfirmingPoller) -> None:
        """Let every handler finish (a failed test must not hang in ``stop``), then stop."""
        for gate in self.gates.values():
            gate.set()
        await asyncio.wait_for(poller.stop(), 10)

    async def __call__(self, update: Update) -> None:
        self.seen.append(update.update_id)
        if self.acknowledge_first and self.poller is not None:
            self.poller.acknowledge(update.update_id)  # "logged": the rest may take its time
        await self.gate(update.update_id).wait()
        self.finished.append(update.update_id)


async def test_an_update_is_confirmed_only_once_acknowledged(api: FakeBotAPI, bot: Bot) -> None:
    handlers = Handlers()
    poller = handlers.poller = ConfirmingPoller(bot, handlers, timeout_s=1)
    await poller.start()
    try:
        first = await message(api)
        await api.wait_for(lambda: handlers.seen == [first])
        polls = len(api.polls)
        await asyncio.sleep(0.3)  # unacknowledged: no further getUpdates, nothing confirmed
        assert len(api.polls) == polls and api.confirmed == []

        poller.acknowledge(first)  # logged, while its handler is still busy
        second = await message(api)
        await api.wait_for(lambda: handlers.seen == [first, second])
        assert api.confirmed == [first] and handlers.finished == []  # the slow one holds nothing up
        handlers.gate(second).set()
        await api.wait_for(lambda: api.confirmed == [first, second])
        handlers.gate(first).set()
    finally:
        await handlers.stop(poller)
    assert handlers.finished == [second, first]


async def test_a_stuck_handler_does_not_stop_intake(api: FakeBotAPI, bot: Bot) -> None:
    handlers = Handlers()
    poller = ConfirmingPoller(bot, handlers, timeout_s=1, ack_timeout_s=0.3)
    await poller.start()
    try:
        stuck = await message(api)
        await api.wait_for(lambda: handlers.seen == [stuck])
        after = await message(api)
        handlers.gate(after).set()
        await api.wait_for(lambda: handlers.finished == [after], timeout=5)
        assert stuck in api.confirmed and stuck not in handlers.finished
    finally:
        await handlers.stop(poller)


async def test_flood_limits_and_errors_are_waited_out(api: FakeBotAPI, bot: Bot) -> None:
    handlers = Handlers()
    handlers.acknowledge_first = True
    failures = iter(["Internal Server Error"])
    api.failures["getUpdates"] = lambda params: next(failures, None)
    api.flood["getUpdates"] = 1
    poller = handlers.poller = ConfirmingPoller(bot, handlers, timeout_s=1)
    await poller.start()
    try:
        update = await message(api)
        handlers.gate(update).set()
        await api.wait_for(lambda: handlers.finished == [update], timeout=15)
        assert api.flooded == ["getUpdates"]
    finally:
        await handlers.stop(poller)
    assert api.confirmed == [update]


async def test_stop_lets_the_updates_in_hand_finish_then_confirms_them(api: FakeBotAPI, bot: Bot) -> None:
    handlers = Handlers()
    poller = ConfirmingPoller(bot, handlers, timeout_s=1)
    await poller.start()
    update = await message(api)
    await api.wait_for(lambda: handlers.seen == [update])
    stopping = asyncio.create_task(poller.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done() and api.confirmed == []  # still in hand
    handlers.gate(update).set()
    await asyncio.wait_for(stopping, 10)
    assert handlers.finished == [update] and api.confirmed == [update]
