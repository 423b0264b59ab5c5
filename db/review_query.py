"""Which requests the desk's filters select, in what order: one definition for the list, the
counters, stats, exports and bulk actions, so that they all count the same things.

A filter selects *requests*. Filters on a tweet (review state, text) test the request's tweets
with ``EXISTS``, so a request with eight candidates is still one request, and the review state
is the one of the tweet users saw (as the "Pendientes" counter counts it). Text search folds
accents and case on both sides, the same way in SQLite and PostgreSQL, and looks at the tweets,
the command, the user and the chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from db.fold import fold, fold_text
from db.models import Chat, Generation, Rating, Request, User

DECISIONS = ("approved", "rejected", "flagged")
REVIEW_STATES = ("pending", *DECISIONS)
#: Every status the bot writes on a request (bot/core.py, db/log.py).
REQUEST_STATUSES = (
    "pending", "ok", "error", "busy", "rate_limited", "banned", "invalid", "blocked", "expired",
)
#: How the list may be ordered: the key and whether it descends. The default is newest first.
SORTS = ("-date", "date", "-score", "score", "-votes", "votes")
PAGE_SIZES = (25, 50, 100, 200)
#: Ids and page numbers past this are treated as absent: no database integer is larger.
MAX_ID = 2**31 - 1

Author = aliased(User)


def bounded_int(value: object, default: int, low: int = 1, high: int = MAX_ID) -> int:
    """A number from a URL or form, ``default`` when it is not one, clamped to [low, high]."""
    try:
        number = int(str(value).strip()[:20])
    except ValueError:
        return default
    return max(low, min(number, high))


def _clean(value: object) -> str:
    """A filter value as text: bounded, trimmed, and without NUL (which PostgreSQL refuses)."""
    return str(value or "").replace("\x00", "").strip()[:200]


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_bounds(since: date | None, until: date | None, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """Whole days in ``zone``, both included, as [start, end) instants in UTC (SQLite compares
    the stored UTC text, so the bounds must be UTC too)."""
    start = _midnight(since, zone) if since else None
    end = _midnight(until + timedelta(days=1), zone) if until and until < date.max else None
    return start, end


def _midnight(day: date, zone: tzinfo) -> datetime | None:
    """The start of ``day`` in ``zone``, in UTC; None at the calendar's very edges."""
    try:
        return datetime.combine(day, time(), zone).astimezone(UTC)
    except OverflowError:
        return None


@dataclass(frozen=True)
class Filters:
    """What the desk's list, stats, exports and bulk actions are narrowed to; empty fields
    don't filter. ``since`` and ``until`` are whole days in the desk's time zone, both included."""

    status: str = ""
    review: str = ""
    platform: str = ""
    model: str = ""
    side: str = ""
    coalition: str = ""
    party: str = ""
    sentiment: str = ""
    since: date | None = None
    until: date | None = None
    text: str = ""

    @classmethod
    def from_mapping(cls, params: Mapping[str, str]) -> Filters:
        """Build filters from query-string values; unknown keys and bad dates are ignored."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = _clean(params.get(item.name, ""))
            if not raw:
                continue
            if item.name in ("since", "until"):
                if (day := _day(raw)) is not None:
                    values[item.name] = day
            else:
                values[item.name] = raw
        return cls(**values)

    def as_query(self) -> dict[str, str]:
        """The non-empty filters as query-string values (round-trips with ``from_mapping``)."""
        query = {}
        for key, value in asdict(self).items():
            if value:
                query[key] = value.isoformat() if isinstance(value, date) else str(value)
        return query


@dataclass(frozen=True)
class Listing:
    """How the list is shown: its order and page size (not what it selects)."""

    sort: str = "-date"
    per_page: int = 50

    @classmethod
    def from_mapping(cls, params: Mapping[str, str]) -> Listing:
        sort = _clean(params.get("sort", ""))
        per_page = bounded_int(params.get("per_page", ""), 50, 1, max(PAGE_SIZES))
        return cls(sort if sort in SORTS else "-date", per_page if per_page in PAGE_SIZES else 50)


def shown_tweet() -> Any:
    """The alias-free condition "this generation is the request's shown tweet"."""
    return and_(Generation.request_id == Request.id, Generation.shown.is_(True))


def conditions(filters: Filters, zone: tzinfo) -> list[ColumnElement[bool]]:
    """The WHERE clauses on ``Request`` (joined to ``Author`` and ``Chat``) for ``filters``."""
    where: list[ColumnElement[bool]] = []
    for name in ("status", "platform", "model", "side", "coalition", "party", "sentiment"):
        value = getattr(filters, name)
        if value:
            where.append(getattr(Request, name) == value)
    if filters.review:
        # The state of the tweet users saw, of an answered request: what the counters count.
        where.append(Request.status == "ok")
        where.append(exists().where(shown_tweet(), Generation.review_status == filters.review))
    start, end = day_bounds(filters.since, filters.until, zone)
    if start is not None:
        where.append(Request.created_at >= start)
    if end is not None:
        where.append(Request.created_at < end)
    if filters.text:
        pattern = "%" + _escape_like(fold_text(filters.text)) + "%"
        where.append(or_(
            fold(Request.raw_command).like(pattern, escape="\\"),
            exists().where(Generation.request_id == Request.id,
                           fold(Generation.text).like(pattern, escape="\\")),
            fold(Author.display_name).like(pattern, escape="\\"),
            fold(Author.external_id).like(pattern, escape="\\"),
            fold(Chat.title).like(pattern, escape="\\"),
            fold(Chat.external_id).like(pattern, escape="\\"),
        ))
    return where


def matching(filters: Filters, zone: tzinfo) -> Select[Any]:
    """``SELECT requests.id`` of every request ``filters`` selects, once each."""
    return (
        select(Request.id)
        .select_from(Request)
        .outerjoin(Author, Author.id == Request.user_id)
        .outerjoin(Chat, Chat.id == Request.chat_id)
        .where(*conditions(filters, zone))
    )


def shown_score() -> Any:
    return (
        select(Generation.score).where(shown_tweet()).correlate(Request).limit(1).scalar_subquery()
    )


def net_votes() -> Any:
    """👍 minus 👎 over the request's tweets (users only vote on the one they were shown)."""
    return (
        select(func.coalesce(func.sum(Rating.value), 0))
        .join(Generation, Generation.id == Rating.generation_id)
        .where(Generation.request_id == Request.id)
        .correlate(Request)
        .scalar_subquery()
    )


def order_by(sort: str) -> list[Any]:
    """ORDER BY for a :data:`SORTS` key; ties fall back to newest first, so pages are stable."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = {"score": shown_score(), "votes": net_votes()}.get(key)
    newest = [Request.created_at.desc(), Request.id.desc()]
    if column is None:
        return newest if descending else [Request.created_at, Request.id]
    return [(column.desc() if descending else column.asc()).nulls_last(), *newest]


def vote_count(value: int) -> Any:
    """👍 (``value`` > 0) or 👎 of the current ``Generation`` row."""
    sign = Rating.value > 0 if value > 0 else Rating.value < 0
    return (
        select(func.count(Rating.id))
        .where(Rating.generation_id == Generation.id, sign)
        .correlate(Generation)
        .scalar_subquery()
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
