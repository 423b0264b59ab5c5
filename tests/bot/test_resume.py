"""Resuming with several processes on one database (bot/resume.py): each request left pending
or unsent is answered by exactly one process, one a live process holds is answered once its
lease ends, and a tweet whose send began is never sent again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.config import Settings
from bot.core import BotCore
from bot.ratelimit import MemoryRateLimiter
from bot.resume import Resumer, Send
from bot.types import Reply
from db.log import GenerationLog, LoggedRequest, NewGeneration
from db.migrate import upgrade
from tests.bot.test_core import FakeGenerator


async def test_processes_resuming_together_answer_each_request_once(settings: Settings, database_url: str) -> None:
    await upgrade(database_url)
    logs = [await GenerationLog.open(database_url) for _ in range(2)]
    generators = [FakeGenerator(), FakeGenerator()]
    cores = [BotCore(settings, g, log, MemoryRateLimiter()) for g, log in zip(generators, logs, strict=True)]
    loop = asyncio.get_running_loop()
    sent: list[tuple[int, str, float]] = []  # (request id, what was sent, when)

    async def begin(source: str, lease_s: float | None = None) -> int:
        begun = await logs[0].begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit derecha", {},
                                    source=source, lease_s=lease_s)
        return begun.id

    async def stored(source: str, text: str) -> int:
        [generation_id] = await logs[0].finish(await begin(source), "ok", controls={"side": "derecha"}, model="demo",
                                               generations=[NewGeneration(text)])
        return generation_id

    def sender(core: BotCore) -> Send:  # what a front-end does: mark a tweet as being sent, then send it
        async def send(request: LoggedRequest, reply: Reply) -> None:
            if reply.tweet is not None and not await core.mark_sending(reply.tweet.generation_id):
                return
            sent.append((request.id, reply.tweet.text if reply.tweet else reply.kind, loop.time()))
        return send

    try:
        crashed = [await begin(f"c1:{i}") for i in range(8)]
        held = await begin("c1:held", lease_s=1.5)  # a live process is still answering it
        held_until = loop.time() + 1.5
        never_sent = await stored("c1:never", "un tuit guardado")
        began = await stored("c1:began", "un tuit que quizá llegó")
        await logs[0].mark_sending(began)
        started = datetime.now(UTC)
        resumers = [Resumer(core, "telegram", 600, started, sender(core), answerable=lambda r: True) for core in cores]
        await asyncio.wait_for(asyncio.gather(*(r.run() for r in resumers)), 60)

        answered = {request_id: (what, at) for request_id, what, at in sent}
        never_sent_request = (await logs[0].generation(never_sent)).request_id
        assert len(sent) == len(answered) == len(crashed) + 2  # each once; the one that began, never
        assert set(answered) == {*crashed, held, never_sent_request}
        assert answered[never_sent_request][0] == "un tuit guardado"
        assert answered[held][1] >= held_until - 0.1  # only once its lease ended
        assert sum(len(g.requests) for g in generators) == len(crashed) + 1  # the stored one is not regenerated
        assert await logs[1].pending() == [] and await logs[1].unsent(600) == []
    finally:
        for log in logs:
            await log.aclose()
