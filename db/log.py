"""The generation log: every request, from arrival (``pending``) to its answer, and every tweet.

Knows nothing of bots: callers pass primitive values. Every write is a *record* (a plain,
JSON-able dict) applied by :func:`apply` in its own committed transaction, so that a write can
be stored elsewhere while the database is down and replayed later exactly as it would have run
(``db/spool.py`` wraps :meth:`GenerationLog.write`). Each record carries its own timestamp
(``at``) for the same reason.

Answered once: ``begin`` recognises a message the platform delivers again (its ``source``), and
a request carries a lease (``lease_until``, held by ``lease_holder``: one random id per log, so
per process) so that of several processes only the one that holds it answers;
:meth:`GenerationLog.claim` takes an ended one over in one conditional UPDATE. Leases are short
heartbeats: the holder renews the ones it holds every few seconds (:meth:`GenerationLog.renew`,
run by ``db/leases.py``), so a dead holder's requests are free within seconds while a slow live
one keeps its own; a holder whose request was taken over meanwhile is told so by ``finish``
(:class:`LeaseLost`) and does not answer it too.

Delivered once: a request's answer goes into one platform message, logged before the tweet
exists (``hold``: a Telegram placeholder, a Discord deferred response), so whoever delivers it
(this process, a restart or a live peer) edits that message, and a delivery repeated after a
crash shows the same single tweet. ``answered_at`` is set once the answer reached the platform
(``mark_sent`` for a tweet, ``answered`` for anything else); until then the holder keeps the
lease, and a finished request whose holder died is :meth:`GenerationLog.unanswered`, for a live
process to :meth:`GenerationLog.claim` and deliver. ``mark_sending`` guards the one delivery that
cannot be repeated safely: a tweet sent as a new message because no placeholder exists.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from db.engine import create_engine
from db.models import Chat, Generation, Rating, Request, User, utcnow
from db.spool import Spool, is_connection_error


@dataclass(frozen=True)
class NewGeneration:
    """A candidate tweet to store with a finished request (``shown``: the one users saw)."""

    text: str
    tokens: int = 0
    latency_ms: float = 0.0
    seed: int | None = None
    shown: bool = True
    #: The ranker's score and its parts (None: not ranked).
    score: float | None = None
    score_detail: dict[str, float] | None = None


class LeaseLost(Exception):
    """The request was taken over by another process (this one's lease had ended): that one
    answers it, so this one must not."""


@dataclass(frozen=True)
class Begun:
    """What ``begin`` logged: the request's id, and whether its message was logged before (the
    platform delivered it again, e.g. after a crash), in which case ``id`` is the earlier one."""

    id: int
    duplicate: bool = False


@dataclass(frozen=True)
class LoggedRequest:
    """A request as stored, with what a restarted bot needs to answer it."""

    id: int
    created_at: datetime
    platform: str
    user_external_id: str
    user_name: str
    chat_external_id: str
    chat_kind: str
    chat_title: str
    raw_command: str
    status: str
    controls: dict[str, Any]
    model: str
    seed: int | None
    reply_to: dict[str, Any]
    parent_id: int | None
    generation_ids: tuple[int, ...] = ()
    source: str | None = None
    lease_until: datetime | None = None
    #: The platform message the answer goes into (``hold``), "" when none was logged.
    answer_ref: str = ""
    #: What was said to the user for a refusal, or why generating failed.
    error: str = ""


@dataclass(frozen=True)
class LoggedGeneration:
    """A stored tweet with the request it answered."""

    id: int
    request_id: int
    text: str
    seed: int | None
    tokens: int
    latency_ms: float
    shown: bool
    review_status: str
    message_ref: str
    created_at: datetime
    platform: str
    user_external_id: str
    chat_external_id: str
    model: str
    controls: dict[str, Any] = field(default_factory=dict)
    side: str = ""
    coalition: str = ""
    party: str = ""
    sentiment: str = ""
    request_latency_ms: float | None = None


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _text(value: str, limit: int | None = None) -> str:
    """Text as every database accepts it: PostgreSQL refuses NUL characters."""
    cleaned = value.replace("\x00", "\ufffd")
    return cleaned[:limit] if limit else cleaned


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["at"]) if record.get("at") else utcnow()


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds a live lease on the request: none, or one that has ended."""
    return or_(Request.lease_until.is_(None), Request.lease_until < now)


