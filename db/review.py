"""Review queries: what the desk (web and chat) reads from the log and the decisions it writes.

One ``ReviewStore`` serves both the web desk and the chat commands, so a decision taken in
Telegram shows on the web at once and both leave the same audit trail. Rows are returned as
frozen dataclasses (not ORM objects) so templates and chat replies never touch a session.
Which requests a filter selects is ``db/review_query.py``'s; stats, exports and the audit trail
have their own modules. Nothing here knows about bots or HTTP.

Every decision, however many tweets it covers, is one audit entry that remembers each tweet's
state before it, and each review row points at that entry: so a bulk decision is undone from
its entry, tweet by tweet, where nobody has decided again since.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.audit import AuditFilters, AuditPage, audit_page
from db.game import forget_votes
from db.models import AuditEntry, Chat, Generation, Rating, Request, Review, User, utcnow
from db.review_export import export_rows
from db.review_query import (
    DECISIONS,
    MAX_ID,
    REVIEW_STATES,
    Author,
    Filters,
    matching,
    order_by,
    vote_count,
)
from db.review_stats import Stats, stats

#: Why a tweet is rejected: the code stored, and what the desk says.
REJECT_REASONS = {
    "offensive": "ofensivo o discriminatorio",
    "misinformation": "desinformación o datos falsos",
    "person": "ataca o expone a una persona",
    "incoherent": "incoherente o mal escrito",
    "off_request": "no corresponde a lo pedido",
    "copied": "copia un tuit real",
    "other": "otro motivo (ver la nota)",
}
#: The reason "approve the shown one, reject the rest" gives the rest.
NOT_CHOSEN = "not_chosen"
REASON_NAMES = {**REJECT_REASONS, NOT_CHOSEN: "no elegido: se aprobó el mostrado"}
#: A review row that takes an earlier decision back (its tweet returns to its state before).
UNDONE = "undone"


@dataclass(frozen=True)
class Decided:
    """What a decision covered: the tweets (sorted ids) and its audit entry (None: nothing)."""

    ids: list[int]
    audit_id: int | None = None

    def __bool__(self) -> bool:
        return bool(self.ids)


@dataclass(frozen=True)
class Row:
    """One line of the desk's list: a request and (when it produced one) a generated tweet,
    with the ranker's ``score`` (None: not ranked) and who is reviewing it now, if anyone."""

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
    chat: str = ""
    claimed_by: str = ""


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
    reason: str = ""
    audit_id: int | None = None


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
    #: Who reviews it now in the stream ("" when nobody's claim is running).
    claimed_by: str = ""
    claimed_until: datetime | None = None


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

    @property
    def shown(self) -> GenerationInfo | None:
        """The tweet users saw (the one under review)."""
        return next((g for g in self.generations if g.shown), None)

    @property
    def others(self) -> list[GenerationInfo]:
        return [g for g in self.generations if not g.shown]


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


