"""Resuming with several processes on one database (bot/resume.py): each request left pending
or unsent is answered by exactly one process, one a live process holds is answered once its
lease ends (at once for a dead holder, which stops renewing it; never for a live one), and a
tweet whose send began is never sent again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.config import Settings
from bot.core import BotCore
from bot.ratelimit import MemoryRateLimiter
from bot.resume import Resumer, Send
from bot.types import Incoming, Origin, Reply
from db.leases import Heartbeat
from db.log import GenerationLog, LoggedRequest, NewGeneration
from db.migrate import upgrade
from tests.bot.test_core import FakeGenerator
from tests.support.waiting import eventually


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


async def test_a_dead_holders_requests_are_resumed_at_once_and_a_live_slow_one_is_left_alone(
    settings: Settings, database_url: str
) -> None:
    """Heartbeat leases: a process killed mid-request stops renewing, so the two restarted
    processes answer its requests (each once) as soon as its short lease ends; a process that
    is alive, with a generation slower than the lease, keeps renewing and answers its own."""
    await upgrade(database_url)
    lease_s = 0.8
    settings = settings.model_copy(update={"bot": settings.bot.model_copy(update={"lease_s": lease_s})})
    live_log, dead_log, *logs = [await GenerationLog.open(database_url) for _ in range(4)]
    gate = asyncio.Event()
    slow = FakeGenerator(hook=gate.wait)  # generates only once the gate opens
    live = BotCore(settings, slow, live_log, MemoryRateLimiter())
    heartbeat = Heartbeat(live_log, lease_s, lease_s / 4, live.max_hold_s)
    heartbeat.start()
    cores = [BotCore(settings, FakeGenerator(), log, MemoryRateLimiter()) for log in logs]
    sent: list[int] = []

    def sender(core: BotCore) -> Send:  # as a front-end does: mark the tweet as being sent first
        async def send(request: LoggedRequest, reply: Reply) -> None:
            if reply.tweet is None or await core.mark_sending(reply.tweet.generation_id):
                sent.append(request.id)
        return send

    try:
        orphans = [(await dead_log.begin("telegram", "u2", "Ana", "c2", "private", "", "/tuit derecha", {},
                                         source=f"c2:{i}", lease_s=lease_s)).id for i in range(4)]
        slow_reply = asyncio.create_task(live.handle(Incoming(
            Origin("telegram", "u1", "c1", source="c1:1"), "/tuit izquierda")))
        await eventually(lambda: asyncio.sleep(0, slow.requests), bool)  # logged and generating
        started = datetime.now(UTC)
        resumers = [Resumer(core, "telegram", 600, started, sender(core), answerable=lambda r: True)
                    for core in cores]
        resuming = asyncio.gather(*(r.run() for r in resumers))
        await eventually(lambda: asyncio.sleep(0, sent), lambda s: len(s) >= len(orphans))
        await asyncio.sleep(2 * lease_s)  # the slow request's first lease is long over by now
        assert sorted(sent) == sorted(orphans)  # each orphan once; the live one not taken
        gate.set()
        reply = await slow_reply
        assert reply.tweet is not None and await live.mark_sending(reply.tweet.generation_id)
        await asyncio.wait_for(resuming, 30)
        assert sorted(sent) == sorted(orphans)
        assert await logs[0].pending() == []
    finally:
        await heartbeat.stop()
        for log in (live_log, dead_log, *logs):
            await log.aclose()
