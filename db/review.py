"""Review queries: what the desk (web and chat) reads from the log and the decisions it writes.

One ``ReviewStore`` serves both the web desk and the chat commands, so a decision taken in
Telegram shows on the web at once and both leave the same audit trail. Rows are returned as
frozen dataclasses (not ORM objects) so templates and chat replies never touch a session.
Nothing here knows about bots or HTTP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from db.game import forget_votes
from db.models import AuditEntry, Chat, Generation, Rating, Request, Review, User, utcnow

DECISIONS = ("approved", "rejected", "flagged")
REVIEW_STATES = ("pending", *DECISIONS)
REQUEST_STATUSES = ("pending", "ok", "error", "busy", "rate_limited", "blocked", "expired")
MAX_PER_PAGE = 200
#: The fields of each exported row, in order (CSV header, JSONL keys).
EXPORT_COLUMNS = (
    "request_id", "generation_id", "created_at", "platform", "model", "side", "coalition",
    "party", "sentiment", "raw_command", "controls", "prompt", "params", "status", "error",
    "candidate", "seed", "shown", "text", "tokens", "latency_ms", "review_status", "up", "down",
)


@dataclass(frozen=True)
class Filters:
    """What the desk's list, stats and exports are narrowed to; empty fields don't filter.

    ``since`` and ``until`` are whole days (UTC), both included.
    """

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
            raw = str(params.get(item.name, "") or "").strip()[:200]
            if not raw:
                continue
            if item.name in ("since", "until"):
                try:
                    values[item.name] = date.fromisoformat(raw)
                except ValueError:
                    continue
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
class Row:
    """One line of the desk's list: a request and (when it produced one) a generated tweet,
    with the ranker's ``score`` (None: not ranked)."""

    request_id: int
    generation_id: int | None
    created_at: datetime
    platform: str
    user: str
    model: str
    side: str
    coalition: str
    party: str
    sentiment: str
    status: str
    error: str
    text: str | None
    review_status: str | None
    shown: bool
    up: int
    down: int
    score: float | None = None


@dataclass(frozen=True)
class RequestGroup:
    """A request's rows in the list: ``first`` is the tweet users saw (or the request alone,
    when it produced none), ``others`` the candidates that were not shown."""

    first: Row
    others: list[Row]


@dataclass(frozen=True)
class Page:
    """One page of requests (``total`` counts requests); ``rows`` holds each request's rows,
    the shown tweet first."""

    rows: list[Row]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def groups(self) -> list[RequestGroup]:
        """The rows grouped under their request, in page order."""
        grouped: dict[int, list[Row]] = {}
        for row in self.rows:
            grouped.setdefault(row.request_id, []).append(row)
        return [RequestGroup(rows[0], rows[1:]) for rows in grouped.values()]


@dataclass(frozen=True)
class ReviewInfo:
    admin: str
    decision: str
    note: str
    created_at: datetime


@dataclass(frozen=True)
class GenerationInfo:
    id: int
    candidate: int
    text: str
    tokens: int
    latency_ms: float
    seed: int | None
    shown: bool
    review_status: str
    sent_at: datetime | None
    published_at: datetime | None
    up: int
    down: int
    reviews: list[ReviewInfo]
    #: The ranker's score and its parts (None: not ranked).
    score: float | None = None
    score_detail: dict[str, float] | None = None


@dataclass(frozen=True)
class Detail:
    """Everything known about one request: controls, prompt, parameters, and its candidates."""

    request_id: int
    created_at: datetime
    finished_at: datetime | None
    platform: str
    user: str
    user_ref: str
    user_banned: bool
    chat: str
    raw_command: str
    controls: dict[str, Any]
    side: str
    coalition: str
    party: str
    sentiment: str
    model: str
    prompt: str
    params: dict[str, Any]
    seed: int | None
    status: str
    error: str
    queue_ms: float | None
    latency_ms: float | None
    parent_id: int | None
    generations: list[GenerationInfo]

    def generation(self, generation_id: int) -> GenerationInfo | None:
        return next((g for g in self.generations if g.id == generation_id), None)


@dataclass(frozen=True)
class Forgotten:
    """What ``forget_user`` deleted, so the user can be told."""

    requests: int = 0
    generations: int = 0
    ratings: int = 0
    profile: bool = False
    #: A banned user's row stays (without the name) so deleting data doesn't lift a ban.
    kept_ban: bool = False
    #: Votes in ¿Real o ficticio? rounds.
    votes: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.requests or self.ratings or self.profile or self.votes)


