"""A busy bot's log, written the way the bot writes it: the desk's screenshots and its browser
checks run on it (the size the issue was found at: 81 requests, 344 candidates, 4 game rounds).

Deterministic: the same log every time (fixed texts, seeds and times); only what the desk
stamps when it acts (decisions, claims) carries the clock's time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from db.engine import create_engine
from db.game import GameStore, NewRound
from db.migrate import upgrade
from db.models import Chat, GameRound, Generation, Rating, Request, User
from db.review import ReviewStore
from generation.decoding.ranking import total
from generation.settings import RankingSettings

#: The shipped config's weights (config.toml [generation.ranking]), so the sums shown add up.
WEIGHTS = RankingSettings(fit=0.0, side=6.0, sentiment=0.5, topic=16.0, open=3.0, real=3.0, unknown=2.0,
                          lean=4.0, copied=4.0)
START = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
CANDIDATES = 8
#: Request statuses and how many of each (43 answered, as in the issue).
STATUSES = {"ok": 43, "busy": 8, "rate_limited": 10, "banned": 3, "invalid": 8, "blocked": 4, "error": 3,
            "expired": 2}
USERS = [("telegram", "1001", "Camila Rojas"), ("telegram", "1002", "Benjamín Soto"),
         ("telegram", "1003", "Valentina Muñoz"), ("discord", "2001", "matias.araya"),
         ("discord", "2002", "fer_gonzalez"), ("telegram", "1004", "Josefa Díaz"),
         ("telegram", "1005", "Tomás Pérez"), ("discord", "2003", "ignacia_v")]
CHATS = [("telegram", "-1001", "group", "Política y café"), ("telegram", "1001", "private", ""),
         ("discord", "55", "guild", "#debate-constituyente"), ("telegram", "-1002", "group", "Vecinos Ñuñoa")]
PARTIES = [("derecha", "Chile Vamos", "UDI"), ("derecha", "Chile Vamos", "RN"), ("centro", "Nueva Mayoría", "PDC"),
           ("izquierda", "Frente Amplio", "RD"), ("izquierda", "Nueva Mayoría", "PC"), ("izquierda", "Nueva Mayoría", "PS")]
SENTIMENTS = ("POSITIVE", "NEGATIVE", "NEUTRAL")
TOPICS = ("pensiones", "educación", "salud", "vivienda", "seguridad", "#NoMasAFP", "el agua", "la constitución")
OPENINGS = ("Hoy más que nunca", "Vamos a defender", "No podemos aceptar", "Es urgente hablar de",
            "Gracias a todos los que trabajan por", "@gobiernodechile ¿y qué pasa con", "Chile merece",
            "Otra vez el gobierno se olvida de")
CLOSINGS = ("para todas las familias de Chile.", "¡No más abusos!", "y lo vamos a lograr juntos 💪",
            "con diálogo y unidad.", "¿hasta cuándo?", "en cada región del país.", "#ChileDecide",
            "porque la gente no puede seguir esperando")
ERRORS = {"busy": "EngineBusy: 256 requests already waiting", "error": "GenerationTimeout: no answer in 60 s",
          "blocked": "BlockedOutput: no acceptable tweet in 3 tries (degenerate)",
          "invalid": "no entendí «partido=XYZ»: ese partido no existe", "rate_limited": "6 por minuto",
          "banned": "usuario bloqueado", "expired": ""}
REAL_TWEETS = ("La educación pública es el camino para un Chile más justo.",
               "Hoy firmamos el compromiso por pensiones dignas para todos.",
               "Seguiremos trabajando por la seguridad de cada barrio.",
               "El agua es un derecho, no un negocio.")


@dataclass(frozen=True)
class Scenario:
    """What was written: request ids by status, and the shown tweets still pending."""

    requests: dict[str, list[int]]
    pending: list[int]


def _text(rng: random.Random, topic: str) -> str:
    return f"{rng.choice(OPENINGS)} {topic} {rng.choice(CLOSINGS)}"


def _parts(rng: random.Random, text: str, topic: str) -> dict[str, float]:
    return {
        "fit": round(rng.uniform(-4.5, -2.0), 3), "side": round(rng.uniform(-1.2, 0.0), 3),
        "sentiment": round(rng.uniform(-1.0, 0.0), 3), "topic": 1.0 if topic in text else 0.0,
        "open": 0.0 if text.rstrip().endswith((".", "!", "?", "💪", "#ChileDecide")) else 1.0,
        "real": round(rng.uniform(-2.0, 0.5), 3), "unknown": float(rng.random() < 0.1),
        "lean": round(rng.uniform(-1.5, 0.0), 3), "copied": float(rng.random() < 0.05),
    }


async def seed_busy_log(url: str) -> Scenario:
    """A fresh database at ``url`` holding the busy bot's log."""
    await upgrade(url)
    engine = create_engine(url)
    try:
        return await write_busy_log(engine)
    finally:
        await engine.dispose()


