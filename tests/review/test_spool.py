"""The spool: with the database down the bot's writes are kept on disk, then replayed in order."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot import texts
from bot.config import Settings
from bot.core import BotCore
from bot.ratelimit import MemoryRateLimiter
from bot.resume import Resumer
from bot.types import Incoming, Origin
from db.engine import create_engine
from db.leases import Heartbeat
from db.log import WRITERS, GenerationLog, NewGeneration
from db.models import Generation, Rating, Request, utcnow
from db.spool import SpoolFile
from generation.serving.service import TweetResult
from generation.types import SamplingParams
from tests.support.outage import Outage
from tests.support.waiting import until


@pytest.fixture
async def outage(database_url: str, tmp_path: Path) -> AsyncIterator[Outage]:
    switch = Outage(database_url, tmp_path)
    await switch.start_down()
    yield switch
    if switch.port:
        await switch.down()


def _log(outage: Outage, tmp_path: Path, retry_s: float = 60.0) -> GenerationLog:
    log = GenerationLog(create_engine(outage.url), str(tmp_path / "spool.jsonl"))
    assert log.spool is not None
    log.spool.retry_s = retry_s
    return log


async def _count(log: GenerationLog, model: type) -> int:
    async with log.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _bot_traffic(log: GenerationLog) -> tuple[int, list[int]]:
    """What the core writes for one answered /tuit, a delivery and a 👍."""
    request_id = (await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit derecha",
                                  source="c1:1", lease_s=60)).id
    ids = await log.finish(
        request_id, "ok", model="demo", side="derecha", params={"top_p": 0.9}, seed=7,
        generations=[NewGeneration("hola mundo", tokens=3, seed=7), NewGeneration("otro", shown=False)],
    )
    assert await log.mark_sending(ids[0])
    assert await log.mark_sent(ids[0], "msg-1")
    assert await log.rate("telegram", "u2", ids[0], 1, "Beto")
    return request_id, ids


async def _wait_replayed(log: GenerationLog) -> None:
    spool = log.spool
    assert spool is not None
    await until(lambda: not spool.spooling, "the spool to be replayed", timeout=10, every_s=0.05)


async def test_down_then_up_loses_nothing(outage: Outage, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = _log(outage, tmp_path, retry_s=0.1)
    try:
        with caplog.at_level(logging.WARNING, logger="db.spool"):
            request_id, ids = await _bot_traffic(log)
        assert request_id < 0 and all(i < 0 for i in ids)  # provisional: the db never uses these
        assert "inalcanzable" in caplog.text
        assert len(SpoolFile(tmp_path / "spool.jsonl").entries()) == 5

        await outage.up()
        await _wait_replayed(log)  # the background task, with no further writes

        request = await log.request(request_id)
        assert request is not None and request.id > 0 and request.status == "ok"
        assert request.source == "c1:1" and request.lease_until is not None
        assert len(request.generation_ids) == 2
        assert not await log.mark_sending(ids[0])  # replayed: its send had begun
        shown = await log.generation(ids[0])
        assert shown is not None and shown.message_ref == "msg-1" and shown.text == "hola mundo"
        assert (shown.request_id, shown.seed, shown.model) == (request.id, 7, "demo")
        assert await _count(log, Rating) == 1
        assert not SpoolFile(tmp_path / "spool.jsonl")
        # A button sent during the outage still works afterwards.
        assert await log.rate("telegram", "u3", ids[0], -1)
        assert await _count(log, Rating) == 2
    finally:
        await log.aclose()


async def test_a_request_begun_while_the_database_was_down_is_renewed_once_replayed(
    outage: Outage, tmp_path: Path
) -> None:
    """Its id was provisional, so nothing could be renewed during the outage; once the spool
    has replayed its ``begin``, the heartbeat renews the real request's lease like any other
    (else another process would take over a request this live one is still answering)."""
    lease_s = 2.0
    log = _log(outage, tmp_path, retry_s=0.1)
    heartbeat = Heartbeat(log, lease_s, every_s=0.1, max_hold_s=600)
    heartbeat.start()
    try:
        begun = await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit", source="c1:5",
                                lease_s=lease_s)
        assert begun.id < 0  # provisional
        await outage.up()
        await _wait_replayed(log)
        assert log.spool is not None
        request_id = log.spool.resolve(begun.id)
        assert request_id > 0

        async def renewed() -> bool:
            request = await log.request(request_id)
            # ``begin`` leased it until ``created_at + lease_s``; only a renewal goes further.
            return request.lease_until > request.created_at + timedelta(seconds=lease_s)

        await until(renewed, "the replayed request's lease to be renewed", timeout=15)
    finally:
        await heartbeat.stop()
        await log.aclose()


async def test_a_process_never_takes_over_its_own_request_begun_during_an_outage(
    outage: Outage, tmp_path: Path
) -> None:
    """A request begun during an outage has a provisional id, and its lease may have run out by
    the time its ``begin`` is replayed: the process still answering it must not take it over
    from itself (it would answer twice), while any other process may."""
    log = _log(outage, tmp_path, retry_s=0.1)
    core = BotCore(Settings(), FixedGenerator(), log, MemoryRateLimiter())
    delivered: list[int] = []

    async def send(request: Any, reply: Any) -> None:
        delivered.append(request.id)

    try:
        begun = await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit", source="c1:6", lease_s=1.0)
        await outage.up()
        await _wait_replayed(log)
        assert log.spool is not None
        request_id = log.spool.resolve(begun.id)
        async with log.sessions() as session, session.begin():
            await session.execute(update(Request).where(Request.id == request_id)
                                  .values(lease_until=utcnow() - timedelta(seconds=5)))
        assert log.holds(request_id)
        assert await Resumer(core, "telegram", 600, send, answerable=lambda r: True).look() == 0
        other = GenerationLog(create_engine(outage.url))
        try:
            assert await other.claim(request_id, 10)  # another process may take it over
        finally:
            await other.aclose()
        assert delivered == []
    finally:
        await log.aclose()


async def test_replay_after_a_crash_applies_each_record_once(outage: Outage, tmp_path: Path) -> None:
    log = _log(outage, tmp_path)
    spool = tmp_path / "spool.jsonl"
    try:
        await _bot_traffic(log)
    finally:
        await log.aclose()
    shutil.copy(spool, tmp_path / "copy.jsonl")
    await outage.up()

    first = _log(outage, tmp_path)  # a restarted bot finds the spool and replays it
    try:
        assert first.spool is not None and first.spool.spooling
        assert await first.spool.replay()
    finally:
        await first.aclose()
    # As if the process died after applying but before emptying the file: replay again.
    shutil.copy(tmp_path / "copy.jsonl", spool)
    again = _log(outage, tmp_path)
    try:
        assert again.spool is not None
        assert await again.spool.replay()
        assert (await _count(again, Request), await _count(again, Generation), await _count(again, Rating)) == (1, 2, 1)
    finally:
        await again.aclose()


async def test_a_message_delivered_twice_during_an_outage_is_one_request(outage: Outage, tmp_path: Path) -> None:
    """While spooling a re-delivered message cannot be recognised; replay folds it into the
    first one, releasing and marking included, and replaying again changes nothing."""
    log = _log(outage, tmp_path)
    spool = tmp_path / "spool.jsonl"
    try:
        first, _ = await _bot_traffic(log)
        again = (await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit derecha", source="c1:1")).id
        assert again != first
        assert await log.release(again)
        await log.finish(again, "ok", generations=[NewGeneration("repetido")])
        shutil.copy(spool, tmp_path / "copy.jsonl")
        await outage.up()
        assert log.spool is not None and await log.spool.replay()
        shutil.copy(tmp_path / "copy.jsonl", spool)  # as if the first replay died before emptying it
        assert await log.spool.replay()
        assert log.spool.resolve(again) == log.spool.resolve(first)
        assert (await _count(log, Request), await _count(log, Generation)) == (1, 2)
        request = await log.request(first)
        assert request is not None and request.status == "ok" and request.lease_until is not None
        assert (await log.generation(request.generation_ids[0])).message_ref == "msg-1"
    finally:
        await log.aclose()


@pytest.mark.expect_errors(r"registro finish rechazado por la base de datos: no request 123456")
async def test_a_refused_record_is_set_aside_not_blocking(outage: Outage, tmp_path: Path) -> None:
    log = _log(outage, tmp_path)
    try:
        await log.finish(123_456, "ok", generations=[NewGeneration("sin solicitud")])  # never begun
        request_id, _ = await _bot_traffic(log)
        await outage.up()
        assert log.spool is not None and await log.spool.replay()
        request = await log.request(request_id)
        assert request is not None and request.status == "ok"
        rejected = SpoolFile(tmp_path / "spool.jsonl.rejected").entries()
        assert [(r["kind"], r["record"]["request_id"]) for r in rejected] == [("finish", 123_456)]
        assert "LookupError" in rejected[0]["error"]
    finally:
        await log.aclose()


async def test_outage_in_the_middle(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL goes away with connections in the pool, then comes back."""
    outage = Outage(postgres_url, tmp_path)
    await outage.up()
    log = _log(outage, tmp_path, retry_s=0.05)
    try:
        before = (await log.begin("discord", "u1", "Ana", "c1", "guild", "sala", "/tuit")).id
        assert before > 0
        await outage.down()
        during, ids = await _bot_traffic(log)
        assert during < 0
        await outage.up()
        await _wait_replayed(log)
        await log.finish(before, "busy")
        assert (await log.request(before)).status == "busy"
        assert (await log.generation(ids[0])).message_ref == "msg-1"
        assert await _count(log, Request) == 2
    finally:
        await log.aclose()
        await outage.down()


