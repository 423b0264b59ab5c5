"""The review queries and actions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from db.review import Filters, ReviewStore
from tests.review.factory import LogFactory


async def test_queue_serves_oldest_pending_shown_tweet(store: ReviewStore, factory: LogFactory) -> None:
    assert await store.next_pending() is None
    first, (g1, hidden) = await factory.tweet("primero", candidates=2)
    await factory.tweet(None, status="error")
    _, (g2,) = await factory.tweet("segundo")
    await factory.rate(g1, 1)
    await factory.rate(g1, -1, user="201")
    await factory.rate(g1, 1, user="202")

    pending = await store.next_pending()
    assert pending is not None and pending.request_id == first
    shown = pending.generation(g1)
    assert shown is not None and (shown.up, shown.down) == (2, 1)
    assert pending.generation(hidden) is not None and not pending.generation(hidden).shown
    assert pending.controls["topic"] == "pensiones" and pending.seed == 1234
    assert pending.user_ref == "telegram:100"

    assert await store.counts() == {"pending": 2, "approved": 0, "rejected": 0, "flagged": 0}
    assert (await store.decide([g1], "approved", "telegram:1", "bien")).ids == [g1]
    after = await store.next_pending()
    assert after is not None and after.generation(g2) is not None
    assert (await store.next_pending(skip=[g2])) is None
    assert (await store.counts())["approved"] == 1


async def test_decisions_keep_history_and_audit(store: ReviewStore, factory: LogFactory) -> None:
    request_id, (g1,) = await factory.tweet()
    _, (g2,) = await factory.tweet()
    assert (await store.decide([g1, g2, 999_999], "rejected", "web", "nota")).ids == [g1, g2]
    assert (await store.decide([g1], "flagged", "web")).ids == [g1]
    detail = await store.detail(request_id)
    assert detail is not None
    g = detail.generation(g1)
    assert g is not None and g.review_status == "flagged"
    assert [r.decision for r in g.reviews] == ["rejected", "flagged"]
    assert g.reviews[0].note == "nota"
    trail = await store.audit_trail()
    # One entry per decision, however many tweets it covered, with each tweet's state before.
    assert [(e.target, e.detail["ids"], e.detail["before"]) for e in reversed(trail) if e.action == "review"] == [
        ("generations:2", [g1, g2], {str(g1): "pending", str(g2): "pending"}),
        (f"generation:{g1}", [g1], {str(g1): "rejected"}),
    ]
    assert [r.audit_id for r in g.reviews] == [e.id for e in reversed(trail)]
    assert not await store.decide([], "approved", "web")


async def test_unknown_decision_is_refused(store: ReviewStore, factory: LogFactory) -> None:
    _, (g1,) = await factory.tweet()
    try:
        await store.decide([g1], "deleted", "web")
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown decision was accepted")


async def test_filters_and_pagination(store: ReviewStore, factory: LogFactory) -> None:
    await factory.tweet("Las pensiones suben", sentiment="positivo", party="RN")
    await factory.tweet("100% de acuerdo", sentiment="negativo", side="izquierda", party="PC",
                        coalition="Nueva Mayoría", platform="discord", user="9")
    await factory.tweet(None, status="busy")
    _, (old,) = await factory.tweet("viejo", created_at=datetime(2026, 10, 1, 23, 59, tzinfo=UTC))
    await store.decide([old], "approved", "web")

    everything = await store.search(Filters())
    assert everything.total == 4
    assert everything.rows[-1].text == "viejo"  # newest first

    def texts(page):
        return [row.text for row in page.rows]

    assert texts(await store.search(Filters(sentiment="negativo"))) == ["100% de acuerdo"]
    assert texts(await store.search(Filters(platform="discord", side="izquierda"))) == ["100% de acuerdo"]
    assert texts(await store.search(Filters(coalition="Nueva Mayoría", party="PC"))) == ["100% de acuerdo"]
    assert texts(await store.search(Filters(text="PENSIONES"))) == ["Las pensiones suben"]
    assert texts(await store.search(Filters(text="100%"))) == ["100% de acuerdo"]
    assert texts(await store.search(Filters(text="0_"))) == []
    busy = await store.search(Filters(status="busy"))
    assert busy.total == 1 and busy.rows[0].text is None and busy.rows[0].generation_id is None
    assert texts(await store.search(Filters(review="approved"))) == ["viejo"]
    assert texts(await store.search(Filters(until=date(2026, 10, 1)))) == ["viejo"]
    assert (await store.search(Filters(since=date(2026, 10, 2)))).total == 3
    assert (await store.search(Filters(model="otro"))).total == 0

    first = await store.search(Filters(), page=1, per_page=3)
    second = await store.search(Filters(), page=2, per_page=3)
    assert first.pages == 2 and len(first.rows) == 3 and len(second.rows) == 1
    assert {r.request_id for r in first.rows}.isdisjoint({r.request_id for r in second.rows})


def test_filters_round_trip_through_a_query_string() -> None:
    filters = Filters.from_mapping(
        {"sentiment": "negativo", "since": "2026-11-01", "until": "not a date", "nope": "x"}
    )
    assert filters == Filters(sentiment="negativo", since=date(2026, 11, 1))
    assert Filters.from_mapping(filters.as_query()) == filters


async def test_ban_unban_and_audit(store: ReviewStore, factory: LogFactory) -> None:
    await factory.user("discord", "55", "Beto")
    assert await store.set_banned("discord", "55", True, "discord:1")
    assert not await store.set_banned("discord", "55", True, "discord:1")
    assert await store.is_banned("discord", "55")
    assert await store.set_banned("discord", "55", False, "discord:1")
    assert not await store.is_banned("discord", "55")
    assert not await store.set_banned("discord", "77", False, "discord:1")
    assert await store.set_banned("discord", "77", True, "discord:1")  # not seen yet
    assert await store.is_banned("discord", "77")
    actions = [(e.action, e.target) for e in reversed(await store.audit_trail())]
    assert actions == [("ban", "user:discord:55"), ("unban", "user:discord:55"), ("ban", "user:discord:77")]


async def test_forget_user_deletes_only_their_data(store: ReviewStore, factory: LogFactory) -> None:
    _, (mine,) = await factory.tweet("mío", user="100")
    _, (theirs,) = await factory.tweet("ajeno", user="300", user_name="Otro")
    await factory.rate(mine, 1, user="300")  # someone else's vote on my tweet
    await factory.rate(theirs, -1, user="100")  # my vote on theirs
    await store.decide([mine], "approved", "web")

    gone = await store.forget_user("telegram", "100")
    assert (gone.requests, gone.generations, gone.ratings, gone.profile) == (1, 1, 1, True)
    remaining = await store.search(Filters())
    assert [r.text for r in remaining.rows] == ["ajeno"]
    assert (remaining.rows[0].up, remaining.rows[0].down) == (0, 0)
    assert not (await store.forget_user("telegram", "100")).anything


async def test_forget_keeps_a_ban(store: ReviewStore, factory: LogFactory) -> None:
    await factory.tweet("mío", user="100")
    await store.set_banned("telegram", "100", True, "web")
    gone = await store.forget_user("telegram", "100")
    assert gone.requests == 1 and gone.kept_ban and not gone.profile
    assert await store.is_banned("telegram", "100")


async def test_stats_and_export(store: ReviewStore, factory: LogFactory) -> None:
    _, (a,) = await factory.tweet("a", sentiment="positivo", created_at=datetime(2026, 11, 1, 10, tzinfo=UTC))
    _, (b,) = await factory.tweet("b", sentiment="negativo", model="otro", created_at=datetime(2026, 11, 2, 10, tzinfo=UTC))
    await factory.tweet(None, status="rate_limited", created_at=datetime(2026, 11, 2, 11, tzinfo=UTC))
    await factory.rate(a, 1)
    await factory.rate(a, 1, user="201")
    await factory.rate(b, -1)
    await store.decide([a], "approved", "web")
    await store.decide([b], "rejected", "web")

    stats = await store.stats(Filters())
    assert stats.per_day == [("2026-11-01", 1), ("2026-11-02", 2)]
    assert dict(stats.per_status) == {"ok": 2, "rate_limited": 1}
    assert dict(stats.per_review) == {"approved": 1, "rejected": 1}
    demo = next(m for m in stats.per_model if m.model == "demo")
    assert (demo.shown, demo.approved, demo.up, demo.approval_rate, demo.up_rate) == (1, 1, 2, 1.0, 1.0)
    assert stats.total.approval_rate == 0.5
    assert stats.total.up_rate == 2 / 3
    assert (await store.stats(Filters(model="otro"))).total.approval_rate == 0.0

    rows = [row async for row in store.export_rows(Filters(status="ok"))]
    assert [r["text"] for r in rows] == ["a", "b"]
    assert rows[0]["params"] == {"temperature": 0.9, "top_p": 0.9}
    assert (rows[0]["up"], rows[0]["review_status"], rows[0]["seed"]) == (2, "approved", 1234)
    assert (rows[0]["reviewer"], rows[1]["reviewer"]) == ("web", "web")
