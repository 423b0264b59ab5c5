"""Stats and filter counts against a log counted by hand, on SQLite and PostgreSQL.

The log (times in UTC; the desk's zone is America/Santiago, UTC−3 in November):

    request  status        model  sentiment  day (Santiago)  candidates  shown tweet     votes on it
    r1       ok            demo   positivo   11-01           3           pending         +1 +1 −1
    r2       ok            demo   negativo   11-01 (late)    2           approved        −1
    r3       ok            otro   neutral    11-02           1           rejected
    r4       busy          demo   positivo   11-02           0
    r5       invalid       demo   —          11-02           0
    r6       banned        otro   negativo   11-03           0
    r7       ok            demo   positivo   11-03           2           pending (its other candidate approved)

r2 is logged at 01:30 UTC on 11-02, which is 22:30 on 11-01 in Santiago. Requests: 7; answered 4;
shown tweets 4 (pending 2, approved 1, rejected 1); candidates 3 + 2 + 1 + 2 = 8; 👍 2, 👎 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from db.models import Generation
from db.review import Filters, ReviewStore
from db.review_query import REQUEST_STATUSES
from tests.review.factory import LogFactory

SANTIAGO = ZoneInfo("America/Santiago")


@dataclass
class Log:
    requests: dict[str, int]
    shown: dict[str, int]
    hidden_approved: int


async def write(factory: LogFactory, store: ReviewStore) -> Log:
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=UTC)

    r1, (s1, _, _) = await factory.tweet("La educación pública primero", sentiment="positivo", candidates=3,
                                         created_at=at(1, 13), user="1", user_name="Ana", chat="Vecinos Ñuñoa")
    r2, (s2, _) = await factory.tweet("Pensiones dignas ya", sentiment="negativo", candidates=2,
                                      created_at=at(2, 1, 30), user="2", user_name="Beto")
    r3, (s3,) = await factory.tweet("Salud para todos", sentiment="neutral", model="otro", created_at=at(2, 15),
                                    user="3", user_name="Carla", platform="discord")
    zoe = {"user": "9", "user_name": "Zoe"}
    r4, _ = await factory.tweet(None, status="busy", sentiment="positivo", created_at=at(2, 16), **zoe)
    r5, _ = await factory.tweet(None, status="invalid", sentiment="", created_at=at(2, 17), **zoe)
    r6, _ = await factory.tweet(None, status="banned", sentiment="negativo", model="otro", created_at=at(3, 12), **zoe)
    r7, (s7, h7) = await factory.tweet("Vivienda digna", sentiment="positivo", candidates=2, created_at=at(3, 13),
                                       user="1", user_name="Ana")
    for voter, value in (("201", 1), ("202", 1), ("203", -1)):
        await factory.rate(s1, value, user=voter)
    await factory.rate(s2, -1, user="201")
    await store.decide([s2], "approved", "camila")
    await store.decide([s3], "rejected", "camila", reason="offensive")
    await store.decide([h7], "approved", "camila")  # a candidate nobody saw: not in the queue's counts
    return Log({"r1": r1, "r2": r2, "r3": r3, "r4": r4, "r5": r5, "r6": r6, "r7": r7},
               {"r1": s1, "r2": s2, "r3": s3, "r7": s7}, h7)


@pytest.fixture
async def log(store: ReviewStore, factory: LogFactory) -> Log:
    store.zone = SANTIAGO
    return await write(factory, store)


async def ids(store: ReviewStore, filters: Filters, **listing: object) -> list[int]:
    page = await store.search(filters, **listing)  # type: ignore[arg-type]
    return [group.first.request_id for group in page.groups]


async def test_the_review_filter_counts_what_the_counters_count(store: ReviewStore, log: Log) -> None:
    counts = await store.counts()
    assert counts == {"pending": 2, "approved": 1, "rejected": 1, "flagged": 0}
    for state, n in counts.items():
        page = await store.search(Filters(review=state))
        assert page.total == n, state
        assert await store.count_matching_shown(Filters(review=state)) == n
    # r7's approved candidate was never shown: r7 is pending, not approved.
    assert await ids(store, Filters(review="approved")) == [log.requests["r2"]]
    assert sorted(await store.matching_shown(Filters(review="pending"))) == sorted([log.shown["r1"], log.shown["r7"]])


async def test_every_status_the_bot_writes_is_filterable(store: ReviewStore, log: Log) -> None:
    expected = {"ok": 4, "busy": 1, "invalid": 1, "banned": 1}
    for status in REQUEST_STATUSES:
        assert (await store.search(Filters(status=status))).total == expected.get(status, 0), status
    assert {"invalid", "banned", "rate_limited", "blocked", "expired"} <= set(REQUEST_STATUSES)


async def test_a_request_is_one_row_whatever_its_candidates(store: ReviewStore, log: Log) -> None:
    everything = await store.search(Filters())
    assert everything.total == 7 and len(everything.groups) == 7
    r1 = next(g for g in everything.groups if g.first.request_id == log.requests["r1"])
    assert r1.first.generation_id == log.shown["r1"] and len(r1.others) == 2
    assert (await store.search(Filters(model="demo"))).total == 5
    assert (await store.search(Filters(sentiment="positivo", status="ok"))).total == 2


async def test_days_are_whole_days_in_the_desks_zone(store: ReviewStore, log: Log) -> None:
    first = await ids(store, Filters(since=date(2026, 11, 1), until=date(2026, 11, 1)))
    assert sorted(first) == sorted([log.requests["r1"], log.requests["r2"]])  # r2: 22:30 on 11-01 there
    assert (await store.search(Filters(since=date(2026, 11, 2)))).total == 5
    assert (await store.search(Filters(until=date(9999, 12, 31)))).total == 7  # the calendar's edge
    assert (await store.search(Filters(since=date(1, 1, 1)))).total == 7


async def test_search_ignores_accents_and_case(store: ReviewStore, log: Log) -> None:
    for needle in ("educacion", "EDUCACIÓN", "educación", "Educacion Publica"):
        assert await ids(store, Filters(text=needle)) == [log.requests["r1"]], needle


async def test_search_finds_users_and_chats(store: ReviewStore, log: Log) -> None:
    assert await ids(store, Filters(text="BETO")) == [log.requests["r2"]]
    assert sorted(await ids(store, Filters(text="ana"))) == sorted([log.requests["r1"], log.requests["r7"]])
    assert await ids(store, Filters(text="nunoa")) == [log.requests["r1"]]  # the chat "Vecinos Ñuñoa"
    assert await ids(store, Filters(text="100%")) == []  # LIKE's wildcards are text here
    assert await ids(store, Filters(text="digna")) == [log.requests["r7"], log.requests["r2"]]  # newest first


async def test_columns_sort_and_pages_have_a_chosen_size(store: ReviewStore, log: Log) -> None:
    scores = {"r1": 0.5, "r2": 2.0, "r3": None, "r7": 1.0}
    async with store.engine.begin() as connection:
        for name, score in scores.items():
            await connection.execute(update(Generation).where(Generation.id == log.shown[name]).values(score=score))
    r = log.requests
    assert await ids(store, Filters(status="ok"), sort="-score") == [r["r2"], r["r7"], r["r1"], r["r3"]]
    assert await ids(store, Filters(status="ok"), sort="score") == [r["r1"], r["r7"], r["r2"], r["r3"]]
    # Net votes: r1 +1, r2 −1, others 0 (ties newest first).
    assert await ids(store, Filters(status="ok"), sort="-votes") == [r["r1"], r["r7"], r["r3"], r["r2"]]
    assert await ids(store, Filters(), sort="date") == [r[f"r{i}"] for i in range(1, 8)]
    first = await store.search(Filters(), page=1, per_page=3)
    last = await store.search(Filters(), page=99_999_999_999, per_page=3)  # past the end: the last page
    assert (first.pages, last.page, len(last.groups)) == (3, 3, 1)


async def test_stats_count_requests_and_tweets_where_they_say_so(store: ReviewStore, log: Log) -> None:
    stats = await store.stats(Filters())
    assert stats.requests == 7
    assert stats.per_day == [("2026-11-01", 2), ("2026-11-02", 3), ("2026-11-03", 2)]
    assert dict(stats.per_status) == {"ok": 4, "busy": 1, "invalid": 1, "banned": 1}
    assert dict(stats.per_sentiment) == {"positivo": 3, "negativo": 2, "neutral": 1, "": 1}
    assert dict(stats.per_review) == {"pending": 2, "approved": 1, "rejected": 1}
    demo = next(m for m in stats.per_model if m.model == "demo")
    other = next(m for m in stats.per_model if m.model == "otro")
    assert (demo.requests, demo.answered, demo.shown, demo.candidates) == (5, 3, 3, 7)
    assert (demo.reviewed, demo.approved, demo.up, demo.down) == (1, 1, 2, 2)
    assert (other.requests, other.answered, other.shown, other.candidates, other.reviewed, other.approved) == (
        2, 1, 1, 1, 1, 0)
    total = stats.total
    assert (total.requests, total.answered, total.shown, total.candidates) == (7, 4, 4, 8)
    assert (total.reviewed, total.approved, total.approval_rate, total.up_rate) == (2, 1, 0.5, 0.5)


async def test_stats_follow_the_same_filters_as_the_list(store: ReviewStore, log: Log) -> None:
    pending = await store.stats(Filters(review="pending"))
    assert pending.requests == 2 and pending.total.shown == 2 and pending.total.candidates == 5
    assert dict(pending.per_review) == {"pending": 2}
    searched = await store.stats(Filters(text="educacion"))
    assert (searched.requests, searched.total.up, searched.total.down) == (1, 2, 1)
