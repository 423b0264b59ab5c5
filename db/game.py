"""¿Real o ficticio?: rounds and votes, the chat's scores and the per-model figures.

Knows nothing of bots: callers pass primitive values (platform, external ids, "A"/"B"). A
round is closed with one conditional UPDATE, so when a time-out and a "Revelar" press (or two
processes) race, exactly one of them reveals it. The figures the desk and ``politico-train
evaluate`` read count only closed rounds: a vote can still change while a round is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.log import _aware, _chat, _text, _user
from db.models import Chat, GameRound, GameVote, User, utcnow

SLOTS = ("A", "B")


@dataclass(frozen=True)
class NewRound:
    """What a round shows: the real tweet (with its author and date) and the generated one."""

    platform: str
    chat_external_id: str
    chat_kind: str
    chat_title: str
    user_external_id: str
    user_name: str
    model: str
    controls: dict[str, Any]
    real_slot: str
    real_text: str
    real_author: str
    real_date: str
    fake_text: str
    generation_id: int | None
    seconds: float


@dataclass(frozen=True)
class Round:
    """A round as stored, with the external ids a chat front-end compares against."""

    id: int
    created_at: datetime
    platform: str
    chat_external_id: str
    user_external_id: str
    model: str
    real_slot: str
    real_text: str
    real_author: str
    real_date: str
    fake_text: str
    generation_id: int | None
    deadline: datetime
    closed_at: datetime | None
    closed_by: str
    message: dict[str, str]

    def text_of(self, slot: str) -> str:
        return self.real_text if slot == self.real_slot else self.fake_text

    @property
    def fake_slot(self) -> str:
        return "B" if self.real_slot == "A" else "A"


@dataclass(frozen=True)
class Vote:
    name: str
    choice: str


@dataclass(frozen=True)
class Score:
    """A member's record in one chat: rounds where they picked the real tweet, of those voted."""

    name: str
    right: int
    votes: int


@dataclass(frozen=True)
class Fooling:
    """A closed round and how its votes went (for "the tweets that fooled most")."""

    round_id: int
    created_at: datetime
    fake_text: str
    real_text: str
    real_author: str
    votes: int
    fooled: int

    @property
    def fooled_share(self) -> float | None:
        return self.fooled / self.votes if self.votes else None


@dataclass(frozen=True)
class ModelFigures:
    """A model's human measure: closed rounds, their votes, and how many the fake fooled.

    ``fooled_share`` near 0.5 means people cannot tell its tweets from real ones.
    """

    model: str
    rounds: int
    votes: int
    fooled: int
    per_day: list[tuple[str, float | None]]
    most_fooling: list[Fooling]

    @property
    def fooled_share(self) -> float | None:
        return self.fooled / self.votes if self.votes else None


def _round(row: GameRound, chat: Chat | None, user: User | None) -> Round:
    return Round(
        id=row.id, created_at=_aware(row.created_at), platform=row.platform,
        chat_external_id=chat.external_id if chat else "",
        user_external_id=user.external_id if user else "", model=row.model,
        real_slot=row.real_slot, real_text=row.real_text, real_author=row.real_author,
        real_date=row.real_date, fake_text=row.fake_text, generation_id=row.generation_id,
        deadline=_aware(row.deadline), closed_at=_aware(row.closed_at), closed_by=row.closed_by,
        message={str(k): str(v) for k, v in (row.message or {}).items()},
    )


#: A vote counts as fooled when it named the generated tweet as the real one.
_FOOLED = case((GameVote.choice != GameRound.real_slot, 1), else_=0)


