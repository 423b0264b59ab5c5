"""The desk's stats: requests where they say requests, tweets where they say tweets.

The filtered set is a set of requests (``db/review_query.py``), so per-day, per-status and
per-sentiment figures count requests, each once however many candidates it has. Tweet figures
say which tweets: *shown* tweets are the ones users saw (one per answered request; the ones
reviewed, approved and voted on), *candidates* every tweet the model wrote for the ranker.
Days are whole days in the desk's time zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Generation, Rating, Request
from db.review_query import DECISIONS, Filters, matching


@dataclass(frozen=True)
class ModelStats:
    """One model's figures (``model`` "" for the totals)."""

    model: str
    requests: int = 0
    answered: int = 0
    #: Tweets users saw (of answered requests), and every candidate written.
    shown: int = 0
    candidates: int = 0
    #: Shown tweets an admin decided on, and of those the approved.
    reviewed: int = 0
    approved: int = 0
    up: int = 0
    down: int = 0

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.reviewed if self.reviewed else None

    @property
    def up_rate(self) -> float | None:
        return self.up / (self.up + self.down) if self.up + self.down else None


@dataclass(frozen=True)
class Stats:
    """Aggregates for the stats page, over the same filtered requests as the list."""

    requests: int
    per_day: list[tuple[str, int]]
    per_status: list[tuple[str, int]]
    per_sentiment: list[tuple[str, int]]
    #: Shown tweets per review state.
    per_review: list[tuple[str, int]]
    per_model: list[ModelStats]
    total: ModelStats = field(default_factory=lambda: ModelStats(""))


def _sum(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def stats(sessions: async_sessionmaker[AsyncSession], filters: Filters, zone: tzinfo) -> Stats:
    picked = matching(filters, zone)
    mine = Request.id.in_(picked)
    shown = and_(Generation.shown.is_(True), Request.status == "ok")

    async def grouped(session: AsyncSession, column: Any) -> list[tuple[str, int]]:
        query = select(column, func.count(Request.id)).where(mine).group_by(column).order_by(column)
        return [(str(k) if k is not None else "", int(n)) for k, n in await session.execute(query)]

    figures: dict[str, dict[str, int]] = {}

    def put(model: str | None, **values: Any) -> None:
        figures.setdefault(model or "", {}).update({k: int(v or 0) for k, v in values.items()})

    async with sessions() as session:
        per_status = await grouped(session, Request.status)
        per_sentiment = await grouped(session, Request.sentiment)
        days: Counter[str] = Counter()
        async for (created_at,) in await session.stream(select(Request.created_at).where(mine)):
            days[_local_day(created_at, zone)] += 1
        per_review = [
            (str(state), int(n)) for state, n in await session.execute(
                select(Generation.review_status, func.count(Generation.id))
                .join(Request, Request.id == Generation.request_id)
                .where(mine, shown).group_by(Generation.review_status).order_by(Generation.review_status)
            )
        ]
        for model, requests, answered in await session.execute(
            select(Request.model, func.count(Request.id), _sum(Request.status == "ok"))
            .where(mine).group_by(Request.model)
        ):
            put(model, requests=requests, answered=answered)
        for model, candidates, shown_n, reviewed, approved in await session.execute(
            select(Request.model, func.count(Generation.id), _sum(shown),
                   _sum(and_(shown, Generation.review_status.in_(DECISIONS))),
                   _sum(and_(shown, Generation.review_status == "approved")))
            .join(Request, Request.id == Generation.request_id).where(mine).group_by(Request.model)
        ):
            put(model, candidates=candidates, shown=shown_n, reviewed=reviewed, approved=approved)
        for model, up, down in await session.execute(
            select(Request.model, _sum(Rating.value > 0), _sum(Rating.value < 0))
            .join(Generation, Generation.id == Rating.generation_id)
            .join(Request, Request.id == Generation.request_id).where(mine).group_by(Request.model)
        ):
            put(model, up=up, down=down)
    per_model = [ModelStats(model, **values) for model, values in sorted(figures.items())]
    names = ("requests", "answered", "shown", "candidates", "reviewed", "approved", "up", "down")
    total = ModelStats("", **{name: sum(getattr(m, name) for m in per_model) for name in names})
    return Stats(
        requests=total.requests, per_day=sorted(days.items()), per_status=per_status,
        per_sentiment=per_sentiment, per_review=[(k, n) for k, n in per_review if k], per_model=per_model,
        total=total,
    )


def _local_day(moment: datetime, zone: tzinfo) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).date().isoformat()
