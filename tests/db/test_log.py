"""The generation log on SQLite and PostgreSQL: writes are committed, reads see them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from db.log import Begun, GenerationLog, LoggedGeneration, NewGeneration
from db.migrate import upgrade
from db.models import Chat, Generation, Rating, Request, User


@pytest.fixture
async def log(database_url: str) -> AsyncIterator[GenerationLog]:
    await upgrade(database_url)
    opened = await GenerationLog.open(database_url)
    yield opened
    await opened.aclose()


async def begin(log: GenerationLog, user: str = "u1", chat: str = "c1", command: str = "/tuit") -> int:
    return (await log.begin("console", user, "Ana", chat, "private", "", command, {"message_id": "9"})).id


async def begin_from(log: GenerationLog, source: str | None, *, platform: str = "telegram",
                     lease_s: float | None = None) -> Begun:
    """A command that came in message ``source``."""
    return await log.begin(platform, "u1", "Ana", "c1", "private", "", "/tuit", {}, source=source, lease_s=lease_s)


async def test_begin_is_pending_and_visible_to_another_connection(log: GenerationLog, database_url: str) -> None:
    request_id = await begin(log)
    other = await GenerationLog.open(database_url)
    try:
        pending = await other.pending()
    finally:
        await other.aclose()
    assert [p.id for p in pending] == [request_id]
    assert pending[0].status == "pending"
    assert pending[0].reply_to == {"message_id": "9"}
    assert (pending[0].user_external_id, pending[0].user_name, pending[0].chat_external_id) == ("u1", "Ana", "c1")


async def test_finish_stores_controls_and_generations(log: GenerationLog) -> None:
    request_id = await begin(log, command="/tuit derecha")
    ids = await log.finish(
        request_id, "ok", controls={"side": "derecha", "entities": ["pensiones"]}, side="derecha",
        coalition="Chile Vamos", party="UDI", sentiment="POSITIVE", model="demo", prompt=" [TWEET] ",
        params={"top_p": 0.9}, seed=2**40, latency_ms=12.5,
        generations=[NewGeneration("uno", tokens=3, seed=2**40), NewGeneration("dos", shown=False)],
    )
    assert len(ids) == 2
    shown = await log.generation(ids[0])
    assert shown is not None
    assert (shown.text, shown.request_id, shown.seed, shown.model, shown.party) == ("uno", request_id, 2**40, "demo", "UDI")
    assert shown.controls["entities"] == ["pensiones"]
    assert shown.created_at.tzinfo is not None
    request = await log.request(request_id)
    assert request is not None and request.status == "ok" and request.generation_ids == tuple(ids)
    assert await log.pending() == []
    async with log.sessions() as session:  # what reproduces the tweet (model + prompt + params + seed)
        stored = (await session.execute(select(Request.prompt, Request.params).where(Request.id == request_id))).one()
    assert tuple(stored) == (" [TWEET] ", {"top_p": 0.9})


async def test_last_request_is_per_user_and_chat_and_only_answered(log: GenerationLog) -> None:
    first = await begin(log)
    await log.finish(first, "ok")
    failed = await begin(log)
    await log.finish(failed, "busy")
    await log.finish(await begin(log, user="u2"), "ok")
    await log.finish(await begin(log, chat="c2"), "ok")
    await begin(log)  # still pending
    last = await log.last_request("console", "u1", "c1")
    assert last is not None and last.id == first
    assert await log.last_request("console", "nobody", "c1") is None


async def test_mark_sent_and_unknown_generation(log: GenerationLog) -> None:
    request_id = await begin(log)
    [gid] = await log.finish(request_id, "ok", generations=[NewGeneration("hola")])
    assert await log.mark_sent(gid, "msg-77")
    generation = await log.generation(gid)
    assert generation is not None and generation.message_ref == "msg-77"
    assert not await log.mark_sent(gid + 100, "x")
    assert await log.generation(gid + 100) is None


async def test_rating_is_one_per_user_and_can_change(log: GenerationLog) -> None:
    [gid] = await log.finish(await begin(log), "ok", generations=[NewGeneration("hola")])
    assert await log.rate("console", "rater", gid, 1)
    assert await log.rate("console", "rater", gid, -1)
    assert await log.rate("console", "other", gid, 5)
    assert not await log.rate("console", "rater", gid + 1, 1)
    async with log.sessions() as session:
        values = sorted((await session.scalars(select(Rating.value))).all())
    assert values == [-1, 1]


async def test_expire_older_than_and_pending_age(log: GenerationLog) -> None:
    old = await begin(log)
    assert [r.id for r in await log.pending(max_age_s=3600)] == [old]
    assert await log.expire_older_than(3600) == 0
    assert await log.expire_older_than(-1) == 1
    request = await log.request(old)
    assert request is not None and request.status == "expired"
    fresh = await begin(log)
    assert await log.expire(fresh)
    assert not await log.expire(fresh)  # only pending requests expire


async def test_banned_users(log: GenerationLog) -> None:
    await begin(log, user="bad")
    assert not await log.is_banned("console", "bad")
    async with log.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.external_id == "bad"))
        assert user is not None
        user.banned = True
    assert await log.is_banned("console", "bad")
    assert not await log.is_banned("console", "unknown")
    await log.begin("telegram", "bad", "Otra persona", "c1", "private", "", "/tuit", {})
    assert not await log.is_banned("telegram", "bad")  # the same id on another platform is someone else
    async with log.sessions() as session:  # ...with a row of its own, and so is its chat
        for model, external_id in ((User, "bad"), (Chat, "c1")):
            count = select(func.count()).select_from(model).where(model.external_id == external_id)
            assert await session.scalar(count) == 2


async def test_concurrent_writes_from_new_users_all_land(log: GenerationLog) -> None:
    """Many first-time users and chats at once: upserts race, nothing is lost or duplicated."""

    async def one(i: int) -> list[int]:
        request_id = await begin(log, user=f"user{i % 5}", chat=f"chat{i % 3}")
        return await log.finish(request_id, "ok", generations=[NewGeneration(f"t{i}")])

    results = await asyncio.gather(*(one(i) for i in range(30)))
    assert len({gid for ids in results for gid in ids}) == 30
    async with log.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Request)) == 30
        assert await session.scalar(select(func.count()).select_from(User)) == 5


async def test_text_the_database_would_refuse_is_stored_safely(log: GenerationLog) -> None:
    request_id = (await log.begin("telegram", "u", "Ana\x00" + "n" * 300, "c", "group", "t\x00", "/tuit \x00", {})).id
    await log.finish(request_id, "invalid", error="bad \x00", generations=[NewGeneration("x\x00")])
    request = await log.request(request_id)
    assert request is not None and "\x00" not in request.raw_command and len(request.user_name) == 256


async def test_a_message_logged_again_is_the_same_request_marked_duplicate(log: GenerationLog, database_url: str) -> None:
    first = await begin_from(log, "c1:10")
    assert not first.duplicate
    assert await begin_from(log, "c1:10") == Begun(first.id, duplicate=True)
    await log.finish(first.id, "ok")
    assert await begin_from(log, "c1:10") == Begun(first.id, duplicate=True)  # answered: still
    assert not (await begin_from(log, "c1:10", platform="discord")).duplicate  # unique per platform
    unnamed = [await begin_from(log, None) for _ in range(2)]
    assert not any(b.duplicate for b in unnamed) and unnamed[0].id != unnamed[1].id
    assert (await log.request(first.id)).source == "c1:10"

    # Two processes handed the same message at once (a webhook Telegram sent again): one request.
    other = await GenerationLog.open(database_url)
    try:
        racing = await asyncio.gather(*(begin_from(each, "c1:11") for each in [log, other] * 5))
    finally:
        await other.aclose()
    assert len({b.id for b in racing}) == 1 and [b.duplicate for b in racing].count(False) == 1


async def test_exactly_one_process_claims_a_request(log: GenerationLog, database_url: str) -> None:
    """Two processes (two logs on one database) resume at once: one claim wins; a live lease
    stops every claim until it ends or is released."""
    other = await GenerationLog.open(database_url)
    try:
        crashed = (await begin_from(log, "c1:20")).id  # no lease: its process is gone
        claims = await asyncio.gather(*(each.claim(crashed, 60) for each in [log, other] * 10))
        assert claims.count(True) == 1
        assert not await other.claim(crashed, 60)  # the winner holds it now

        live = await begin_from(log, "c1:21", lease_s=60)
        [request] = [r for r in await other.pending() if r.id == live.id]
        assert request.lease_until is not None and request.lease_until > request.created_at
        assert not await other.claim(live.id, 60)
        assert await log.release(live.id)  # shutting down: the next process may take it at once
        assert await other.claim(live.id, 60)

        ended = (await begin_from(log, "c1:22", lease_s=-1)).id  # its lease ran out
        assert [await other.claim(ended, 60), await log.claim(ended, 60)] == [True, False]

        await other.finish(ended, "ok")  # by its holder (the other process took it over)
        assert not await other.claim(ended, 60)  # not pending any more
        assert not await log.claim(ended, 60, finished=True)  # its holder still delivers it
        assert await other.release(ended)  # the delivery failed for now: let any process do it
        assert await log.claim(ended, 60, finished=True)
        assert await log.answered(ended)
        assert not await log.release(ended)  # answered: nothing left to take over
        async with other.sessions() as session, session.begin():
            await session.execute(update(Request).where(Request.id == ended).values(lease_until=None))
        assert not await other.claim(ended, 60, finished=True)
    finally:
        await other.aclose()


async def test_unanswered_requests_and_the_sending_mark(log: GenerationLog) -> None:
    """What a live process finds to deliver: finished requests whose answer never reached the
    platform and nobody holds, except a tweet whose send as a new message began (it may have
    arrived); one with a placeholder is listed whatever, since editing it again is safe."""
    async def answered(text: str, platform: str = "telegram", placeholder: str = "") -> list[int]:
        request_id = (await begin_from(log, None, platform=platform)).id
        if placeholder:
            assert await log.hold(request_id, placeholder)
            assert not await log.hold(request_id, "otro")  # the first one stays
        return await log.finish(request_id, "ok", generations=[NewGeneration(text), NewGeneration("otro", shown=False)])

    never = await answered("nunca enviado")
    began = await answered("quizá enviado")
    assert await log.mark_sending(began[0])
    edited = await answered("editado quizá", placeholder="77:5")
    assert await log.mark_sending(edited[0])
    sent = await answered("enviado")
    assert await log.mark_sending(sent[0]) and await log.mark_sent(sent[0], "77:1")
    await answered("en discord", "discord")
    refused = (await begin_from(log, None)).id
    await log.finish(refused, "rate_limited", error="Espera 10 s.")
    await begin_from(log, None)  # pending, no tweet yet

    unanswered = await log.unanswered(3600, platform="telegram")
    assert [(r.generation_ids, r.answer_ref) for r in unanswered] == [((never[0],), ""), ((edited[0],), "77:5"),
                                                                      ((), "")]
    assert unanswered[0].status == "ok" and unanswered[2].error == "Espera 10 s."
    assert len(await log.unanswered(3600)) == 4  # with Discord's
    assert await log.unanswered(-1) == []  # too old
    assert await log.mark_sending(never[0])
    assert not await log.mark_sending(never[0])  # a second sender is told not to send it
    assert await log.answered(refused)
    assert [r.generation_ids for r in await log.unanswered(3600, platform="telegram")] == [(edited[0],)]
    assert (await log.request((await log.generation(sent[0])).request_id)).answer_ref == ""


WRITER = """
import asyncio, sys
from db.log import Begun, GenerationLog, NewGeneration