def _unanswered() -> ColumnElement[bool]:
    """Finished (not pending, not given up) but its answer never reached the platform."""
    return Request.status.not_in(("pending", "expired")) & Request.answered_at.is_(None)


# -- writes: one function per record kind ------------------------------------------------------


async def _user(session: AsyncSession, platform: str, external_id: str, name: str, at: datetime) -> User:
    """The user row, created on first sight (a concurrent creator wins cleanly)."""
    query = select(User).where(User.platform == platform, User.external_id == external_id)
    user = await session.scalar(query)
    if user is None:
        try:
            async with session.begin_nested():
                user = User(platform=platform, external_id=external_id,
                            display_name=_text(name, 256), first_seen=at, last_seen=at)
                session.add(user)
        except IntegrityError:
            user = await session.scalar(query)
            assert user is not None
    user.last_seen = at
    if name:
        user.display_name = _text(name, 256)
    return user


async def _chat(session: AsyncSession, platform: str, external_id: str, kind: str, title: str,
                at: datetime) -> Chat:
    query = select(Chat).where(Chat.platform == platform, Chat.external_id == external_id)
    chat = await session.scalar(query)
    if chat is None:
        try:
            async with session.begin_nested():
                chat = Chat(platform=platform, external_id=external_id, kind=kind,
                            title=_text(title, 256), first_seen=at)
                session.add(chat)
        except IntegrityError:
            chat = await session.scalar(query)
            assert chat is not None
    if title:
        chat.title = _text(title, 256)
    return chat


async def _logged_source(session: AsyncSession, platform: str, source: str | None) -> Begun | None:
    if not source:
        return None
    found = await session.scalar(select(Request.id).where(Request.platform == platform, Request.source == source))
    return Begun(found, duplicate=True) if found is not None else None


async def _begin(session: AsyncSession, r: dict[str, Any]) -> Begun:
    """Log a command as pending, unless its message (``source``) is logged already."""
    at, platform, source = _at(r), r["platform"], r.get("source") or None
    if (earlier := await _logged_source(session, platform, source)) is not None:
        return earlier
    user = await _user(session, platform, r["user_external_id"], r.get("user_name", ""), at)
    chat = await _chat(session, platform, r["chat_external_id"], r.get("chat_kind", "private"),
                       r.get("chat_title", ""), at)
    request = Request(
        created_at=at, platform=platform, user_id=user.id, chat_id=chat.id,
        raw_command=_text(r["raw_command"]), reply_to=r.get("reply_to") or {},
        parent_id=r.get("parent_id"), status="pending", source=source,
        lease_until=_moment(r.get("lease_until")), lease_holder=r.get("holder"),
    )
    try:
        async with session.begin_nested():
            session.add(request)
            await session.flush()
    except IntegrityError:
        # Another process logged the same message a moment ago (a re-delivered webhook).
        if (earlier := await _logged_source(session, platform, source)) is None:
            raise
        return earlier
    return Begun(request.id)


async def _finish(session: AsyncSession, r: dict[str, Any]) -> list[int] | None:
    """Store a request's outcome and tweets; None (nothing stored) when another process holds
    the request now: it took it over after this one's lease ended, and answers it itself."""
    at = _at(r)
    request = await session.get(Request, r["request_id"])
    if request is None:
        raise LookupError(f"no request {r['request_id']}")
    if r.get("holder") and request.lease_holder not in (None, r["holder"]):
        return None
    for key in ("status", "controls", "side", "coalition", "party", "sentiment", "model", "prompt",
                "params", "seed", "error", "queue_ms", "latency_ms"):
        if key in r:
            value = r[key]
            setattr(request, key, _text(value) if isinstance(value, str) else value)
    request.finished_at = at
    rows = [
        Generation(request_id=request.id, created_at=at, candidate=index, text=_text(g["text"]),
                   tokens=g.get("tokens", 0), latency_ms=g.get("latency_ms", 0.0),
                   seed=g.get("seed"), shown=g.get("shown", True), score=g.get("score"),
                   score_detail=g.get("score_detail"))
        for index, g in enumerate(r.get("generations", ()))
    ]
    session.add_all(rows)
    await session.flush()
    return [row.id for row in rows]


