"""Reading the audit trail: pages, filters by admin, action and date, and one request's history.

A request's history is every entry that touched it: decisions on its tweets (found through the
review rows, which point at their entry, so a bulk decision over 300 tweets is in each one's
history), their undoing, and publications.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import Any

from sqlalchemy import String, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AuditEntry, Generation, Review
from db.review_query import MAX_ID, bounded_int, day_bounds


def _day(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        return None


@dataclass(frozen=True)
class AuditFilters:
    admin: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None
    #: Only the entries that touched this request (0: any).
    request: int = 0

    @classmethod
    def from_mapping(cls, params: Mapping[str, str]) -> AuditFilters:
        def text(name: str) -> str:
            return str(params.get(name, "") or "").replace("\x00", "").strip()[:128]

        return cls(admin=text("admin"), action=text("action"), since=_day(params.get("since")),
                   until=_day(params.get("until")), request=bounded_int(params.get("request", ""), 0, 0, MAX_ID))

    def as_query(self) -> dict[str, str]:
        query = {"admin": self.admin, "action": self.action,
                 "since": self.since.isoformat() if self.since else "",
                 "until": self.until.isoformat() if self.until else "",
                 "request": str(self.request) if self.request else ""}
        return {k: v for k, v in query.items() if v}


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total: int
    page: int
    per_page: int
    #: Who and what appear in the trail at all (the filter menus).
    admins: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    #: Ids of the decisions on this page that were undone since.
    undone: set[int] = field(default_factory=set)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _conditions(filters: AuditFilters, zone: tzinfo) -> list[Any]:
    where: list[Any] = []
    if filters.admin:
        where.append(AuditEntry.admin == filters.admin)
    if filters.action:
        where.append(AuditEntry.action == filters.action)
    start, end = day_bounds(filters.since, filters.until, zone)
    if start is not None:
        where.append(AuditEntry.created_at >= start)
    if end is not None:
        where.append(AuditEntry.created_at < end)
    if filters.request:
        tweets = select(Generation.id).where(Generation.request_id == filters.request)
        named = literal("generation:").concat(cast(Generation.id, String))
        where.append(or_(
            AuditEntry.id.in_(select(Review.audit_id).where(Review.generation_id.in_(tweets))),
            AuditEntry.target.in_(select(named).where(Generation.request_id == filters.request)),
        ))
    return where


async def audit_page(
    sessions: async_sessionmaker[AsyncSession], filters: AuditFilters, page: int, per_page: int, zone: tzinfo
) -> AuditPage:
    """Newest first; a page past the last is the last."""
    per_page = max(1, min(per_page, 500))
    where = _conditions(filters, zone)
    async with sessions() as session:
        total = int(await session.scalar(select(func.count(AuditEntry.id)).where(*where)) or 0)
        page = max(1, min(page, max(1, -(-total // per_page))))
        entries = list(await session.scalars(
            select(AuditEntry).where(*where)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(per_page).offset((page - 1) * per_page)
        ))
        admins = list(await session.scalars(select(AuditEntry.admin).distinct().order_by(AuditEntry.admin)))
        actions = list(await session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
        decisions = [f"audit:{e.id}" for e in entries if e.action == "review"]
        undone = set()
        if decisions:
            for target in await session.scalars(
                select(AuditEntry.target).where(AuditEntry.action == "undo", AuditEntry.target.in_(decisions))
            ):
                undone.add(int(target.removeprefix("audit:")))
    return AuditPage(entries, total, page, per_page, admins, actions, undone)