async def main(url, name, count, hang):
    log = await GenerationLog.open(url)
    for i in range(count):
        request_id = (await log.begin("console", name, name, "chat", "private", "", f"/tuit {i}", {})).id
        if hang:
            print(request_id, flush=True)
            await asyncio.sleep(120)  # killed here, between begin and finish
        await log.finish(request_id, "ok", generations=[NewGeneration(f"{name} {i}")])
    await log.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "hang"))
"""


def _writer(url: str, name: str, count: int, hang: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(count), "hang" if hang else "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


async def test_sqlite_processes_write_concurrently_and_survive_a_kill(sqlite_url: str) -> None:
    """Two processes writing one SQLite file queue on the lock (no "database is locked"), and a
    process killed between begin and finish leaves its request pending, the file intact."""
    await upgrade(sqlite_url)
    writers = [_writer(sqlite_url, f"p{i}", 25) for i in range(2)]
    victim = _writer(sqlite_url, "victim", 1, hang=True)
    line = await asyncio.to_thread(victim.stdout.readline)  # type: ignore[union-attr]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    log = await GenerationLog.open(sqlite_url)
    try:
        pending = await log.pending()
        async with log.sessions() as session:
            ok = await session.scalar(select(func.count()).select_from(Request).where(Request.status == "ok"))
            check = (await session.execute(text("PRAGMA integrity_check"))).scalar()
    finally:
        await log.aclose()
    assert [p.id for p in pending] == [int(line)] and pending[0].user_external_id == "victim"
    assert ok == 50 and check == "ok"


async def test_a_users_ratings_of_two_tweets_are_both_kept(log: GenerationLog) -> None:
    """A 👍 on one tweet and a 👎 on another by the same user are two ratings (the review desk
    and the training data read them per tweet); one replaces only the user's own on that tweet."""
    [first] = await log.finish(await begin(log), "ok", generations=[NewGeneration("uno")])
    [second] = await log.finish(await begin(log), "ok", generations=[NewGeneration("dos")])
    assert await log.rate("console", "rater", first, 1, "Rita")
    assert await log.rate("console", "rater", second, -1, "Rita")
    assert await log.rate("console", "rater", second, -1, "Rita")
    async with log.sessions() as session:
        ratings = sorted((r.generation_id, r.value) for r in (await session.scalars(select(Rating))).all())
        name = await session.scalar(select(User.display_name).where(User.external_id == "rater"))
    assert ratings == [(first, 1), (second, -1)] and name == "Rita"


