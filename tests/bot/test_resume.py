"""Taking over (bot/resume.py) with several processes on one database: each request left pending
or unanswered is answered by exactly one process, into its placeholder when it has one; a live
process's requests are never taken; the looking goes on after a database error, and every
takeover is counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from bot.config import Settings
from bot.core import BotCore, Takeover, Unmonitored
from bot.ratelimit import MemoryRateLimiter
from bot.resume import Resumer, Send
from bot.types import Incoming, MessageRef, Origin, Reply
from db.leases import Heartbeat
from db.log import GenerationLog, LoggedRequest, NewGeneration
from db.migrate import upgrade
from db.models import Request, utcnow
from tests.bot.test_core import FakeGenerator
from tests.support.waiting import eventually


@dataclass
class Counted(Unmonitored):
    """A monitor that keeps the takeovers it is told of."""

    takeovers: Counter[tuple[str, str]] = field(default_factory=Counter)

    def took_over(self, frontend: str, kind: Takeover) -> None:
        self.takeovers[frontend, kind] += 1


@dataclass
class Chat:
    """What users see: each delivery, and the placeholders put up (as a front-end reports them)."""

    delivered: list[tuple[int, str, str]] = field(default_factory=list)  # (request, text, into)
    put_up: list[int] = field(default_factory=list)

    def sender(self, core: BotCore) -> Send:
        async def send(request: LoggedRequest, reply: Reply) -> None:
            into = (reply.answer_ref or {}).get("ref", "")
            if reply.tweet is not None and not into and not await core.mark_sending(reply.tweet.generation_id):
                return  # a new message whose send began elsewhere: never twice
            self.delivered.append((request.id, reply.tweet.text if reply.tweet else reply.text, into))
            await core.delivered(reply, into or f"new:{request.id}")
        return send

    def origin_of(self, request: LoggedRequest) -> Origin:
        """A taken-over request's origin, whose placeholder is recorded as put up."""
        async def placeholder() -> MessageRef:
            self.put_up.append(request.id)
            return {"ref": f"placeholder:{request.id}"}
        return Origin(request.platform, request.user_external_id, request.chat_external_id,
                      placeholder=placeholder)


def resumer(core: BotCore, chat: Chat) -> Resumer:
    return Resumer(core, "telegram", 600, chat.sender(core), answerable=lambda r: True,
                   origin_of=chat.origin_of, every_s=0.05)


async def test_processes_taking_over_together_answer_each_request_once(settings: Settings, database_url: str) -> None:
    await upgrade(database_url)
    logs = [await GenerationLog.open(database_url) for _ in range(3)]
    dead = logs[2]  # the process that logged everything and died
    generators = [FakeGenerator(), FakeGenerator()]
    monitors = [Counted(), Counted()]
    cores = [BotCore(settings, g, log, MemoryRateLimiter(), monitor=m)
             for g, log, m in zip(generators, logs, monitors, strict=False)]
    chat = Chat()

    async def begin(source: str, lease_s: float | None = None) -> int:
        return (await dead.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit derecha", {},
                                 source=source, lease_s=lease_s)).id

    async def stored(source: str, text: str, placeholder: str = "") -> tuple[int, int]:
        request_id = await begin(source)
        if placeholder:
            await dead.hold(request_id, placeholder)
        [generation_id] = await dead.finish(request_id, "ok", controls={"side": "derecha"}, model="demo",
                                            generations=[NewGeneration(text)])
        return request_id, generation_id

    try:
        crashed = [await begin(f"c1:{i}") for i in range(6)]
        with_placeholder = await begin("c1:ph")
        await dead.hold(with_placeholder, "77:1")
        held = await begin("c1:held", lease_s=1.0)  # its (not renewed) lease ends in a second
        never, _ = await stored("c1:never", "un tuit guardado")
        _, began_tweet = await stored("c1:began", "un tuit que quizá llegó")
        await dead.mark_sending(began_tweet)  # sent as a new message, maybe arrived: never again
        edited, edited_tweet = await stored("c1:edited", "un tuit editado quizá", placeholder="77:2")
        await dead.mark_sending(edited_tweet)  # into a placeholder: editing again is harmless
        refused = await begin("c1:refused")
        await dead.finish(refused, "rate_limited", error="Espera un poco: 6 tuits por minuto.")

        resumers = [resumer(core, chat) for core in cores]
        expected = {*crashed, with_placeholder, held, never, edited, refused}

        async def looked() -> set[int]:
            await asyncio.gather(*(r.look() for r in resumers))
            await asyncio.gather(*(r.settle() for r in resumers))
            return {request for request, _, _ in chat.delivered}

        assert await eventually(looked, lambda done: done >= expected, timeout=30) == expected
        delivered = {request: (text, into) for request, text, into in chat.delivered}
        assert len(chat.delivered) == len(expected)  # each once; the one whose send began, never
        assert delivered[never] == ("un tuit guardado", "")  # as stored, not regenerated
        assert delivered[edited] == ("un tuit editado quizá", "77:2")
        assert delivered[refused][0] == "Espera un poco: 6 tuits por minuto."
        assert delivered[with_placeholder][1] == "77:1"  # the dead process's placeholder
        assert sorted(chat.put_up) == sorted([*crashed, held])  # one put up for the others
        assert all(delivered[r][1] == f"placeholder:{r}" for r in crashed)
        assert sum(len(g.requests) for g in generators) == len(crashed) + 2  # pending ones only
        taken = monitors[0].takeovers + monitors[1].takeovers
        assert taken == {("telegram", "pending"): len(crashed) + 2, ("telegram", "unanswered"): 3}
        assert await logs[0].pending() == [] and await logs[0].unanswered(600) == []
    finally:
        for log in logs:
            await log.aclose()


