"""Heartbeat leases on SQLite and PostgreSQL: a live holder keeps its requests by renewing short
leases, a dead holder's are free once its last lease ends, a holder whose request was taken over
is told so instead of answering it too, a stuck one stops renewing after ``max_hold_s``, and the
heartbeat keeps beating through a database outage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.leases import Heartbeat
from db.log import GenerationLog, LeaseLost, NewGeneration
from db.migrate import upgrade
from tests.support.outage import Outage
from tests.support.waiting import eventually, until

LEASE_S = 2.0  # long enough that a busy machine never stalls the heartbeat past it


@pytest.fixture
async def logs(database_url: str) -> AsyncIterator[list[GenerationLog]]:
    """Three processes' logs on one database: a live one, one that dies, and a restarted one."""
    await upgrade(database_url)
    opened = [await GenerationLog.open(database_url) for _ in range(3)]
    yield opened
    for log in opened:
        await log.aclose()


async def begin(log: GenerationLog, source: str) -> int:
    return (await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit", {},
                            source=source, lease_s=LEASE_S)).id


async def test_a_dead_holders_request_is_taken_over_and_a_live_ones_is_not(logs: list[GenerationLog]) -> None:
    live, dead, restarted = logs
    heartbeat = Heartbeat(live, LEASE_S, LEASE_S / 8, max_hold_s=600)
    heartbeat.start()
    try:
        slow = await begin(live, "c1:1")  # a generation slower than the lease, in a live process
        orphan = await begin(dead, "c1:2")  # its process was killed: nobody renews it
        assert not await restarted.claim(orphan, LEASE_S) and not await restarted.claim(slow, LEASE_S)

        assert await eventually(lambda: restarted.claim(orphan, LEASE_S), bool)
        # The orphan's lease ran out, so the slow one's first lease has too: only renewals keep it.
        assert not await restarted.claim(slow, LEASE_S)
        assert (await restarted.request(slow)).lease_until > (await restarted.request(orphan)).created_at

        with pytest.raises(LeaseLost):  # the "dead" one was only stalled: it must not answer too
            await dead.finish(orphan, "ok", generations=[NewGeneration("segunda respuesta")])
        await restarted.finish(orphan, "ok", generations=[NewGeneration("la respuesta")])
        answered = await restarted.request(orphan)
        assert answered.status == "ok" and len(answered.generation_ids) == 1

        [tweet] = await live.finish(slow, "ok", generations=[NewGeneration("lenta pero viva")])
        assert await live.renew(LEASE_S, 600) == 1  # written, not yet delivered: still its own
        assert not await restarted.claim(slow, LEASE_S, finished=True)
        assert await live.mark_sent(tweet, "c1:9", slow)
        assert await live.renew(LEASE_S, 600) == 0  # delivered: nothing left to renew
    finally:
        await heartbeat.stop()


async def test_a_stuck_request_stops_being_renewed(logs: list[GenerationLog]) -> None:
    live, _, restarted = logs
    stuck = await begin(live, "c1:3")
    assert await live.renew(LEASE_S, max_hold_s=600) == 1
    assert await live.renew(LEASE_S, max_hold_s=0) == 0  # held longer than answering can take
    assert await eventually(lambda: restarted.claim(stuck, LEASE_S), bool)
    assert await live.renew(LEASE_S, max_hold_s=600) == 0  # not the live log's any more
    await restarted.release(stuck)
    assert (await restarted.request(stuck)).lease_until is None


async def test_the_heartbeat_outlives_a_database_outage(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A beat that cannot reach the database is logged and the next one tries again: once the
    database is back, the leases are renewed as before (PostgreSQL through a proxy that cuts
    the connection; ``watcher`` reads the database directly)."""
    outage = Outage(postgres_url, tmp_path)
    await outage.up()
    log, watcher = await GenerationLog.open(outage.url), await GenerationLog.open(postgres_url)
    heartbeat = Heartbeat(log, LEASE_S, every_s=0.1, max_hold_s=600)
    try:
        held = await begin(log, "c1:9")
        heartbeat.start()
        await outage.down()
        with caplog.at_level(logging.WARNING, logger="db.leases"):
            await until(lambda: "could not renew the request leases" in caplog.text,
                        "a beat to fail while the database is down")
        cut_off = (await watcher.request(held)).lease_until
        await outage.up()

        async def renewed() -> bool:
            return (await watcher.request(held)).lease_until > cut_off

        await until(renewed, "a renewal once the database is back", timeout=15)
    finally:
        await heartbeat.stop()
        await outage.down()
        await log.aclose()
        await watcher.aclose()