async def test_otra_repeats_the_latest_request_on_the_same_platform(log: GenerationLog) -> None:
    """``/otra`` repeats the user's latest answered request in that chat, not an older one, and
    never one from another platform whose ids happen to match."""
    older, newer = await begin(log, command="/tuit uno"), await begin(log, command="/tuit dos")
    await log.finish(older, "ok")
    await log.finish(newer, "ok")
    elsewhere = await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit tres", {})
    await log.finish(elsewhere.id, "ok")
    last = await log.last_request("console", "u1", "c1")
    assert last is not None and last.id == newer
    assert (await log.last_request("telegram", "u1", "c1")).id == elsewhere.id  # type: ignore[union-attr]


async def test_a_reply_finds_the_tweet_its_message_shows_and_no_other(log: GenerationLog) -> None:
    """A reply to the bot's message follows up the tweet shown there: found by where it was
    delivered or by the placeholder it went into, only on that platform, and never a candidate
    that was not shown or another request's tweet."""
    placed, delivered = await begin(log), await begin(log)
    await log.hold(placed, "c1:10")
    [shown, _] = await log.finish(placed, "ok", generations=[NewGeneration("uno"), NewGeneration("dos", shown=False)])
    [other] = await log.finish(delivered, "ok", generations=[NewGeneration("tres")])
    assert await log.mark_sent(other, "c1:11")
    assert (await log.generation_by_message("console", "c1:10")).id == shown  # type: ignore[union-attr]
    assert (await log.generation_by_message("console", "c1:11")).id == other  # type: ignore[union-attr]
    assert await log.generation_by_message("console", "c1:12") is None
    assert await log.generation_by_message("telegram", "c1:10") is None
    assert await log.generation_by_message("console", "") is None