async def write_busy_log(engine: AsyncEngine) -> Scenario:
    rng = random.Random(28)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    statuses = [status for status, n in STATUSES.items() for _ in range(n)]
    rng.shuffle(statuses)
    by_status: dict[str, list[int]] = {}
    shown: list[int] = []
    async with sessions.begin() as session:
        users = [User(platform=p, external_id=e, display_name=n, first_seen=START, last_seen=START)
                 for p, e, n in USERS]
        chats = [Chat(platform=p, external_id=e, kind=k, title=t, first_seen=START) for p, e, k, t in CHATS]
        session.add_all([*users, *chats])
        await session.flush()
        for index, status in enumerate(statuses):
            when = START + timedelta(hours=index * 1.5, minutes=rng.randrange(60))
            user = users[index % len(users)]
            chat = next((c for c in chats if c.platform == user.platform), chats[0])
            side, coalition, party = rng.choice(PARTIES)
            sentiment, topic = rng.choice(SENTIMENTS), rng.choice(TOPICS)
            request = Request(
                created_at=when, finished_at=when + timedelta(seconds=2), platform=user.platform,
                user_id=user.id, chat_id=chat.id, raw_command=f"/tuit {party} {sentiment.lower()} {topic}",
                controls={"party": party, "sentiment": sentiment, "topic": topic}, side=side, coalition=coalition,
                party=party, sentiment=sentiment, model="demo" if index % 5 else "casual-derecha",
                prompt=f" [PARTIDO] {party} [SENTIMIENTO] {sentiment} [TWEET] ",
                params={"temperature": 0.8, "top_p": 0.9, "max_new_tokens": 60}, seed=rng.randrange(2**31),
                status=status, error=ERRORS.get(status, ""), answered_at=when + timedelta(seconds=2),
                queue_ms=round(rng.uniform(3, 400), 1) if status == "ok" else None,
                latency_ms=round(rng.uniform(600, 2500), 1),
            )
            session.add(request)
            await session.flush()
            by_status.setdefault(status, []).append(request.id)
            if status != "ok":
                continue
            drafts = []
            for candidate in range(CANDIDATES):
                text = _text(rng, topic)
                parts = _parts(rng, text, topic)
                drafts.append((total(parts, WEIGHTS), candidate, text, parts))
            best = max(drafts)[1]
            for score, candidate, text, parts in drafts:
                generation = Generation(
                    request_id=request.id, created_at=when, candidate=candidate, text=text,
                    tokens=len(text.split()) + 3, latency_ms=round(rng.uniform(500, 2000), 1),
                    seed=rng.randrange(2**62), shown=candidate == best, score=score, score_detail=parts,
                    sent_at=when + timedelta(seconds=2) if candidate == best else None,
                )
                session.add(generation)
                await session.flush()
                if candidate == best:
                    shown.append(generation.id)
                    for voter in range(rng.randrange(4)):
                        session.add(Rating(generation_id=generation.id, user_id=users[(index + voter + 1) % len(users)].id,
                                           value=rng.choice((1, 1, -1)), created_at=when))
    store = ReviewStore(engine)
    await store.decide(shown[:3], "approved", "camila", "buen tono")
    await store.decide(shown[3:5], "rejected", "benja", "", reason="misinformation")
    await store.decide(shown[5:6], "flagged", "camila", "revisar con el equipo")
    await _game_rounds(engine)
    return Scenario(by_status, shown[6:])


async def _game_rounds(engine: AsyncEngine) -> None:
    games = GameStore(engine)
    for index, real in enumerate(REAL_TWEETS):
        started = await games.start(NewRound(
            platform="telegram", chat_external_id="-1001", chat_kind="group", chat_title="Política y café",
            user_external_id="1001", user_name="Camila Rojas", model="demo", controls={"party": "UDI"},
            real_slot="AB"[index % 2], real_text=real, real_author="@candidata2017", real_date=f"2017-10-0{index + 1}",
            fake_text=_text(random.Random(index), "pensiones"), generation_id=None, seconds=60,
        ))
        for voter in range(5 + index):
            await games.vote(started.id, "telegram", f"30{voter}", f"Votante {voter}", "AB"[(index + voter) % 3 % 2])
        await games.close(started.id, "time")
        when = START + timedelta(days=index, hours=3)
        async with engine.begin() as connection:
            await connection.execute(update(GameRound).where(GameRound.id == started.id)
                                     .values(created_at=when, deadline=when + timedelta(minutes=1),
                                             closed_at=when + timedelta(minutes=1)))


def desk_pages(scenario: Scenario) -> dict[str, str]:
    """The desk's pages on this log, by the name their screenshots take."""
    return {
        "list": "/", "stream": "/review", "request": f"/requests/{scenario.requests['ok'][10]}",
        "stats": "/stats", "game": "/game", "audit": "/audit", "account": "/account",
    }
