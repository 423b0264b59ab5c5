"""Writes log rows the way the bot would, so review tests start from a known log."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from db.models import Chat, Generation, Rating, Request, User


class LogFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._clock = itertools.count()

    async def user(self, platform: str = "telegram", external_id: str = "100", name: str = "Ana") -> int:
        async with self._sessions.begin() as session:
            user = await session.scalar(
                select(User).where(User.platform == platform, User.external_id == external_id)
            )
            if user is None:
                user = User(platform=platform, external_id=external_id, display_name=name)
                session.add(user)
                await session.flush()
            return user.id

    async def tweet(
        self,
        text: str | None = "Un tuit de prueba",
        *,
        platform: str = "telegram",
        user: str = "100",
        user_name: str = "Ana",
        status: str = "ok",
        model: str = "demo",
        side: str = "derecha",
        coalition: str = "Chile Vamos",
        party: str = "RN",
        sentiment: str = "positivo",
        created_at: datetime | None = None,
        candidates: int = 1,
        chat: str = "",
    ) -> tuple[int, list[int]]:
        """A request (and its tweets unless ``text`` is None) in a group named ``chat`` ("" none);
        returns (request id, generation ids)."""
        user_id = await self.user(platform, user, user_name)
        when = created_at or datetime(2026, 11, 1, 12, next(self._clock) % 60, tzinfo=UTC)
        async with self._sessions.begin() as session:
            chat_id = None
            if chat:
                found = await session.scalar(select(Chat).where(Chat.platform == platform, Chat.title == chat))
                if found is None:
                    found = Chat(platform=platform, external_id=f"-{chat[:60]}", kind="group", title=chat)
                    session.add(found)
                    await session.flush()
                chat_id = found.id
            request = Request(
                chat_id=chat_id,
                created_at=when,
                finished_at=when,
                platform=platform,
                user_id=user_id,
                raw_command=f"/tuit {side} {sentiment}",
                controls={"side": side, "sentiment": sentiment, "topic": "pensiones"},
                side=side,
                coalition=coalition,
                party=party,
                sentiment=sentiment,
                model=model,
                prompt=f"<|PARTIDO|>{party}",
                params={"temperature": 0.9, "top_p": 0.9},
                seed=1234,
                status=status,
                error="" if status == "ok" else "falló",
            )
            session.add(request)
            await session.flush()
            ids = []
            if text is not None:
                for index in range(candidates):
                    generation = Generation(
                        request_id=request.id,
                        created_at=when,
                        candidate=index,
                        text=text if index == 0 else f"{text} ({index})",
                        tokens=12,
                        latency_ms=50.0,
                        seed=1234 + index,
                        shown=index == 0,
                    )
                    session.add(generation)
                    await session.flush()
                    ids.append(generation.id)
            return request.id, ids

    async def rate(self, generation_id: int, value: int, user: str = "200") -> None:
        user_id = await self.user("telegram", user, f"votante {user}")
        async with self._sessions.begin() as session:
            session.add(Rating(generation_id=generation_id, user_id=user_id, value=value))