class FixedGenerator:
    async def generate(self, req: Any) -> TweetResult:
        return TweetResult(texts=["Un tuit mientras la base duerme"], model="demo", prompt_text="p",
                           params=SamplingParams(), seed=req.seed, latency_ms=1.0, tokens=[6],
                           tries=1, rejected=[])


async def test_the_bot_keeps_answering_while_the_database_is_down(outage: Outage, tmp_path: Path) -> None:
    log = _log(outage, tmp_path)
    core = BotCore(Settings(), FixedGenerator(), log, MemoryRateLimiter())
    origin = Origin("telegram", "100", "100", "Ana")
    try:
        reply = await core.handle(Incoming(origin, "/tuit"))
        assert reply.kind == "tweet" and "Un tuit mientras la base duerme" in reply.text
        up = next(b for b in reply.buttons if b.action == "up")
        assert up.generation_id < 0
        assert (await core.press(origin, up.data)).text == texts.RATED_UP
        await outage.up()
        assert log.spool is not None and await log.spool.replay()
        stored = await log.generation(up.generation_id)
        assert stored is not None and stored.text == "Un tuit mientras la base duerme"
        assert await _count(log, Rating) == 1
    finally:
        await log.aclose()


async def test_two_processes_sharing_one_spool(outage: Outage, tmp_path: Path) -> None:
    """Bot processes started from one config share the spool path: ids never clash, and either
    one's replay serves both."""
    first, second = _log(outage, tmp_path), _log(outage, tmp_path, retry_s=0.05)
    try:
        a_request, a_ids = await _bot_traffic(first)
        b_request = (await second.begin("discord", "u9", "Zoe", "c9", "dm", "", "/tuit izquierda")).id
        [b_generation] = await second.finish(b_request, "ok", generations=[NewGeneration("de Zoe")])
        provisional = {a_request, *a_ids, b_request, b_generation}
        assert len(provisional) == 5 and max(provisional) < 0

        await outage.up()
        # Whichever replays first (the second's background task may win) serves both.
        await _wait_replayed(second)
        assert first.spool is not None and await first.spool.replay()
        assert await second.rate("discord", "u9", b_generation, 1)
        stored = await second.generation(b_generation)
        assert stored is not None and stored.text == "de Zoe" and stored.platform == "discord"
        assert (await _count(first, Request), await _count(first, Rating)) == (2, 2)
    finally:
        await first.aclose()
        await second.aclose()