@dataclass(frozen=True)
class ModelStats:
    model: str
    generations: int
    reviewed: int
    approved: int
    up: int
    down: int

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.reviewed if self.reviewed else None

    @property
    def up_rate(self) -> float | None:
        return self.up / (self.up + self.down) if self.up + self.down else None


@dataclass(frozen=True)
class Stats:
    """Aggregates for the stats page, over the same filtered set as the list."""

    per_day: list[tuple[str, int]]
    per_status: list[tuple[str, int]]
    per_sentiment: list[tuple[str, int]]
    per_review: list[tuple[str, int]]
    per_model: list[ModelStats]
    total: ModelStats = field(default_factory=lambda: ModelStats("", 0, 0, 0, 0, 0))


class ReviewStore:
    """Review queries and admin actions over the generation log."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    # -- reading -------------------------------------------------------------------------------

    async def search(self, filters: Filters, page: int = 1, per_page: int = 50) -> Page:
        """One page of the filtered requests, newest first, each with its matching rows (the
        shown tweet first, then the other candidates in order)."""
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(1, page)
        base = _filtered(filters)
        requests = base.with_only_columns(Request.id, Request.created_at).distinct()
        async with self._sessions() as session:
            total = await session.scalar(select(func.count()).select_from(requests.subquery()))
            ids = list(await session.scalars(
                requests.order_by(Request.created_at.desc(), Request.id.desc())
                .limit(per_page).offset((page - 1) * per_page)
            ))
            query = (
                _row_columns(base.where(Request.id.in_(ids)))
                .order_by(Request.created_at.desc(), Request.id.desc(), Generation.shown.desc(),
                          Generation.candidate)
            )
            rows = [_row(r) for r in (await session.execute(query)).all()] if ids else []
        return Page(rows=rows, total=int(total or 0), page=page, per_page=per_page)

    async def next_pending(self, skip: Sequence[int] = ()) -> Detail | None:
        """The oldest shown tweet nobody has reviewed yet (``skip`` leaves some out)."""
        query = (
            select(Generation.request_id, Generation.id)
            .join(Request, Request.id == Generation.request_id)
            .where(*_queue_conditions())
            .order_by(Generation.created_at, Generation.id)
            .limit(1)
        )
        if skip:
            query = query.where(Generation.id.not_in(list(skip)))
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        return await self.detail(found[0]) if found else None

    async def counts(self) -> dict[str, int]:
        """Shown tweets of answered requests per review state (``pending`` is the queue)."""
        query = (
            select(Generation.review_status, func.count())
            .join(Request, Request.id == Generation.request_id)
            .where(Generation.shown.is_(True), Request.status == "ok")
            .group_by(Generation.review_status)
        )
        async with self._sessions() as session:
            found = dict((await session.execute(query)).all())
        return {state: int(found.get(state, 0)) for state in REVIEW_STATES}

    async def detail(self, request_id: int) -> Detail | None:
        async with self._sessions() as session:
            request = await session.get(Request, request_id)
            if request is None:
                return None
            user = await session.get(User, request.user_id) if request.user_id else None
            chat = await session.get(Chat, request.chat_id) if request.chat_id else None
            generations = (
                await session.scalars(
                    select(Generation)
                    .where(Generation.request_id == request_id)
                    .order_by(Generation.candidate, Generation.id)
                )
            ).all()
            ids = [g.id for g in generations]
            votes = await _votes(session, ids)
            reviews: dict[int, list[ReviewInfo]] = {i: [] for i in ids}
            if ids:
                for review in await session.scalars(
                    select(Review)
                    .where(Review.generation_id.in_(ids))
                    .order_by(Review.created_at, Review.id)
                ):
                    reviews[review.generation_id].append(
                        ReviewInfo(review.admin, review.decision, review.note, review.created_at)
                    )
        return Detail(
            request_id=request.id,
            created_at=request.created_at,
            finished_at=request.finished_at,
            platform=request.platform,
            user=user.display_name if user else "",
            user_ref=f"{user.platform}:{user.external_id}" if user else "",
            user_banned=bool(user and user.banned),
            chat=(chat.title or f"{chat.kind} {chat.external_id}") if chat else "",
            raw_command=request.raw_command,
            controls=dict(request.controls or {}),
            side=request.side,
            coalition=request.coalition,
            party=request.party,
            sentiment=request.sentiment,
            model=request.model,
            prompt=request.prompt,
            params=dict(request.params or {}),
            seed=request.seed,
            status=request.status,
            error=request.error,
            queue_ms=request.queue_ms,
            latency_ms=request.latency_ms,
            parent_id=request.parent_id,
            generations=[
                GenerationInfo(
                    id=g.id,
                    candidate=g.candidate,
                    text=g.text,
                    tokens=g.tokens,
                    latency_ms=g.latency_ms,
                    seed=g.seed,
                    shown=g.shown,
                    review_status=g.review_status,
                    sent_at=g.sent_at,
                    published_at=g.published_at,
                    up=votes.get(g.id, (0, 0))[0],
                    down=votes.get(g.id, (0, 0))[1],
                    reviews=reviews[g.id],
                    score=g.score,
                    score_detail=dict(g.score_detail) if g.score_detail else None,
                )
                for g in generations
            ],
        )

    async def request_of(self, generation_id: int) -> int | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Generation.request_id).where(Generation.id == generation_id)
            )

    async def options(self) -> dict[str, list[str]]:
        """Values present in the log for each filter with a closed set (for the desk's menus)."""
        columns = {
            "platform": Request.platform,
            "model": Request.model,
            "side": Request.side,
            "coalition": Request.coalition,
            "party": Request.party,
            "sentiment": Request.sentiment,
        }
        found: dict[str, list[str]] = {}
        async with self._sessions() as session:
            for name, column in columns.items():
                values = await session.scalars(select(column).distinct().order_by(column))
                found[name] = [v for v in values if v]
        return found

    async def export_rows(self, filters: Filters) -> AsyncIterator[dict[str, Any]]:
        """Every filtered row with what reproduces it (prompt, parameters, seed), oldest first."""
        query = (
            _filtered(filters)
            .with_only_columns(
                Request.id,
                Generation.id,
                Request.created_at,
                Request.platform,
                Request.model,
                Request.side,
                Request.coalition,
                Request.party,
                Request.sentiment,
                Request.raw_command,
                Request.controls,
                Request.prompt,
                Request.params,
                Request.status,
                Request.error,
                Generation.candidate,
                Generation.seed,
                Request.seed,
                Generation.shown,
                Generation.text,
                Generation.tokens,
                Generation.latency_ms,
                Generation.review_status,
                _vote_count(1),
                _vote_count(-1),
            )
            .order_by(Request.created_at, Request.id, Generation.candidate)
        )
        async with self._sessions() as session:
            result = await session.stream(query)
            async for r in result:
                yield {
                    "request_id": r[0],
                    "generation_id": r[1],
                    "created_at": r[2].isoformat() if r[2] else "",
                    "platform": r[3],
                    "model": r[4],
                    "side": r[5],
                    "coalition": r[6],
                    "party": r[7],
                    "sentiment": r[8],
                    "raw_command": r[9],
                    "controls": r[10] or {},
                    "prompt": r[11],
                    "params": r[12] or {},
                    "status": r[13],
                    "error": r[14],
                    "candidate": r[15],
                    "seed": r[16] if r[16] is not None else r[17],
                    "shown": r[18],
                    "text": r[19],
                    "tokens": r[20],
                    "latency_ms": r[21],
                    "review_status": r[22],
                    "up": int(r[23] or 0),
                    "down": int(r[24] or 0),
                }

    async def stats(self, filters: Filters) -> Stats:
        """Counts per day, status, sentiment, review state and model, plus approval / 👍 rates."""
        base = _filtered(filters)
        rows = base.with_only_columns(
            Request.id.label("request_id"),
            func.date(Request.created_at).label("day"),
            Request.status.label("status"),
            Request.sentiment.label("sentiment"),
            Request.model.label("model"),
            Generation.id.label("generation_id"),
            Generation.review_status.label("review_status"),
            _vote_count(1).label("up"),
            _vote_count(-1).label("down"),
        ).subquery()

        async def grouped(session: AsyncSession, column: Any) -> list[tuple[str, int]]:
            query = select(column, func.count()).group_by(column).order_by(column)
            return [(str(k) if k is not None else "", int(n)) for k, n in await session.execute(query)]

        approved = func.sum(case((rows.c.review_status == "approved", 1), else_=0))
        reviewed = func.sum(case((rows.c.review_status.in_(DECISIONS), 1), else_=0))
        per_model_query = (
            select(
                rows.c.model,
                func.count(rows.c.generation_id),
                reviewed,
                approved,
                func.coalesce(func.sum(rows.c.up), 0),
                func.coalesce(func.sum(rows.c.down), 0),
            )
            .group_by(rows.c.model)
            .order_by(rows.c.model)
        )
        async with self._sessions() as session:
            per_day = await grouped(session, rows.c.day)
            per_status = await grouped(session, rows.c.status)
            per_sentiment = await grouped(session, rows.c.sentiment)
            per_review = [
                (k, n)
                for k, n in await grouped(session, rows.c.review_status)
                if k  # requests without a tweet have no review state
            ]
            per_model = [
                ModelStats(m or "", int(g or 0), int(rv or 0), int(a or 0), int(u or 0), int(d or 0))
                for m, g, rv, a, u, d in await session.execute(per_model_query)
            ]
        total = ModelStats(
            "",
            *(sum(getattr(m, name) for m in per_model) for name in ("generations", "reviewed", "approved", "up", "down")),
        )
        return Stats(per_day, per_status, per_sentiment, per_review, per_model, total)

    # -- acting --------------------------------------------------------------------------------

    async def decide(
        self, generation_ids: Iterable[int], decision: str, admin: str, note: str = ""
    ) -> list[int]:
        """Record ``decision`` on each existing generation; returns the ids it applied to.

        Each generation gets a review row (its history) and an audit entry; the latest decision
        becomes its ``review_status``.
        """
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}")
        wanted = sorted({int(i) for i in generation_ids})
        if not wanted:
            return []
        note = note.strip()[:2000]
        async with self._sessions.begin() as session:
            found = list(
                await session.scalars(select(Generation.id).where(Generation.id.in_(wanted)))
            )
            if not found:
                return []
            now = utcnow()
            await session.execute(
                update(Generation).where(Generation.id.in_(found)).values(review_status=decision)
            )
            for generation_id in found:
                session.add(
                    Review(
                        generation_id=generation_id,
                        admin=admin,
                        decision=decision,
                        note=note,
                        created_at=now,
                    )
                )
                session.add(
                    AuditEntry(
                        created_at=now,
                        admin=admin,
                        action="review",
                        target=f"generation:{generation_id}",
                        detail={"decision": decision, "note": note},
                    )
                )
        return sorted(found)

    async def set_banned(self, platform: str, external_id: str, banned: bool, admin: str) -> bool:
        """Ban or unban a platform user (creating the row for someone not seen yet).

        Returns whether anything changed (banning a banned user changes nothing).
        """
        async with self._sessions.begin() as session:
            user = await session.scalar(
                select(User).where(User.platform == platform, User.external_id == external_id)
            )
            if user is None:
                if not banned:
                    return False
                user = User(platform=platform, external_id=external_id, banned=True)
                session.add(user)
            elif user.banned == banned:
                return False
            user.banned = banned
            session.add(
                AuditEntry(
                    admin=admin,
                    action="ban" if banned else "unban",
                    target=f"user:{platform}:{external_id}",
                )
            )
        return True

    async def is_banned(self, platform: str, external_id: str) -> bool:
        async with self._sessions() as session:
            return bool(
                await session.scalar(
                    select(User.banned).where(
                        User.platform == platform, User.external_id == external_id
                    )
                )
            )

    async def forget_user(self, platform: str, external_id: str) -> Forgotten:
        """Delete what the log holds about a user: requests, tweets, ratings and profile.

        Deletes are explicit (not left to ``ON DELETE CASCADE``) so the result is the same on a
        SQLite file opened without foreign-key enforcement.
        """
        async with self._sessions.begin() as session:
            user = await session.scalar(
                select(User).where(User.platform == platform, User.external_id == external_id)
            )
            if user is None:
                return Forgotten()
            request_ids = select(Request.id).where(Request.user_id == user.id)
            generation_ids = select(Generation.id).where(Generation.request_id.in_(request_ids))
            generations = int(
                await session.scalar(
                    select(func.count()).select_from(generation_ids.subquery())
                )
                or 0
            )
            own_ratings = await session.execute(delete(Rating).where(Rating.user_id == user.id))
            votes = await forget_votes(session, user.id, generation_ids)
            await session.execute(delete(Rating).where(Rating.generation_id.in_(generation_ids)))
            await session.execute(delete(Review).where(Review.generation_id.in_(generation_ids)))
            await session.execute(delete(Generation).where(Generation.request_id.in_(request_ids)))
            await session.execute(
                update(Request).where(Request.parent_id.in_(request_ids)).values(parent_id=None)
            )
            requests = await session.execute(delete(Request).where(Request.user_id == user.id))
            if user.banned:
                user.display_name = ""
            else:
                await session.delete(user)
        return Forgotten(
            requests=requests.rowcount or 0,
            generations=generations,
            ratings=own_ratings.rowcount or 0,
            profile=not user.banned,
            kept_ban=user.banned,
            votes=votes,
        )

    async def mark_published(self, generation_id: int, admin: str, destinations: list[str]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Generation)
                .where(Generation.id == generation_id)
                .values(published_at=utcnow())
            )
            session.add(
                AuditEntry(
                    admin=admin,
                    action="publish",
                    target=f"generation:{generation_id}",
                    detail={"to": destinations},
                )
            )

    async def audit(
        self, admin: str, action: str, target: str = "", detail: Mapping[str, Any] | None = None
    ) -> None:
        """Append an audit entry for an action recorded nowhere else (login, export)."""
        async with self._sessions.begin() as session:
            session.add(
                AuditEntry(
                    admin=admin[:128],
                    action=action[:32],
                    target=target[:128],
                    detail=json.loads(json.dumps(dict(detail or {}), default=str)),
                )
            )

    async def audit_trail(self, limit: int = 100) -> list[AuditEntry]:
        async with self._sessions() as session:
            return list(
                await session.scalars(
                    select(AuditEntry)
                    .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
                    .limit(limit)
                )
            )