async def test_a_dead_holders_requests_are_taken_over_and_a_live_slow_one_never(
    settings: Settings, database_url: str
) -> None:
    """Heartbeat leases: a process killed mid-request stops renewing, so the peers running their
    takeover loop answer its requests (each once) as soon as its short lease ends; a live
    process with a generation slower than the lease keeps renewing and answers its own."""
    await upgrade(database_url)
    lease_s = 2.0  # wide enough for a loaded machine (tests/db/test_leases.py)
    settings = settings.model_copy(update={"bot": settings.bot.model_copy(update={"lease_s": lease_s})})
    live_log, dead_log, *logs = [await GenerationLog.open(database_url) for _ in range(4)]
    gate = asyncio.Event()
    slow = FakeGenerator(hook=gate.wait)  # generates only once the gate opens
    live = BotCore(settings, slow, live_log, MemoryRateLimiter())
    heartbeat = Heartbeat(live_log, lease_s, lease_s / 8, live.max_hold_s)
    heartbeat.start()
    cores = [BotCore(settings, FakeGenerator(), log, MemoryRateLimiter()) for log in logs]
    chat = Chat()
    loops = [resumer(core, chat) for core in cores]
    for loop in loops:
        loop.start()
    try:
        orphans = [(await dead_log.begin("telegram", "u2", "Ana", "c2", "private", "", "/tuit derecha", {},
                                         source=f"c2:{i}", lease_s=lease_s)).id for i in range(4)]
        slow_reply = asyncio.create_task(live.handle(Incoming(
            Origin("telegram", "u1", "c1", source="c1:1"), "/tuit izquierda")))
        await eventually(lambda: asyncio.sleep(0, slow.requests), bool)  # logged and generating
        [slow_id] = [r.id for r in await live_log.pending() if r.source == "c1:1"]
        first_lease = (await live_log.request(slow_id)).lease_until

        await eventually(lambda: asyncio.sleep(0, chat.delivered), lambda d: len(d) >= len(orphans))
        # The orphans' leases ended (begun before the slow one's): its first lease is over too,
        # yet nobody took it, since the live process renewed it.
        assert sorted(r for r, _, _ in chat.delivered) == sorted(orphans)
        request = await live_log.request(slow_id)
        assert request.status == "pending" and request.lease_until > first_lease
        assert not await logs[0].claim(slow_id, lease_s)

        gate.set()
        reply = await slow_reply
        assert reply.tweet is not None and reply.request_id == slow_id
        await live.delivered(reply, "c1:2")
        assert sorted(r for r, _, _ in chat.delivered) == sorted(orphans)
        assert (await logs[0].request(slow_id)).status == "ok"
    finally:
        for loop in loops:
            await loop.stop(grace_s=5)
        await heartbeat.stop()
        for log in (live_log, dead_log, *logs):
            await log.aclose()


