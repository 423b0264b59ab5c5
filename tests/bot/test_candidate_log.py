"""What the core logs per candidate: each one's own seed and latency, and the request's queue
time, as the generator reported them (the review desk shows them per candidate)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bot.config import Settings
from bot.core import BotCore
from bot.ratelimit import MemoryRateLimiter
from bot.types import Incoming, Origin
from db.log import GenerationLog
from db.models import Generation, Request
from generation.serving.service import TweetRequest, TweetResult
from generation.types import SamplingParams


@dataclass
class ThreeCandidates:
    """Three ranked candidates; ``figures`` are the per-candidate fields the result carries."""

    figures: dict[str, Any] = field(default_factory=dict)

    async def generate(self, req: TweetRequest) -> TweetResult:
        return TweetResult(
            texts=["mejor", "segundo", "tercero"], model="demo", prompt_text=req.prompt.text(),
            params=SamplingParams(), seed=req.seed or 0, latency_ms=900.0, tokens=[3, 4, 5], tries=1,
            rejected=[], scores=[2.0, 1.0, 0.5], score_details=[{"topic": 1.0}, {}, {}], **self.figures,
        )


async def logged(settings: Settings, log: GenerationLog, generator: ThreeCandidates) -> tuple[Request, list[Generation]]:
    settings = settings.model_copy(update={"bot": settings.bot.model_copy(update={"candidates": 3})})
    core = BotCore(settings, generator, log, MemoryRateLimiter(), rng=random.Random(1))
    reply = await core.handle(Incoming(Origin("console", "u1", "c1", message_id="1"), "/tuit derecha"))
    assert reply.kind == "tweet" and reply.tweet is not None
    async with log.sessions() as session:
        request = (await session.scalars(select(Request))).one()
        rows = list(await session.scalars(select(Generation).order_by(Generation.candidate)))
    # The tweet carries the shown one's own seed, the same a redelivery reads from the log.
    assert reply.tweet.seed == (rows[0].seed or 0)
    assert (await core.redeliver(await log.request(request.id))).tweet == reply.tweet
    return request, rows


async def test_each_candidate_is_logged_with_its_own_seed_and_latency(settings: Settings, log: GenerationLog) -> None:
    generator = ThreeCandidates({"seeds": [31, 17, None], "latencies_ms": [850.0, 420.0, 900.0], "queue_ms": 40.0})
    request, rows = await logged(settings, log, generator)
    assert request.queue_ms == 40.0
    assert [(g.text, g.seed, g.latency_ms, g.shown) for g in rows] == [
        ("mejor", 31, 850.0, True), ("segundo", 17, 420.0, False), ("tercero", None, 900.0, False),
    ]


async def test_a_generator_without_per_candidate_figures_logs_what_it_knows(
    settings: Settings, log: GenerationLog
) -> None:
    """No per-candidate seeds or latencies: none is invented (no seed, the request's latency)."""
    request, rows = await logged(settings, log, ThreeCandidates())
    assert request.queue_ms is None
    assert [(g.seed, g.latency_ms) for g in rows] == [(None, 900.0)] * 3


async def test_a_shed_answer_is_logged_as_shed(settings: Settings, log: GenerationLog) -> None:
    """Fewer candidates than asked (the engine or server shed some under load) is an answer, and
    the log says so: operators count shed answers from ``params["shed"]``; an answer with all
    its candidates carries no such mark. Each candidate keeps its own token count."""
    request, rows = await logged(settings, log, ThreeCandidates({"shed": 2}))
    assert request.params["shed"] == 2
    assert [g.tokens for g in rows] == [3, 4, 5]


async def test_a_full_answer_has_no_shed_mark(settings: Settings, log: GenerationLog) -> None:
    """The shed mark is not there by default: a dashboard counting it counts only shed answers."""
    request, _ = await logged(settings, log, ThreeCandidates())
    assert "shed" not in request.params