# -- query building ----------------------------------------------------------------------------

_Author = aliased(User)


def _queue_conditions() -> list[Any]:
    return [
        Generation.review_status == "pending",
        Generation.shown.is_(True),
        Request.status == "ok",
    ]


def _filtered(filters: Filters) -> Select[Any]:
    """Requests (with their tweets, when any) narrowed by ``filters``."""
    query = (
        select(Request.id)
        .select_from(Request)
        .outerjoin(Generation, Generation.request_id == Request.id)
        .outerjoin(_Author, _Author.id == Request.user_id)
    )
    for name in ("status", "platform", "model", "side", "coalition", "party", "sentiment"):
        value = getattr(filters, name)
        if value:
            query = query.where(getattr(Request, name) == value)
    if filters.review:
        query = query.where(Generation.review_status == filters.review)
    if filters.since:
        query = query.where(Request.created_at >= datetime.combine(filters.since, time(), UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time(), UTC)
        query = query.where(Request.created_at < end)
    if filters.text:
        pattern = "%" + _escape_like(filters.text) + "%"
        query = query.where(
            or_(
                Generation.text.ilike(pattern, escape="\\"),
                Request.raw_command.ilike(pattern, escape="\\"),
            )
        )
    return query


def _vote_count(value: int) -> Any:
    sign = Rating.value > 0 if value > 0 else Rating.value < 0
    return (
        select(func.count(Rating.id))
        .where(Rating.generation_id == Generation.id, sign)
        .correlate(Generation)
        .scalar_subquery()
    )


def _row_columns(query: Select[Any]) -> Select[Any]:
    return query.with_only_columns(
        Request.id,
        Generation.id,
        Request.created_at,
        Request.platform,
        _Author.display_name,
        _Author.external_id,
        Request.model,
        Request.side,
        Request.coalition,
        Request.party,
        Request.sentiment,
        Request.status,
        Request.error,
        Generation.text,
        Generation.review_status,
        Generation.shown,
        _vote_count(1),
        _vote_count(-1),
        Generation.score,
    )


def _row(r: Any) -> Row:
    return Row(
        request_id=r[0],
        generation_id=r[1],
        created_at=r[2],
        platform=r[3],
        user=r[4] or r[5] or "",
        model=r[6],
        side=r[7],
        coalition=r[8],
        party=r[9],
        sentiment=r[10],
        status=r[11],
        error=r[12],
        text=r[13],
        review_status=r[14],
        shown=bool(r[15]) if r[15] is not None else False,
        up=int(r[16] or 0),
        down=int(r[17] or 0),
        score=r[18],
    )


async def _votes(session: AsyncSession, ids: list[int]) -> dict[int, tuple[int, int]]:
    if not ids:
        return {}
    query = (
        select(
            Rating.generation_id,
            func.sum(case((Rating.value > 0, 1), else_=0)),
            func.sum(case((Rating.value < 0, 1), else_=0)),
        )
        .where(Rating.generation_id.in_(ids))
        .group_by(Rating.generation_id)
    )
    return {g: (int(u or 0), int(d or 0)) for g, u, d in await session.execute(query)}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
