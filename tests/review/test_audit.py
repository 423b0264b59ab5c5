"""The audit trail: pages, filters by admin, action and day, and one request's history, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from db.audit import AuditFilters
from db.models import AuditEntry
from db.review import ReviewStore
from tests.review.factory import LogFactory

SANTIAGO = ZoneInfo("America/Santiago")


async def test_a_requests_history_holds_every_decision_that_touched_it(store: ReviewStore, factory: LogFactory) -> None:
    mine, (shown, other) = await factory.tweet("mío", candidates=2)
    _, (elsewhere,) = await factory.tweet("ajeno")
    bulk = await store.decide([shown, elsewhere], "approved", "ana")  # one entry for both requests
    single = await store.decide([elsewhere], "flagged", "beto")
    await store.decide([other], "rejected", "beto", reason="copied")
    await store.mark_published(shown, "ana", ["telegram:@canal"])
    await store.undo(bulk.audit_id, "carla")
    history = await store.audit_page(AuditFilters(request=mine))
    assert [(e.admin, e.action) for e in history.entries] == [
        ("carla", "undo"), ("ana", "publish"), ("beto", "review"), ("ana", "review")]
    assert single.audit_id not in {e.id for e in history.entries}
    assert history.undone == {bulk.audit_id}


async def test_pages_and_filters_by_admin_action_and_day(store: ReviewStore, factory: LogFactory) -> None:
    store.zone = SANTIAGO
    _, (g,) = await factory.tweet()
    for index in range(7):
        await store.audit("ana" if index % 2 else "beto", "login" if index < 5 else "export")
    await store.decide([g], "approved", "ana")
    start = datetime(2026, 11, 1, 12, tzinfo=SANTIAGO)
    async with store.engine.begin() as connection:  # one entry a day, from 11-01 on (Santiago time)
        for offset, entry_id in enumerate(range(1, 9)):
            await connection.execute(update(AuditEntry).where(AuditEntry.id == entry_id)
                                     .values(created_at=start + timedelta(days=offset)))
    everything = await store.audit_page(AuditFilters(), page=1, per_page=3)
    assert (everything.total, everything.pages, len(everything.entries)) == (8, 3, 3)
    assert everything.entries[0].action == "review"  # newest first
    last = await store.audit_page(AuditFilters(), page=10**12, per_page=3)
    assert (last.page, len(last.entries)) == (3, 2)
    assert sorted(everything.admins) == ["ana", "beto"] and sorted(everything.actions) == ["export", "login", "review"]
    assert (await store.audit_page(AuditFilters(admin="ana"))).total == 4
    assert (await store.audit_page(AuditFilters(action="login"))).total == 5
    assert (await store.audit_page(AuditFilters(admin="beto", action="export"))).total == 1
    days = await store.audit_page(AuditFilters(since=date(2026, 11, 3), until=date(2026, 11, 4)))
    assert days.total == 2
    assert AuditFilters.from_mapping(AuditFilters(since=date(2026, 11, 3)).as_query()).since == date(2026, 11, 3)
    assert AuditFilters.from_mapping({"request": "99999999999999999999", "since": "no"}) == AuditFilters(request=2**31 - 1)