async def test_a_stored_tweet_reads_back_whole(log: GenerationLog) -> None:
    """What the review desk, ``/otra`` and a peer's redelivery read of a tweet is what was stored:
    every field, its author and chat, and its request's controls and timing."""
    request_id = (await log.begin("telegram", "u7", "Ana", "c7", "group", "Sala", "/tuit", {})).id
    [gid] = await log.finish(
        request_id, "ok", controls={"side": "derecha"}, side="derecha", coalition="Chile Vamos",
        party="UDI", sentiment="POSITIVE", model="demo", latency_ms=40.0,
        generations=[NewGeneration("uno", tokens=6, latency_ms=30.0, seed=9)],
    )
    assert await log.mark_sent(gid, "c7:1")
    tweet = await log.generation(gid)
    assert tweet is not None
    assert tweet == LoggedGeneration(
        id=gid, request_id=request_id, text="uno", seed=9, tokens=6, latency_ms=30.0, shown=True,
        review_status="pending", message_ref="c7:1", created_at=tweet.created_at,
        platform="telegram", user_external_id="u7", chat_external_id="c7", model="demo",
        controls={"side": "derecha"}, side="derecha", coalition="Chile Vamos", party="UDI",
        sentiment="POSITIVE", request_latency_ms=40.0,
    )