async def test_the_loop_goes_on_after_a_database_error(settings: Settings, log: GenerationLog,
                                                       caplog) -> None:  # type: ignore[no-untyped-def]
    """A look that cannot reach the database is logged and the next one tries again (the loop
    used to give up for good on the first error)."""
    core = BotCore(settings, FakeGenerator(), log, MemoryRateLimiter())
    chat = Chat()
    orphan = (await log.begin("telegram", "u3", "Ana", "c3", "private", "", "/tuit", {}, source="c3:1")).id
    real_pending, failures = log.pending, [OperationalError("SELECT", {}, ConnectionError("caído"))]

    async def pending(*args, **kwargs):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await real_pending(*args, **kwargs)

    log.pending = pending  # type: ignore[method-assign]
    loop = resumer(core, chat)
    loop.start()
    try:
        await eventually(lambda: asyncio.sleep(0, chat.delivered), bool, timeout=30)
    finally:
        await loop.stop(grace_s=5)
    assert [r for r, _, _ in chat.delivered] == [orphan] and failures == []
    assert "could not look for requests to take over" in caplog.text


async def test_a_stored_answer_with_nothing_to_say_is_closed_not_taken_again(settings: Settings, log: GenerationLog) -> None:
    """A finished request whose answer has nothing to deliver (no tweet, no words) is marked
    answered by the peer that took it over, instead of being claimed again at every look."""
    core = BotCore(settings, FakeGenerator(), log, MemoryRateLimiter())
    chat = Chat()
    silent = (await log.begin("telegram", "u4", "Ana", "c4", "private", "", "/tuit", {}, source="c4:1")).id
    await log.finish(silent, "ok")  # a tweet-less "ok": nothing a user could be shown
    loop = resumer(core, chat)
    assert await loop.look() == 1
    await loop.settle()
    assert chat.delivered == [] and await log.unanswered(600) == []
    assert await loop.look() == 0


async def test_a_platforms_takeover_touches_only_its_own_requests(settings: Settings, log: GenerationLog) -> None:
    """Each front-end takes over its own platform's requests (a Telegram process cannot answer
    on Discord); one it can no longer answer is given up (a stored answer it cannot deliver is
    closed), that one only; and stopping does not wait past its grace for an answer that hangs."""
    gate = asyncio.Event()
    core = BotCore(settings, FakeGenerator(hook=gate.wait), log, MemoryRateLimiter())
    chat = Chat()

    async def begin(platform: str, source: str) -> int:
        return (await log.begin(platform, "u5", "Ana", "c5", "private", "", "/tuit", {}, source=source)).id

    gone, hangs, discord = await begin("telegram", "gone"), await begin("telegram", "c5:1"), await begin("discord", "i:1")
    old = await begin("discord", "i:0")  # too old for Telegram's takeover to answer, not its to expire
    async with log.sessions() as session, session.begin():
        await session.execute(update(Request).where(Request.id == old)
                              .values(created_at=utcnow() - timedelta(seconds=700)))
    stored_gone, stored_discord = await begin("telegram", "gone:stored"), await begin("discord", "i:2")
    for stored in (stored_gone, stored_discord):
        await log.finish(stored, "rate_limited", error="Espera un poco.")
    loop = Resumer(core, "telegram", 600, chat.sender(core), answerable=lambda r: not r.source.startswith("gone"),
                   origin_of=chat.origin_of)
    assert await loop.look() == 1  # the answerable Telegram one, now generating
    assert [r.id for r in await log.pending()] == [hangs, discord, old]
    assert (await log.request(gone)).status == "expired"  # type: ignore[union-attr]
    assert [r.id for r in await log.unanswered(600)] == [stored_discord]  # Telegram's closed, Discord's left
    await loop.stop(grace_s=0.1)  # the answer in hand hangs: cut short after its grace
    assert chat.delivered == [] and [r.id for r in await log.pending()] == [hangs, discord, old]


async def test_a_takeover_that_has_nothing_to_say_sends_nothing(settings: Settings, log: GenerationLog) -> None:
    """When resuming finds the request answered meanwhile ("info") or taken by yet another
    process ("ignored"), the chat gets no message: not an empty one, not a stale-button note."""
    core = BotCore(settings, FakeGenerator(), log, MemoryRateLimiter())
    chat = Chat()
    replies = iter([Reply("info", "Ese botón ya no sirve."), Reply("ignored", "")])

    async def resume(request_id: int, origin: Origin | None = None) -> Reply:
        return next(replies)

    core.resume = resume  # type: ignore[method-assign]
    for source in ("c6:1", "c6:2"):
        await log.begin("telegram", "u6", "Ana", "c6", "private", "", "/tuit", {}, source=source)
    loop = resumer(core, chat)
    assert await loop.look() == 2
    await loop.settle()
    assert chat.delivered == []