async def _release(session: AsyncSession, r: dict[str, Any]) -> bool:
    """Drop the lease of a request not yet answered, so that any process may answer it at once."""
    result = await session.execute(
        update(Request).where(Request.id == r["request_id"], Request.answered_at.is_(None))
        .values(lease_until=None, lease_holder=None)
    )
    return bool(result.rowcount)


async def _hold(session: AsyncSession, r: dict[str, Any]) -> bool:
    """Record the message the answer goes into, unless one is recorded already."""
    result = await session.execute(
        update(Request).where(Request.id == r["request_id"], Request.answer_ref == "")
        .values(answer_ref=str(r["ref"])[:128])
    )
    return bool(result.rowcount)


async def _answered(session: AsyncSession, r: dict[str, Any]) -> bool:
    """Mark a request's answer (a refusal, an error) as delivered."""
    result = await session.execute(
        update(Request).where(Request.id == r["request_id"], Request.answered_at.is_(None))
        .values(answered_at=_at(r))
    )
    return bool(result.rowcount)


async def _mark_sending(session: AsyncSession, r: dict[str, Any]) -> bool:
    """Mark a tweet as being sent; False when it already was (so it is not sent again)."""
    result = await session.execute(
        update(Generation).where(Generation.id == r["generation_id"], Generation.sending_at.is_(None))
        .values(sending_at=_at(r))
    )
    return bool(result.rowcount)


async def _mark_sent(session: AsyncSession, r: dict[str, Any]) -> bool:
    """Store where a tweet was delivered; its request is answered by it."""
    at = _at(r)
    generation = await session.get(Generation, r["generation_id"])
    if generation is None:
        return False
    generation.message_ref, generation.sent_at = str(r["message_ref"])[:128], at
    await session.execute(
        update(Request).where(Request.id == generation.request_id, Request.answered_at.is_(None))
        .values(answered_at=at)
    )
    return True


async def _rate(session: AsyncSession, r: dict[str, Any]) -> bool:
    if await session.get(Generation, r["generation_id"]) is None:
        return False
    at = _at(r)
    user = await _user(session, r["platform"], r["user_external_id"], r.get("user_name", ""), at)
    query = select(Rating).where(Rating.generation_id == r["generation_id"], Rating.user_id == user.id)
    rating = await session.scalar(query)
    if rating is None:
        try:
            async with session.begin_nested():
                session.add(Rating(generation_id=r["generation_id"], user_id=user.id,
                                   value=r["value"], created_at=at))
            return True
        except IntegrityError:
            rating = await session.scalar(query)
            assert rating is not None
    rating.value, rating.created_at = r["value"], at
    return True


async def _expire(session: AsyncSession, r: dict[str, Any]) -> int:
    """Mark pending requests ``expired``: one (``request_id``) or all older than ``before``."""
    query = update(Request).where(Request.status == "pending")
    if r.get("request_id") is not None:
        query = query.where(Request.id == r["request_id"])
    if r.get("before"):
        query = query.where(Request.created_at < datetime.fromisoformat(r["before"]))
    if r.get("platform"):
        query = query.where(Request.platform == r["platform"])
    result = await session.execute(query.values(status="expired", finished_at=_at(r)))
    return int(result.rowcount or 0)


Writer = Callable[[AsyncSession, dict[str, Any]], Awaitable[Any]]
#: Record kind → the function that applies it. Replaying a record means calling :func:`apply`.
WRITERS: dict[str, Writer] = {
    "begin": _begin, "finish": _finish, "mark_sent": _mark_sent, "rate": _rate, "expire": _expire,
    "release": _release, "mark_sending": _mark_sending, "hold": _hold, "answered": _answered,
}


async def apply(kind: str, record: dict[str, Any], session: AsyncSession) -> Any:
    """Apply one write record inside ``session``'s transaction (the caller commits)."""
    return await WRITERS[kind](session, record)