async def test_expiring_one_request_leaves_the_others_pending(log: GenerationLog) -> None:
    """A takeover gives up on a request it can no longer answer (an inline query long gone):
    that one only, never every pending request."""
    gone, waiting = await begin(log), await begin(log)
    assert await log.expire(gone)
    assert [r.id for r in await log.pending()] == [waiting]
    assert not await log.expire(gone)  # expired already


async def test_an_unanswered_request_says_whose_it_is_and_where(log: GenerationLog) -> None:
    """A peer delivers a stored answer to the chat and user the log names (a new message goes
    to ``chat_external_id``), oldest first."""
    ids = []
    for chat in ("c8", "c9"):
        request_id = (await log.begin("telegram", "u8", "Ana", chat, "group", "Sala", "/tuit", {})).id
        await log.finish(request_id, "busy", error="EngineBusy: full")
        ids.append(request_id)
    found = await log.unanswered(600)
    assert [(r.id, r.user_external_id, r.user_name, r.chat_external_id, r.chat_kind) for r in found] == [
        (ids[0], "u8", "Ana", "c8", "group"), (ids[1], "u8", "Ana", "c9", "group"),
    ]


async def test_a_finished_request_keeps_when_it_ended_and_each_candidates_place(log: GenerationLog) -> None:
    """The desk dates and orders by these: the request's end and its tweets' time are the
    moment the outcome was recorded (one moment, also when replayed from the spool later), and
    each candidate keeps its place in the ranking."""
    request_id = await begin(log)
    ids = await log.finish(request_id, "ok", generations=[NewGeneration("uno"), NewGeneration("dos", shown=False),
                                                          NewGeneration("tres", shown=False)])
    async with log.sessions() as session:
        finished_at = await session.scalar(select(Request.finished_at).where(Request.id == request_id))
        rows = (await session.execute(
            select(Generation.id, Generation.candidate, Generation.created_at).order_by(Generation.id)
        )).all()
    assert finished_at is not None
    assert [(row.id, row.candidate) for row in rows] == list(zip(ids, range(3), strict=True))
    assert {row.created_at for row in rows} == {finished_at}


async def test_a_claimed_request_is_renewed_until_held_too_long(log: GenerationLog) -> None:
    """A takeover's lease is kept alive by the heartbeat like one begun here, and counts its
    hold from the claim, so a stuck takeover stops being renewed too."""
    crashed = (await begin_from(log, "c1:30")).id  # no lease: its process is gone
    assert await log.claim(crashed, 60)
    assert await log.renew(60, max_hold_s=600) == 1
    assert await log.renew(60, max_hold_s=0) == 0