class GameStore:
    """Reads and writes of the game's tables; every write is committed before returning."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def start(self, new: NewRound) -> Round:
        """Store a new open round, closing after ``new.seconds``."""
        now = utcnow()
        async with self._sessions.begin() as session:
            user = await _user(session, new.platform, new.user_external_id, new.user_name, now)
            chat = await _chat(session, new.platform, new.chat_external_id, new.chat_kind,
                               new.chat_title, now)
            row = GameRound(
                created_at=now, platform=new.platform, chat_id=chat.id, user_id=user.id,
                generation_id=new.generation_id, model=new.model, controls=dict(new.controls),
                real_slot=new.real_slot, real_text=_text(new.real_text),
                real_author=_text(new.real_author, 128), real_date=_text(new.real_date, 32),
                fake_text=_text(new.fake_text), deadline=now + timedelta(seconds=new.seconds),
            )
            session.add(row)
            await session.flush()
            return _round(row, chat, user)

    async def get(self, round_id: int) -> Round | None:
        async with self._sessions() as session:
            found = (await session.execute(
                select(GameRound, Chat, User)
                .outerjoin(Chat, GameRound.chat_id == Chat.id)
                .outerjoin(User, GameRound.user_id == User.id)
                .where(GameRound.id == round_id)
            )).first()
        return _round(*found) if found else None

    async def open_in(self, platform: str, chat_external_id: str) -> Round | None:
        """The chat's latest round still open, if any."""
        async with self._sessions() as session:
            found = (await session.execute(
                select(GameRound, Chat, User)
                .join(Chat, GameRound.chat_id == Chat.id)
                .outerjoin(User, GameRound.user_id == User.id)
                .where(GameRound.platform == platform, Chat.external_id == chat_external_id,
                       GameRound.closed_at.is_(None))
                .order_by(GameRound.id.desc()).limit(1)
            )).first()
        return _round(*found) if found else None

    async def set_message(self, round_id: int, message: dict[str, str]) -> None:
        """Remember where the round's message is, so that whoever closes it can edit it."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(GameRound).where(GameRound.id == round_id).values(message=dict(message))
            )

    async def vote(self, round_id: int, platform: str, user_external_id: str, user_name: str,
                   choice: str) -> str:
        """Record a guess: ``new``, ``changed``, ``same``, ``closed`` (too late: the round is
        closed or past its deadline) or ``missing`` (no such round)."""
        if choice not in SLOTS:
            raise ValueError(f"choice must be one of {SLOTS}")
        now = utcnow()
        async with self._sessions.begin() as session:
            row = await session.get(GameRound, round_id)
            if row is None:
                return "missing"
            if row.closed_at is not None or _aware(row.deadline) <= now:
                return "closed"
            user = await _user(session, platform, user_external_id, user_name, now)
            query = select(GameVote).where(GameVote.round_id == round_id, GameVote.user_id == user.id)
            vote = await session.scalar(query)
            if vote is None:
                try:
                    async with session.begin_nested():
                        session.add(GameVote(round_id=round_id, user_id=user.id, choice=choice,
                                             created_at=now, changed_at=now))
                    return "new"
                except IntegrityError:  # the same member's double press, stored a moment ago
                    vote = await session.scalar(query)
                    assert vote is not None
            if vote.choice == choice:
                return "same"
            vote.choice, vote.changed_at = choice, now
            return "changed"

    async def close(self, round_id: int, by: str) -> bool:
        """Close a round; True for exactly one of several callers (the one that reveals it)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(GameRound).where(GameRound.id == round_id, GameRound.closed_at.is_(None))
                .values(closed_at=utcnow(), closed_by=by)
            )
        return result.rowcount == 1

    async def votes(self, round_id: int) -> list[Vote]:
        """The round's votes, first cast first."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(User.display_name, GameVote.choice).join(User, GameVote.user_id == User.id)
                .where(GameVote.round_id == round_id).order_by(GameVote.created_at, GameVote.id)
            )).all()
        return [Vote(name or "", choice) for name, choice in rows]

    async def scores(self, platform: str, chat_external_id: str, limit: int = 10) -> list[Score]:
        """The chat's ranking over its closed rounds: most right guesses first."""
        right = func.sum(case((GameVote.choice == GameRound.real_slot, 1), else_=0))
        async with self._sessions() as session:
            rows = (await session.execute(
                select(User.display_name, right, func.count(GameVote.id))
                .join(GameRound, GameVote.round_id == GameRound.id)
                .join(Chat, GameRound.chat_id == Chat.id)
                .join(User, GameVote.user_id == User.id)
                .where(GameRound.platform == platform, Chat.external_id == chat_external_id,
                       GameRound.closed_at.is_not(None))
                .group_by(User.id, User.display_name)
                .order_by(right.desc(), func.count(GameVote.id), User.display_name)
                .limit(limit)
            )).all()
        return [Score(name or "", int(r or 0), int(n)) for name, r, n in rows]

    # -- figures (desk, politico-train evaluate) --------------------------------------------------

    async def models(self) -> list[str]:
        """Models that have closed rounds, by name."""
        async with self._sessions() as session:
            names = await session.scalars(
                select(GameRound.model).where(GameRound.closed_at.is_not(None))
                .group_by(GameRound.model).order_by(GameRound.model)
            )
            return list(names)

    async def figures(self, model: str, top: int = 10) -> ModelFigures:
        """A model's closed rounds, votes fooled (overall and per day) and its most fooling tweets."""
        closed = (GameRound.model == model, GameRound.closed_at.is_not(None))
        async with self._sessions() as session:
            rounds = int(await session.scalar(select(func.count(GameRound.id)).where(*closed)) or 0)
            votes, fooled = (await session.execute(
                select(func.count(GameVote.id), func.sum(_FOOLED))
                .join(GameRound, GameVote.round_id == GameRound.id).where(*closed)
            )).one()
            per_round = (await session.execute(
                select(GameRound, func.count(GameVote.id), func.sum(_FOOLED))
                .join(GameVote, GameVote.round_id == GameRound.id).where(*closed)
                .group_by(GameRound.id)
            )).all()
        days: dict[str, list[int]] = {}
        for row, count, fooled_here in per_round:
            day = days.setdefault(_aware(row.created_at).astimezone(UTC).date().isoformat(), [0, 0])
            day[0] += int(count)
            day[1] += int(fooled_here or 0)
        most = sorted(
            (Fooling(row.id, _aware(row.created_at), row.fake_text, row.real_text, row.real_author,
                     int(count), int(fooled_here or 0)) for row, count, fooled_here in per_round),
            key=lambda f: (-(f.fooled_share or 0), -f.votes, -f.round_id),
        )
        return ModelFigures(
            model=model, rounds=rounds, votes=int(votes or 0), fooled=int(fooled or 0),
            per_day=[(day, f / n if n else None) for day, (n, f) in sorted(days.items())],
            most_fooling=[f for f in most if f.fooled][:top],
        )


async def forget_votes(session: AsyncSession, user_id: int, generation_ids: Select[Any]) -> int:
    """Inside ``/borrarme``'s transaction, before the user's tweets go: delete the user's votes
    and unlink the rounds they started or whose tweet is theirs (the rounds stay, holding no
    personal data once unlinked, so the model's figures keep them). Returns the votes deleted."""
    votes = await session.execute(delete(GameVote).where(GameVote.user_id == user_id))
    await session.execute(update(GameRound).where(GameRound.user_id == user_id).values(user_id=None))
    await session.execute(
        update(GameRound).where(GameRound.generation_id.in_(generation_ids)).values(generation_id=None)
    )
    return int(votes.rowcount or 0)
