"""Decisions that do what they say, on SQLite and PostgreSQL: one audit entry per decision,
undo from that entry, "approve the shown one, reject the rest", and claims that keep two
admins of the review stream off the same tweet."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from db.review import NOT_CHOSEN, UNDONE, Filters, ReviewStore
from tests.review.factory import LogFactory


async def states(store: ReviewStore, request_id: int) -> dict[int, str]:
    found = await store.detail(request_id)
    assert found is not None
    return {g.id: g.review_status for g in found.generations}


async def test_a_bulk_decision_is_undone_from_its_audit_entry(store: ReviewStore, factory: LogFactory) -> None:
    made = [await factory.tweet(f"tuit {i}") for i in range(3)]
    shown = [ids[0] for _, ids in made]
    await store.decide([shown[0]], "flagged", "beto")
    bulk = await store.decide(shown, "approved", "ana", "en bloque")
    assert bulk.ids == shown and bulk.audit_id is not None
    await store.decide([shown[2]], "rejected", "beto", reason="offensive")  # decided again since

    assert await store.undo(bulk.audit_id, "ana") == shown[:2]  # the later rejection stands
    assert [(await states(store, r))[g] for (r, _), g in zip(made, shown, strict=True)] == [
        "flagged", "pending", "rejected"]
    detail = await store.detail(made[0][0])
    assert [r.decision for r in detail.generation(shown[0]).reviews] == ["flagged", "approved", UNDONE]
    assert await store.undo(bulk.audit_id, "ana") == []  # nothing left to undo
    trail = await store.audit_trail()
    assert trail[0].action == "undo" and trail[0].target == f"audit:{bulk.audit_id}"
    assert await store.undo(trail[0].id, "ana") is None  # an undo is not a decision
    assert await store.undo(2**40, "ana") is None


async def test_approve_the_shown_one_and_reject_the_rest(store: ReviewStore, factory: LogFactory) -> None:
    request_id, (shown, *others) = await factory.tweet("elegido", candidates=3)
    done = await store.approve_shown([others[0]], "ana")  # any tweet of the request names it
    assert sorted(done.ids) == sorted([shown, *others])
    assert await states(store, request_id) == {shown: "approved", others[0]: "rejected", others[1]: "rejected"}
    detail = await store.detail(request_id)
    assert {detail.generation(g).reviews[-1].reason for g in others} == {NOT_CHOSEN}
    [entry] = [e for e in await store.audit_trail() if e.action == "review"]
    assert entry.detail["decision"] == "approve_shown" and entry.detail["decisions"][str(shown)] == "approved"
    await store.undo(done.audit_id, "ana")
    assert set((await states(store, request_id)).values()) == {"pending"}


async def test_a_reason_goes_with_a_rejection_only(store: ReviewStore, factory: LogFactory) -> None:
    _, (g,) = await factory.tweet()
    with pytest.raises(ValueError):
        await store.decide([g], "approved", "ana", reason="offensive")
    with pytest.raises(ValueError):
        await store.decide([g], "rejected", "ana", reason="porque sí")
    await store.decide([g], "rejected", "ana", reason="copied")
    [entry] = await store.audit_trail()
    assert entry.detail["reason"] == "copied"


async def test_two_admins_never_get_the_same_tweet(store: ReviewStore, factory: LogFactory) -> None:
    shown = [(await factory.tweet(f"tuit {i}"))[1][0] for i in range(3)]
    first = await store.next_pending(admin="ana")
    second = await store.next_pending(admin="beto")
    assert first.shown.id == shown[0] and second.shown.id == shown[1]
    assert first.shown.claimed_by == "ana" and first.shown.claimed_until is not None
    assert (await store.next_pending(admin="ana")).shown.id == shown[0]  # her own claim, again
    page = await store.search(Filters())
    assert {row.generation_id: row.claimed_by for row in page.rows}[shown[1]] == "beto"

    await store.release(shown[0], "beto")  # not his to release
    assert (await store.next_pending(admin="carla")).shown.id == shown[2]
    assert await store.next_pending(admin="dani") is None  # everything is being reviewed
    await store.release(shown[0], "ana")  # she skipped it
    assert (await store.next_pending(admin="dani")).shown.id == shown[0]
    await store.decide([shown[1]], "approved", "beto")  # deciding ends the claim
    detail = await store.detail(second.request_id)
    assert detail.shown.claimed_by == "" and detail.shown.review_status == "approved"


async def test_a_lapsed_claim_frees_the_tweet(store: ReviewStore, factory: LogFactory) -> None:
    _, (g,) = await factory.tweet()
    assert (await store.next_pending(admin="ana", claim=timedelta(0))).shown.id == g
    assert (await store.next_pending(admin="beto")).shown.id == g


async def test_admins_asking_at_once_get_different_tweets(store: ReviewStore, factory: LogFactory) -> None:
    shown = {(await factory.tweet(f"tuit {i}"))[1][0] for i in range(4)}
    found = await asyncio.gather(*(store.next_pending(admin=f"admin{i}") for i in range(4)))
    assert {item.shown.id for item in found} == shown