class ReviewStore:
    """Review queries and admin actions over the generation log.

    ``zone`` is the desk's time zone: date filters and stats by day read whole days there.
    """

    def __init__(self, engine: AsyncEngine, zone: tzinfo = UTC) -> None:
        self.engine = engine
        self.zone = zone
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    # -- reading -------------------------------------------------------------------------------

    async def search(self, filters: Filters, page: int = 1, per_page: int = 50, sort: str = "-date") -> Page:
        """One page of the filtered requests in ``sort`` order (:data:`db.review_query.SORTS`),
        each with all its tweets (the shown one first, then the other candidates in order).
        A page past the last is the last."""
        per_page = max(1, min(per_page, 200))
        requests = matching(filters, self.zone)
        async with self._sessions() as session:
            total = int(await session.scalar(select(func.count()).select_from(requests.subquery())) or 0)
            pages = max(1, -(-total // per_page))
            page = max(1, min(page, pages))
            ids = list(await session.scalars(
                requests.order_by(*order_by(sort)).limit(per_page).offset((page - 1) * per_page)
            ))
            rows = await _rows(session, ids) if ids else []
        return Page(rows=rows, total=total, page=page, per_page=per_page)

    async def matching_shown(self, filters: Filters) -> list[int]:
        """The shown tweets of the answered requests ``filters`` selects: what a decision on
        "every tweet that matches" covers (the review queue's items, as the counters count)."""
        async with self._sessions() as session:
            return list(await session.scalars(self._shown_of(filters).order_by(Generation.id)))

    async def count_matching_shown(self, filters: Filters) -> int:
        """How many :meth:`matching_shown` would return."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(self._shown_of(filters).subquery())) or 0)

    def _shown_of(self, filters: Filters) -> Any:
        return (
            select(Generation.id)
            .join(Request, Request.id == Generation.request_id)
            .where(Generation.shown.is_(True), Request.status == "ok",
                   Request.id.in_(matching(filters, self.zone)))
        )

    async def next_pending(
        self, skip: Sequence[int] = (), admin: str | None = None, claim: timedelta = timedelta(minutes=5)
    ) -> Detail | None:
        """The oldest shown tweet nobody has reviewed yet and nobody else is reviewing.

        With ``admin``, it is claimed for them for ``claim`` (their own running claim comes
        first, so a reload shows the same tweet): a conditional UPDATE, so of two admins asking
        at once each gets a different tweet. ``skip`` leaves some out.
        """
        for _ in range(20):  # another admin may win a race; the next candidate is tried then
            now = utcnow()
            async with self._sessions() as session:
                found = (await session.execute(_queue_query(now, skip, admin))).first()
            if found is None:
                return None
            generation_id, request_id = found
            if admin is not None:
                async with self._sessions.begin() as session:
                    claimed = await session.execute(
                        update(Generation)
                        .where(Generation.id == generation_id, Generation.review_status == "pending",
                               _free(now, admin))
                        .values(claimed_by=admin, claimed_until=now + claim)
                    )
                if not claimed.rowcount:
                    continue
            return await self.detail(int(request_id))
        return None

    async def release(self, generation_id: int, admin: str) -> None:
        """Give up ``admin``'s claim on a tweet (skipping it), so another admin may take it."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Generation)
                .where(Generation.id == generation_id, Generation.claimed_by == admin)
                .values(claimed_by=None, claimed_until=None)
            )

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
        if not 0 < request_id <= MAX_ID:
            return None
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
                    reviews[review.generation_id].append(ReviewInfo(
                        review.admin, review.decision, review.note, review.created_at, review.reason,
                        review.audit_id,
                    ))
        now = utcnow()
        return Detail(
            request_id=request.id,
            created_at=request.created_at,
            finished_at=request.finished_at,
            platform=request.platform,
            user=user.display_name if user else "",
            user_ref=f"{user.platform}:{user.external_id}" if user else "",
            user_banned=bool(user and user.banned),
            chat=chat_name(chat),
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
                    claimed_by=(g.claimed_by or "") if _running(g.claimed_until, now) else "",
                    claimed_until=g.claimed_until if _running(g.claimed_until, now) else None,
                )
                for g in generations
            ],
        )

    async def request_of(self, generation_id: int) -> int | None:
        if not 0 < generation_id <= MAX_ID:
            return None
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

    def export_rows(self, filters: Filters) -> AsyncIterator[dict[str, Any]]:
        """Every filtered request's tweets with what reproduces and judges them, oldest first."""
        return export_rows(self._sessions, filters, self.zone)

    async def stats(self, filters: Filters) -> Stats:
        return await stats(self._sessions, filters, self.zone)

    async def audit_trail(self, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` audit entries."""
        return list((await self.audit_page(AuditFilters(), 1, limit)).entries)

    async def audit_page(self, filters: AuditFilters, page: int = 1, per_page: int = 50) -> AuditPage:
        return await audit_page(self._sessions, filters, page, per_page, self.zone)

    # -- acting --------------------------------------------------------------------------------

    async def decide(
        self, generation_ids: Iterable[int], decision: str, admin: str, note: str = "",
        reason: str = "", client: str = "",
    ) -> Decided:
        """Record ``decision`` on each existing generation; returns the ids it applied to.

        Each generation gets a review row (its history); the decision, whatever it covered, one
        audit entry. ``reason`` (a :data:`REJECT_REASONS` code) goes with a rejection only.
        """
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}")
        if reason and (decision != "rejected" or reason not in REASON_NAMES):
            raise ValueError(f"reason {reason!r} does not go with {decision!r}")
        wanted = _ids(generation_ids)
        if not wanted:
            return Decided([])
        async with self._sessions.begin() as session:
            found = list(await session.scalars(select(Generation.id).where(Generation.id.in_(wanted))))
            return await _record(session, {g: decision for g in found}, {g: reason for g in found},
                                 admin, note, client)

    async def approve_shown(self, generation_ids: Iterable[int], admin: str, note: str = "",
                            client: str = "") -> Decided:
        """For each request of these tweets: approve the tweet users saw and reject the other
        candidates (reason :data:`NOT_CHOSEN`); one audit entry. Returns every id decided."""
        wanted = _ids(generation_ids)
        if not wanted:
            return Decided([])
        async with self._sessions.begin() as session:
            requests = select(Generation.request_id).where(Generation.id.in_(wanted))
            rows = (await session.execute(
                select(Generation.id, Generation.shown)
                .join(Request, Request.id == Generation.request_id)
                .where(Generation.request_id.in_(requests), Request.status == "ok")
            )).all()
            decisions = {g: "approved" if shown else "rejected" for g, shown in rows}
            reasons = {g: "" if shown else NOT_CHOSEN for g, shown in rows}
            return await _record(session, decisions, reasons, admin, note, client, bulk="approve_shown")

    async def undo(self, audit_id: int, admin: str, client: str = "") -> list[int] | None:
        """Take back the decision of audit entry ``audit_id``: each of its tweets returns to
        its state before, unless someone decided on it since (that later decision stands).
        Returns the tweets restored; None when the entry is not a decision."""
        if not 0 < audit_id <= MAX_ID:
            return None
        async with self._sessions.begin() as session:
            entry = await session.get(AuditEntry, audit_id)
            if entry is None or entry.action != "review":
                return None
            before = {int(k): str(v) for k, v in (entry.detail or {}).get("before", {}).items()}
            latest = await _latest_reviews(session, list(before))
            restored = sorted(g for g, review_audit in latest.items() if review_audit == audit_id)
            now = utcnow()
            undo = AuditEntry(created_at=now, admin=admin[:128], action="undo", target=f"audit:{audit_id}",
                              detail=_with_client({"ids": restored}, client))
            session.add(undo)
            await session.flush()
            for generation_id in restored:
                await session.execute(
                    update(Generation).where(Generation.id == generation_id)
                    .values(review_status=before[generation_id])
                )
                session.add(Review(generation_id=generation_id, admin=admin, decision=UNDONE,
                                   note=f"deshace la entrada {audit_id}", created_at=now, audit_id=undo.id))
        return restored

    async def set_banned(self, platform: str, external_id: str, banned: bool, admin: str,
                         client: str = "") -> bool:
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
                    detail=_with_client({}, client),
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

    async def mark_published(self, generation_id: int, admin: str, destinations: list[str],
                             client: str = "") -> None:
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
                    detail=_with_client({"to": destinations}, client),
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


# -- helpers -----------------------------------------------------------------------------------


def chat_name(chat: Chat | None) -> str:
    return (chat.title or f"{chat.kind} {chat.external_id}") if chat else ""


def _ids(values: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in values if 0 < int(i) <= MAX_ID})


def _with_client(detail: dict[str, Any], client: str) -> dict[str, Any]:
    return {**detail, "client": client} if client else detail


def _running(until: datetime | None, now: datetime) -> bool:
    if until is None:
        return False
    return (until if until.tzinfo else until.replace(tzinfo=UTC)) > now


def _free(now: datetime, admin: str | None) -> Any:
    """Nobody else's claim is running on the current ``Generation`` row."""
    free = or_(Generation.claimed_until.is_(None), Generation.claimed_until <= now)
    return or_(free, Generation.claimed_by == admin) if admin else free


def _queue_query(now: datetime, skip: Sequence[int], admin: str | None) -> Any:
    """The next tweet to review: ``admin``'s own running claim first, then the oldest free one."""
    query = (
        select(Generation.id, Generation.request_id)
        .join(Request, Request.id == Generation.request_id)
        .where(Generation.review_status == "pending", Generation.shown.is_(True), Request.status == "ok",
               _free(now, admin))
    )
    if skip:
        query = query.where(Generation.id.not_in([int(g) for g in skip]))
    mine = [case((Generation.claimed_by == admin, 0), else_=1)] if admin else []  # NULL-proof
    return query.order_by(*mine, Generation.created_at, Generation.id).limit(1)


async def _record(
    session: AsyncSession, decisions: Mapping[int, str], reasons: Mapping[int, str], admin: str,
    note: str, client: str, bulk: str = "",
) -> Decided:
    """Write one decision over ``decisions`` (tweet → state): its audit entry (with each tweet's
    state before, for undo), a review row per tweet, the new states, and claims released."""
    if not decisions:
        return Decided([])
    ids = sorted(decisions)
    note = note.strip()[:2000]
    before = dict((await session.execute(
        select(Generation.id, Generation.review_status).where(Generation.id.in_(ids))
    )).all())
    now = utcnow()
    kinds = set(decisions.values())
    detail: dict[str, Any] = {
        "decision": bulk or next(iter(kinds)), "note": note, "ids": ids,
        "before": {str(g): before[g] for g in ids},
    }
    if bulk:
        detail["decisions"] = {str(g): decisions[g] for g in ids}
    if any(reasons.values()):
        detail["reason"] = next(r for r in reasons.values() if r)
    entry = AuditEntry(
        created_at=now, admin=admin[:128], action="review",
        target=f"generation:{ids[0]}" if len(ids) == 1 else f"generations:{len(ids)}",
        detail=_with_client(detail, client),
    )
    session.add(entry)
    await session.flush()
    for state in kinds:
        chosen = [g for g in ids if decisions[g] == state]
        await session.execute(
            update(Generation).where(Generation.id.in_(chosen))
            .values(review_status=state, claimed_by=None, claimed_until=None)
        )
    for generation_id in ids:
        session.add(Review(generation_id=generation_id, admin=admin[:128], decision=decisions[generation_id],
                           note=note, reason=reasons.get(generation_id, ""), created_at=now,
                           audit_id=entry.id))
    return Decided(ids, entry.id)


async def _latest_reviews(session: AsyncSession, ids: list[int]) -> dict[int, int | None]:
    """Each tweet's latest review's audit entry id."""
    if not ids:
        return {}
    newest = (
        select(func.max(Review.id)).where(Review.generation_id.in_(ids)).group_by(Review.generation_id)
    )
    rows = await session.execute(select(Review.generation_id, Review.audit_id).where(Review.id.in_(newest)))
    return dict(rows.all())


async def _rows(session: AsyncSession, ids: list[int]) -> list[Row]:
    """The list's rows of requests ``ids``, in that order, the shown tweet first in each."""
    query = (
        select(
            Request.id, Generation.id, Request.created_at, Request.platform, Author.display_name,
            Author.external_id, Request.model, Request.side, Request.coalition, Request.party,
            Request.sentiment, Request.status, Request.error, Generation.text, Generation.review_status,
            Generation.shown, vote_count(1), vote_count(-1), Generation.score, Chat,
            Generation.claimed_by, Generation.claimed_until, Generation.candidate,
        )
        .select_from(Request)
        .outerjoin(Generation, Generation.request_id == Request.id)
        .outerjoin(Author, Author.id == Request.user_id)
        .outerjoin(Chat, Chat.id == Request.chat_id)
        .where(Request.id.in_(ids))
    )
    position = {request_id: index for index, request_id in enumerate(ids)}
    now = utcnow()
    found = sorted((await session.execute(query)).all(),
                   key=lambda r: (position[r[0]], not r[15], r[22] if r[22] is not None else 0))
    return [
        Row(
            request_id=r[0], generation_id=r[1], created_at=r[2], platform=r[3], user=r[4] or r[5] or "",
            model=r[6], side=r[7], coalition=r[8], party=r[9], sentiment=r[10], status=r[11], error=r[12],
            text=r[13], review_status=r[14], shown=bool(r[15]), up=int(r[16] or 0), down=int(r[17] or 0),
            score=r[18], chat=chat_name(r[19]),
            claimed_by=(r[20] or "") if _running(r[21], now) else "",
        )
        for r in found
    ]


async def _votes(session: AsyncSession, ids: list[int]) -> dict[int, tuple[int, int]]:
    if not ids:
        return {}
    query = (
        select(Generation.id, vote_count(1), vote_count(-1)).where(Generation.id.in_(ids))
    )
    return {g: (int(u or 0), int(d or 0)) for g, u, d in await session.execute(query)}