async def test_writes_during_a_replay_neither_wait_nor_get_lost(outage: Outage, tmp_path: Path) -> None:
    log = _log(outage, tmp_path)
    assert log.spool is not None
    try:
        first, _ = await _bot_traffic(log)
        await outage.up()
        gate, reached = asyncio.Event(), asyncio.Event()
        apply = log.spool._apply

        async def slow_apply(kind: str, record: dict[str, Any], session: Any) -> Any:
            reached.set()
            await gate.wait()
            return await apply(kind, record, session)

        log.spool._apply = slow_apply
        replay = asyncio.create_task(log.spool.replay())
        await asyncio.wait_for(reached.wait(), 10)  # the replay is holding its first record
        late = (await asyncio.wait_for(log.begin("telegram", "u5", "Eva", "c5", "private", "", "/tuit"), 2)).id
        assert late < 0  # spooled behind the replay, answered at once
        gate.set()
        assert await replay
        assert not log.spool.spooling
        assert (await log.request(first)).status == "ok"
        assert (await log.request(late)).raw_command == "/tuit"
        assert await _count(log, Request) == 2
    finally:
        await log.aclose()


async def test_every_kind_of_log_write_waits_in_the_spool_and_is_replayed(outage: Outage, tmp_path: Path) -> None:
    """The contract between the log and its spool: each record kind the log writes (``WRITERS``)
    can be spooled while the database is down and replayed to the same effect; a new kind that
    does not round-trip fails here."""
    log = _log(outage, tmp_path, retry_s=0.1)
    try:
        request_id, ids = await _bot_traffic(log)  # begin, finish, mark_sending, mark_sent, rate
        assert await log.hold(request_id, "c1:9")
        refused = (await log.begin("telegram", "u4", "Dani", "c4", "private", "", "/tuit", source="c4:1", lease_s=60)).id
        await log.finish(refused, "rate_limited", error="Espera.")
        assert await log.answered(refused)
        left = (await log.begin("telegram", "u5", "Eli", "c5", "private", "", "/tuit", source="c5:1", lease_s=60)).id
        assert await log.release(left)
        gone = (await log.begin("telegram", "u6", "Fer", "c6", "private", "", "/tuit", source="c6:1")).id
        assert await log.expire(gone)
        spooled = {entry["kind"] for entry in SpoolFile(tmp_path / "spool.jsonl").entries()}
        assert spooled == set(WRITERS), set(WRITERS) - spooled

        await outage.up()
        await _wait_replayed(log)
        request = await log.request(request_id)
        assert request is not None and request.answer_ref == "c1:9" and request.status == "ok"
        assert (await log.generation(ids[0])).message_ref == "msg-1"
        assert [(r.status, r.error) for r in [await log.request(refused)]] == [("rate_limited", "Espera.")]
        assert await log.unanswered(600) == []  # the tweet (mark_sent) and the refusal (answered)
        assert (await log.request(left)).lease_until is None
        assert (await log.request(gone)).status == "expired"
        assert not SpoolFile(tmp_path / "spool.jsonl") and not SpoolFile(tmp_path / "spool.jsonl.rejected")
    finally:
        await log.aclose()