class GenerationLog:
    """Reads and writes of the log; every write is committed before the method returns."""

    def __init__(self, engine: AsyncEngine, spool_path: str | None = None) -> None:
        self.engine = engine
        #: Whose leases this log's writes take and renew: one id per log (one log per process).
        self.holder = uuid.uuid4().hex
        #: Requests this log holds a lease on → when it took them (monotonic), for :meth:`renew`.
        self._held: dict[int, float] = {}
        #: Where ``db/spool.py`` keeps records while the database is unreachable.
        self.spool_path = spool_path
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.spool = Spool(spool_path, self.sessions, apply) if spool_path else None

    @classmethod
    async def open(cls, url: str, spool_path: str | None = None, echo: bool = False) -> GenerationLog:
        """Connect to ``url`` (the schema must exist: see ``db.migrate.upgrade``)."""
        return cls(create_engine(url, echo=echo), spool_path)

    async def aclose(self) -> None:
        if self.spool is not None:
            await self.spool.aclose()
        await self.engine.dispose()

    async def write(self, kind: str, record: dict[str, Any]) -> Any:
        """Apply one record in its own transaction and commit it (or spool it: db/spool.py)."""
        if self.spool is not None:
            return await self.spool.write(kind, record)
        async with self.sessions() as session, session.begin():
            return await apply(kind, record, session)

    # -- writes ------------------------------------------------------------------------------

    async def begin(
        self, platform: str, user_external_id: str, user_name: str, chat_external_id: str,
        chat_kind: str, chat_title: str, raw_command: str, reply_to: dict[str, Any] | None = None,
        parent_id: int | None = None, *, source: str | None = None, lease_s: float | None = None,
    ) -> Begun:
        """Log an incoming command as ``pending`` (committed), leased for ``lease_s`` seconds.

        A ``source`` (the platform's identity of the message) already logged is not logged
        again: the earlier request comes back marked ``duplicate``. While the database is down
        (spooled) a duplicate cannot be recognised, and the request id is provisional.
        """
        now = utcnow()
        result = await self.write("begin", {
            "at": now.isoformat(), "platform": platform, "user_external_id": str(user_external_id),
            "user_name": user_name, "chat_external_id": str(chat_external_id), "chat_kind": chat_kind,
            "chat_title": chat_title, "raw_command": raw_command, "reply_to": dict(reply_to or {}),
            "parent_id": parent_id, "source": source[:128] if source else None,
            "lease_until": (now + timedelta(seconds=lease_s)).isoformat() if lease_s is not None else None,
            "holder": self.holder if lease_s is not None else None,
        })
        begun = result if isinstance(result, Begun) else Begun(result)
        if lease_s is not None and not begun.duplicate:  # a provisional id too (db/spool.py)
            self._held[begun.id] = time.monotonic()
        return begun

    async def claim(self, request_id: int, lease_s: float, *, finished: bool = False) -> bool:
        """Take a request over to answer it: True for exactly one of several processes trying.

        One conditional UPDATE: the request must still be pending (``finished``: finished but
        not yet answered) with no live lease (none, or one that ended); the winner's lease lasts
        ``lease_s``. Never spooled: without the database nobody can tell whether another process
        holds the request, so this raises.
        """
        now = utcnow()
        state = _unanswered() if finished else Request.status == "pending"
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Request)
                .where(Request.id == request_id, state, _free(now))
                .values(lease_until=now + timedelta(seconds=lease_s), lease_holder=self.holder)
            )
        won = result.rowcount == 1
        if won:
            self._held[request_id] = time.monotonic()
        return won

    async def renew(self, lease_s: float, max_hold_s: float) -> int:
        """Extend by ``lease_s`` the leases this process still holds on requests not yet
        answered (the heartbeat); returns how many. One UPDATE filtered on this log's id, so a
        lease another process took over is never extended. A request held for over
        ``max_hold_s`` (longer than answering can take: its handler is stuck) is no longer
        renewed, so another may take it. Never spooled: a renewal that cannot reach the
        database raises."""
        now, clock = utcnow(), time.monotonic()
        for request_id, since in list(self._held.items()):
            if clock - since > max_hold_s:
                del self._held[request_id]
            elif request_id < 0 and (real := self._resolve(request_id)) > 0:
                # Begun while the database was down: its begin has been replayed since.
                self._held[real] = self._held.pop(request_id)
        held = [request_id for request_id in self._held if request_id > 0]
        if not held:
            return 0
        async with self.sessions() as session, session.begin():
            renewed = set((await session.scalars(
                update(Request)
                .where(Request.id.in_(held), Request.lease_holder == self.holder,
                       Request.answered_at.is_(None))
                .values(lease_until=now + timedelta(seconds=lease_s))
                .returning(Request.id)
            )).all())
        for request_id in set(held) - renewed:  # answered, released or taken over
            self._held.pop(request_id, None)
        return len(renewed)

    def holds(self, request_id: int) -> bool:
        """Whether this process is answering the request (it must not take it over from itself:
        one begun during a database outage may look free once its begin is replayed)."""
        return request_id in self._held or any(self._resolve(held) == request_id for held in self._held if held < 0)

    def _resolve(self, request_id: int) -> int:
        return self.spool.resolve(request_id) if self.spool is not None else request_id

    async def release(self, request_id: int) -> bool:
        """Give up the lease on a request not yet answered (shutting down, or a delivery that
        failed for now), so that any live process may answer it at once."""
        self._held.pop(request_id, None)
        return bool(await self.write("release", {"at": utcnow().isoformat(), "request_id": request_id}))

    async def release_held(self) -> int:
        """Give up every lease this process still holds (a clean stop): its peers take the
        requests over at their next look instead of when the leases run out."""
        released = 0
        for request_id in list(self._held):
            released += await self.release(request_id)
        return released

    async def hold(self, request_id: int, ref: str) -> bool:
        """Record the platform message the answer will go into (before the tweet exists); False
        when one was recorded already (that one stays)."""
        return bool(await self.write("hold", {"at": utcnow().isoformat(), "request_id": request_id, "ref": ref}))

    async def answered(self, request_id: int) -> bool:
        """Record that a request's answer (a refusal, an error: not a tweet, which
        :meth:`mark_sent` records) reached the platform; the lease is let go."""
        self._held.pop(request_id, None)
        return bool(await self.write("answered", {"at": utcnow().isoformat(), "request_id": request_id}))

    async def mark_sending(self, generation_id: int) -> bool:
        """Record that a tweet is about to be sent; False if that was recorded before (by another
        process resending it), in which case it must not be sent."""
        return bool(await self.write("mark_sending", {"at": utcnow().isoformat(), "generation_id": generation_id}))

    async def finish(
        self, request_id: int, status: str, *, controls: dict[str, Any] | None = None,
        side: str = "", coalition: str = "", party: str = "", sentiment: str = "", model: str = "",
        prompt: str = "", params: dict[str, Any] | None = None, seed: int | None = None,
        error: str = "", queue_ms: float | None = None, latency_ms: float | None = None,
        generations: list[NewGeneration] | None = None,
    ) -> list[int]:
        """Record a request's outcome and its tweets (committed); returns the tweets' ids.

        Raises :class:`LeaseLost`, storing nothing, when another process has taken the request
        over (this one's lease ended, e.g. the database was out of reach for a while). The lease
        is kept (and renewed) until the answer is delivered (:meth:`mark_sent`, :meth:`answered`).
        """
        ids = await self.write("finish", {
            "at": utcnow().isoformat(), "request_id": request_id, "status": status,
            "controls": dict(controls or {}), "side": side, "coalition": coalition, "party": party,
            "sentiment": sentiment, "model": model, "prompt": prompt, "params": dict(params or {}),
            "seed": seed, "error": error, "queue_ms": queue_ms, "latency_ms": latency_ms,
            "generations": [asdict(g) for g in generations or ()], "holder": self.holder,
        })
        if ids is None:
            self._held.pop(request_id, None)
            raise LeaseLost(f"request {request_id} was taken over by another process")
        return ids

    async def mark_sent(self, generation_id: int, message_ref: str, request_id: int | None = None) -> bool:
        """Store the platform message that carried a tweet, which answers its request (the
        lease on ``request_id`` is let go); False for an unknown tweet."""
        if request_id is not None:
            self._held.pop(request_id, None)
        return await self.write("mark_sent", {
            "at": utcnow().isoformat(), "generation_id": generation_id, "message_ref": message_ref,
        })

    async def rate(self, platform: str, user_external_id: str, generation_id: int, value: int,
                   user_name: str = "") -> bool:
        """A user's 👍 (+1) or 👎 (-1), replacing their earlier one; False for an unknown tweet."""
        return await self.write("rate", {
            "at": utcnow().isoformat(), "platform": platform, "user_external_id": str(user_external_id),
            "user_name": user_name, "generation_id": generation_id, "value": 1 if value > 0 else -1,
        })

    async def expire(self, request_id: int) -> bool:
        """Give up on one pending request (it will not be answered)."""
        return bool(await self.write("expire", {"at": utcnow().isoformat(), "request_id": request_id}))

    async def expire_older_than(self, max_age_s: float, platform: str | None = None) -> int:
        """Give up on pending requests older than ``max_age_s``; returns how many."""
        now = utcnow()
        return await self.write("expire", {
            "at": now.isoformat(), "before": (now - timedelta(seconds=max_age_s)).isoformat(),
            "platform": platform,
        })

    # -- reads -------------------------------------------------------------------------------

    @staticmethod
    def _request_query() -> Select[tuple[Request, User, Chat]]:
        return (
            select(Request, User, Chat)
            .outerjoin(User, Request.user_id == User.id)
            .outerjoin(Chat, Request.chat_id == Chat.id)
        )

    @staticmethod
    def _logged_request(request: Request, user: User | None, chat: Chat | None,
                        generation_ids: tuple[int, ...] = ()) -> LoggedRequest:
        return LoggedRequest(
            id=request.id, created_at=_aware(request.created_at), platform=request.platform,
            user_external_id=user.external_id if user else "", user_name=user.display_name if user else "",
            chat_external_id=chat.external_id if chat else "", chat_kind=chat.kind if chat else "",
            chat_title=chat.title if chat else "", raw_command=request.raw_command,
            status=request.status, controls=dict(request.controls or {}), model=request.model,
            seed=request.seed, reply_to=dict(request.reply_to or {}), parent_id=request.parent_id,
            generation_ids=generation_ids, source=request.source, lease_until=_aware(request.lease_until),
            answer_ref=request.answer_ref or "", error=request.error or "",
        )

    async def request(self, request_id: int) -> LoggedRequest | None:
        request_id = self.spool.resolve(request_id) if self.spool else request_id
        async with self.sessions() as session:
            row = (await session.execute(self._request_query().where(Request.id == request_id))).first()
            if row is None:
                return None
            ids = tuple((await session.scalars(
                select(Generation.id).where(Generation.request_id == request_id).order_by(Generation.candidate)
            )).all())
            return self._logged_request(*row, generation_ids=ids)

    async def last_request(self, platform: str, user_external_id: str, chat_external_id: str,
                           status: str = "ok") -> LoggedRequest | None:
        """The user's latest request in that chat with ``status`` (what ``/otra`` repeats)."""
        async with self.sessions() as session:
            query = (
                self._request_query()
                .where(Request.platform == platform, User.external_id == str(user_external_id),
                       Chat.external_id == str(chat_external_id), Request.status == status)
                .order_by(Request.id.desc()).limit(1)
            )
            row = (await session.execute(query)).first()
            return self._logged_request(*row) if row else None

    async def pending(self, max_age_s: float | None = None, platform: str | None = None, *,
                      free: bool = False) -> list[LoggedRequest]:
        """Requests still ``pending`` (unanswered, e.g. after a crash), oldest first; ``free``:
        only those nobody holds a live lease on (what a process may claim now)."""
        query = self._request_query().where(Request.status == "pending")
        if max_age_s is not None:
            query = query.where(Request.created_at >= utcnow() - timedelta(seconds=max_age_s))
        if platform:
            query = query.where(Request.platform == platform)
        if free:
            query = query.where(_free(utcnow()))
        async with self.sessions() as session:
            rows = (await session.execute(query.order_by(Request.id))).all()
            return [self._logged_request(*row) for row in rows]

    async def unanswered(self, max_age_s: float, platform: str | None = None) -> list[LoggedRequest]:
        """Finished requests younger than ``max_age_s`` whose answer never reached the platform
        and that nobody holds a live lease on (their holder died between storing the answer and
        delivering it), oldest first. A tweet's request carries that tweet as its only
        ``generation_ids``. Left out: a tweet sent as a new message whose send began (no
        placeholder to edit, so sending it again could show it twice)."""
        now = utcnow()
        query = (
            select(Request, User, Chat, Generation.id)
            .outerjoin(Generation, (Generation.request_id == Request.id) & Generation.shown.is_(True))
            .outerjoin(User, Request.user_id == User.id)
            .outerjoin(Chat, Request.chat_id == Chat.id)
            .where(_unanswered(), _free(now), Request.created_at >= now - timedelta(seconds=max_age_s),
                   or_(Generation.sending_at.is_(None), Request.answer_ref != ""))
        )
        if platform:
            query = query.where(Request.platform == platform)
        async with self.sessions() as session:
            rows = (await session.execute(query.order_by(Request.id))).all()
        return [self._logged_request(request, user, chat, () if gid is None else (gid,))
                for request, user, chat, gid in rows]

    async def generation(self, generation_id: int) -> LoggedGeneration | None:
        generation_id = self.spool.resolve(generation_id) if self.spool else generation_id
        author, place = aliased(User), aliased(Chat)
        query = (
            select(Generation, Request, author, place)
            .join(Request, Generation.request_id == Request.id)
            .outerjoin(author, Request.user_id == author.id)
            .outerjoin(place, Request.chat_id == place.id)
            .where(Generation.id == generation_id)
        )
        async with self.sessions() as session:
            row = (await session.execute(query)).first()
        if row is None:
            return None
        gen, request, user, chat = row
        return LoggedGeneration(
            id=gen.id, request_id=request.id, text=gen.text, seed=gen.seed, tokens=gen.tokens,
            latency_ms=gen.latency_ms, shown=gen.shown, review_status=gen.review_status,
            message_ref=gen.message_ref, created_at=_aware(gen.created_at), platform=request.platform,
            user_external_id=user.external_id if user else "",
            chat_external_id=chat.external_id if chat else "", model=request.model,
            controls=dict(request.controls or {}), side=request.side, coalition=request.coalition,
            party=request.party, sentiment=request.sentiment, request_latency_ms=request.latency_ms,
        )

    async def generation_by_message(self, platform: str, message_ref: str) -> LoggedGeneration | None:
        """The tweet a platform message shows (``message_ref`` as ``mark_sent`` stored it, e.g.
        Telegram's ``chat_id:message_id``, or the placeholder it was edited into, logged before
        the delivery is): what a reply to that message follows up on."""
        if not message_ref:
            return None
        ref = message_ref[:128]
        found = None
        async with self.sessions() as session:
            for where in (Generation.message_ref == ref, (Request.answer_ref == ref) & Generation.shown.is_(True)):
                found = await session.scalar(
                    select(Generation.id).join(Request, Generation.request_id == Request.id)
                    .where(where, Request.platform == platform).order_by(Generation.id.desc()).limit(1)
                )
                if found is not None:
                    break
        return None if found is None else await self.generation(found)

    async def is_banned(self, platform: str, user_external_id: str) -> bool:
        """Whether the user is banned; False while the database is unreachable (the bot keeps
        answering during an outage, and its writes wait in the spool)."""
        try:
            async with self.sessions() as session:
                banned = await session.scalar(
                    select(User.banned).where(User.platform == platform, User.external_id == str(user_external_id))
                )
                return bool(banned)
        except Exception as exc:
            if self.spool is None or not is_connection_error(exc):
                raise
            logging.getLogger(__name__).warning("ban check skipped: database unreachable")
            return False
