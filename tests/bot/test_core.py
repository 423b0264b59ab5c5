"""The command core with a fake generator: replies, statuses in the log, and when rows commit."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bot import core as core_module
from bot import texts
from bot.config import FrontendLimits, PoliticsSettings, Settings, SideSpec
from bot.core import BotCore, Failure, Refusal, Unmonitored
from bot.parser import ParseError, parse_command, parse_fields
from bot.ratelimit import MemoryRateLimiter
from bot.types import FICTION_LABEL, Incoming, MessageRef, Origin, Reply
from db.log import GenerationLog
from db.models import Generation, Rating, Request, User
from generation.serving.service import TweetRequest, TweetResult
from generation.settings import GenerationSettings, ModelSpec
from generation.types import (
    BlockedOutput,
    EngineBusy,
    EngineClosed,
    GenerationTimeout,
    SamplingParams,
)

ORIGIN = Origin("console", "u1", "c1", user_name="Ana", message_id="7", reply_ref={"token": "abc"})


@dataclass
class FakeGenerator:
    """Writes "tuit <n>" or raises what it is told to; records every request."""

    fail: Exception | None = None
    requests: list[TweetRequest] = field(default_factory=list)
    during: list[object] = field(default_factory=list)
    hook: object = None

    async def generate(self, req: TweetRequest) -> TweetResult:
        self.requests.append(req)
        if self.hook is not None:
            self.during.append(await self.hook())  # type: ignore[operator]
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        texts = [f"tuit {len(self.requests)}.{i}" for i in range(req.n)]
        return TweetResult(texts=texts, model=req.model or "demo", prompt_text=req.prompt.text(),
                           params=SamplingParams(top_p=0.8), seed=req.seed or 0, latency_ms=5.0,
                           tokens=[4] * req.n, tries=1, rejected=[])


class Counted(Unmonitored):
    """A monitor that keeps the failures and refusals the core counts, as ``(front-end, kind)``."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, Failure]] = []
        self.refusals: list[tuple[str, Refusal]] = []

    def failed(self, frontend: str, kind: Failure) -> None:
        self.failures.append((frontend, kind))

    def refused(self, frontend: str, reason: Refusal) -> None:
        self.refusals.append((frontend, reason))


@pytest.fixture
def generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def monitor() -> Counted:
    return Counted()


@pytest.fixture
def core(settings: Settings, log: GenerationLog, generator: FakeGenerator, monitor: Counted) -> BotCore:
    return BotCore(settings, generator, log, MemoryRateLimiter(), rng=random.Random(3), monitor=monitor)


async def say(core: BotCore, text: str, origin: Origin = ORIGIN) -> Reply:
    return await core.handle(Incoming(origin, text))


def said(reply: Reply) -> tuple[str, str]:
    """What the user is told: the reply's kind and text (not the bookkeeping riding along)."""
    return reply.kind, reply.text


async def requests(log: GenerationLog) -> list[Request]:
    async with log.sessions() as session:
        return list((await session.scalars(select(Request).order_by(Request.id))).all())


async def test_tuit_replies_with_tweet_label_understanding_and_buttons(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    reply = await say(core, "/tuit derecha positivo pensiones")
    assert reply.kind == "tweet" and reply.tweet is not None
    assert reply.text.startswith("tuit 1.0") and reply.text.endswith(FICTION_LABEL)
    assert "Entendí: lado derecha" in reply.text and "positivo" in reply.text and "pensiones" in reply.text
    assert [b.action for b in reply.buttons] == ["up", "down", "again"]
    assert {b.generation_id for b in reply.buttons} == {reply.tweet.generation_id}
    [req] = generator.requests
    fields = req.prompt.fields
    assert req.prompt.kind == "controlled" and fields.sentimiento == "POSITIVE" and fields.entidades == ("pensiones",)
    assert core.catalog.parties[fields.partido].side == "derecha"  # a right-wing party, chosen by weight
    [row] = await requests(log)
    assert (row.status, row.raw_command, row.side, row.sentiment) == ("ok", "/tuit derecha positivo pensiones", "derecha", "POSITIVE")
    assert row.seed == req.seed and row.params["top_p"] == 0.8 and row.controls["entities"] == ["pensiones"]
    assert row.reply_to == {"message_id": "7", "token": "abc"} and row.latency_ms is not None
    logged = await log.generation(reply.tweet.generation_id)
    assert logged is not None and logged.text == "tuit 1.0" and logged.shown


async def test_bare_tuit_picks_a_party_and_sentiment_and_says_so(core: BotCore, generator: FakeGenerator) -> None:
    reply = await say(core, "/tuit")
    assert reply.kind == "tweet" and "(al azar)" in reply.text
    fields = generator.requests[0].prompt.fields
    assert core.catalog.parties[fields.partido].weight > 0 and fields.sentimiento


async def test_the_request_is_committed_as_pending_before_generation(core: BotCore, generator: FakeGenerator, settings: Settings) -> None:
    async def look() -> list[tuple[str, str]]:
        other = await GenerationLog.open(settings.database.url)  # another connection
        try:
            return [(r.raw_command, r.status) for r in await other.pending()]
        finally:
            await other.aclose()

    generator.hook = look
    reply = await say(core, "/tuit izquierda")
    assert reply.kind == "tweet"
    assert generator.during == [[("/tuit izquierda", "pending")]]


async def test_the_tweet_is_committed_before_the_reply(core: BotCore, settings: Settings) -> None:
    reply = await say(core, "/tuit")
    assert reply.tweet is not None
    other = await GenerationLog.open(settings.database.url)
    try:
        logged = await other.generation(reply.tweet.generation_id)
    finally:
        await other.aclose()
    assert logged is not None and logged.text == reply.tweet.text


@pytest.mark.parametrize(("exc", "reply", "status"), [
    (EngineBusy("full"), ("busy", texts.BUSY), "busy"),
    (GenerationTimeout("slow"), ("error", texts.TIMEOUT), "error"),
    (BlockedOutput("nope"), ("error", texts.BLOCKED), "blocked"),
    (ValueError("bad override"), ("error", texts.GENERATION_FAILED), "error"),
    pytest.param(RuntimeError("boom"), ("error", texts.GENERATION_FAILED), "error",
                 marks=pytest.mark.expect_errors(r"generation failed for request")),
])
async def test_generation_failures_are_polite_and_logged(core: BotCore, log: GenerationLog, generator: FakeGenerator, exc: Exception, reply: tuple[str, str], status: str) -> None:
    generator.fail = exc
    assert said(await say(core, "/tuit derecha")) == reply
    [row] = await requests(log)
    assert row.status == status and type(exc).__name__ in row.error and row.side == "derecha"


async def test_busy_text(core: BotCore, generator: FakeGenerator) -> None:
    generator.fail = EngineBusy("full")
    assert "Estoy con mucho trabajo" in (await say(core, "/tuit")).text


async def test_engine_closing_leaves_the_request_pending_and_resume_answers_it(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    generator.hook = log.pending  # what other processes see while it is being generated
    generator.fail = EngineClosed("draining")
    reply = await say(core, "/tuit centro mixto salud")
    assert said(reply) == ("busy", texts.RESTARTING)
    [[during]] = generator.during
    assert during.lease_until >= during.created_at + timedelta(seconds=core.lease_s - 1)
    [pending] = await log.pending()
    assert pending.lease_until is None  # given up: the next process to start answers it at once
    assert core.origin_of(pending) == ORIGIN
    generator.hook = None
    generator.fail = None
    resumed = await core.resume(pending.id)
    assert resumed.kind == "tweet" and resumed.text.endswith(FICTION_LABEL)
    assert resumed.tweet is not None and resumed.tweet.request_id == pending.id
    assert resumed.tweet.side == "centro" and resumed.tweet.sentiment == "MIXED"
    assert await log.pending() == []
    assert (await core.resume(pending.id)).kind == "info"  # answered once only
    assert (await core.resume(999)).kind == "info"


async def test_rate_limits_per_user_and_chat_are_logged(settings: Settings, log: GenerationLog, generator: FakeGenerator) -> None:
    limited = settings.model_copy(update={"rate_limits": settings.rate_limits.model_copy(
        update={"per_user_per_minute": 2, "per_chat_per_minute": 3})})
    core = BotCore(limited, generator, log, MemoryRateLimiter())
    user, other_user = Origin("telegram", "u1", "c1"), Origin("telegram", "u2", "c1")
    kinds = [(await say(core, "/tuit", user)).kind for _ in range(3)]
    assert kinds == ["tweet", "tweet", "rate_limited"]
    assert (await say(core, "/tuit", user)).text.startswith("Vas muy rápido: espera")
    assert (await say(core, "/tuit", other_user)).kind == "tweet"  # the chat's 3rd
    refused = await say(core, "/tuit", other_user)  # asked twice, but the chat asked for many
    assert refused.kind == "rate_limited" and "Vas muy rápido" not in refused.text
    assert refused.text.startswith("En este chat se pidieron muchos tuits") and "volver a pedir en" in refused.text
    assert [r.status for r in await requests(log)] == ["ok", "ok", "rate_limited", "rate_limited", "ok", "rate_limited"]
    assert (await say(core, "/ayuda", user)).kind == "help"  # help is never limited
    assert len(generator.requests) == 3


async def test_the_console_has_no_limits_by_default_and_the_platforms_do(
    settings: Settings, log: GenerationLog, generator: FakeGenerator
) -> None:
    core = BotCore(settings, generator, log, MemoryRateLimiter())  # the shipped defaults: 6 and 20
    assert settings.rate_limits.for_platform("console") == (0, 0)
    assert settings.rate_limits.for_platform("telegram") == settings.rate_limits.for_platform("discord") == (6, 20)
    assert [(await say(core, "/tuit")).kind for _ in range(10)] == ["tweet"] * 10  # ORIGIN: the console
    for platform in ("telegram", "discord"):
        origin = Origin(platform, "u1", "c1")
        kinds = [(await say(core, "/tuit", origin)).kind for _ in range(7)]
        assert kinds == ["tweet"] * 6 + ["rate_limited"], platform
    own = settings.rate_limits.model_copy(update={"console": FrontendLimits(per_user_per_minute=1)})
    strict = BotCore(settings.model_copy(update={"rate_limits": own}), generator, log, MemoryRateLimiter())
    assert [(await say(strict, "/tuit")).kind for _ in range(2)] == ["tweet", "rate_limited"]
    assert own.for_platform("console") == (1, 20)  # the value left out is [rate_limits]'s


async def test_banned_users_are_refused(core: BotCore, log: GenerationLog, generator: FakeGenerator, monitor: Counted) -> None:
    await say(core, "/tuit")
    async with log.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.external_id == "u1"))
        assert user is not None
        user.banned = True
    refusal = await say(core, "/tuit")
    assert said(refusal) == ("error", texts.BANNED)
    assert len(generator.requests) == 1
    rows = await requests(log)
    assert [r.status for r in rows] == ["ok", "banned"]
    # The refusal names its request and the log keeps its words: its delivery is recorded, and
    # a peer delivering it after a crash says the same (bot/core.py's _said).
    assert refusal.request_id == rows[1].id and rows[1].error == texts.BANNED
    assert monitor.refusals == [("console", "banned")]


async def test_bad_commands_get_a_message_and_are_logged_invalid(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    for text, message in (
        ("/tuit partido=XYZ", texts.err_unknown_value("party", "XYZ", None)),
        ("/tuit ¿¿!!", texts.ERR_ONLY_PUNCTUATION),
        ("/tuit \x00", texts.ERR_CONTROL_CHARS),
        ("/tuit " + "x" * 400, texts.err_too_long(406, 300)),
    ):
        assert said(await say(core, text)) == ("error", message), text
    assert generator.requests == []
    assert [r.status for r in await requests(log)] == ["invalid"] * 4


async def test_help_options_start_and_unknown(core: BotCore) -> None:
    assert "/tuit" in (await say(core, "/ayuda")).text
    assert (await say(core, "/help")).kind == "help"
    options = await say(core, "/opciones")
    assert options.kind == "options" and "Chile Vamos" in options.text and "UDI" in options.text
    assert said(await say(core, "/start")) == ("help", texts.START)
    unknown = await say(core, "/tuti derecha")
    assert said(unknown) == ("error", texts.unknown_command("tuti", "tuit"))
    assert "/ayuda" in (await say(core, "hola")).text


async def test_otra_repeats_the_last_controls_with_a_new_seed(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    assert (await say(core, "/otra")).kind == "info"
    first = await say(core, "/tuit izquierda negativo salud")
    second = await say(core, "/otra")
    assert first.tweet is not None and second.tweet is not None
    a, b = generator.requests
    assert a.prompt == b.prompt and a.seed != b.seed
    rows = await requests(log)
    assert rows[1].raw_command == "/otra" and rows[1].parent_id == rows[0].id
    assert "(al azar)" not in second.text  # the choices are now the request's own


async def test_buttons_rate_repeat_and_survive_junk(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    reply = await say(core, "/tuit")
    assert reply.tweet is not None
    gid = reply.tweet.generation_id
    rater = Origin("console", "u9", "c1")
    up = await core.press(rater, f"up:{gid}")
    assert said(up) == ("info", texts.RATED_UP)
    assert said(await core.press(rater, f"down:{gid}")) == ("info", texts.RATED_DOWN)
    async with log.sessions() as session:
        # One rating, the rater's own (the desk counts ratings per user and per tweet).
        rated = (await session.execute(select(User.external_id, Rating.value).join(Rating))).all()
        assert [tuple(row) for row in rated] == [("u9", -1)]
    again = await core.press(rater, f"again:{gid}")
    assert again.kind == "tweet" and again.tweet is not None
    assert generator.requests[1].prompt == generator.requests[0].prompt
    assert (await requests(log))[1].parent_id == reply.tweet.request_id
    for junk in ("", "up", "up:", "up:abc", "explode:1", f"up:{gid + 99}", "again:12345", ":", "up:-1", "x" * 500):
        answer = await core.press(rater, junk)
        assert answer.kind == "info", junk


async def test_review_actions_plug_in(core: BotCore) -> None:
    assert (await core.press(ORIGIN, "approve:1")).kind == "info"
    seen: list[tuple[str, int]] = []

    async def approve(origin: Origin, generation_id: int) -> Reply:
        seen.append((origin.user_id, generation_id))
        return Reply("info", "aprobado")

    core.register_action("approve", approve)
    assert (await core.press(ORIGIN, "approve:5")).text == "aprobado"
    assert seen == [("u1", 5)]


async def test_review_commands_plug_in(core: BotCore) -> None:
    """A typed command another module registers (``bot/review.py``'s /revisar) gets the text
    after it, however its name is written (accents, capitals)."""
    typed: list[tuple[str, str]] = []

    async def review(origin: Origin, rest: str) -> Reply:
        typed.append((origin.user_id, rest))
        return Reply("info", "en revisión")

    core.register_command("Revisár", review)
    assert said(await say(core, "/revisar 12 ahora")) == ("info", "en revisión")
    assert typed == [("u1", "12 ahora")]


async def test_tuit_options_like_discord(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    reply = await core.tuit_options(ORIGIN, lado="izquierda", sentimiento="positivo", tema="salud", partido=None)
    assert reply.kind == "tweet"
    assert generator.requests[0].prompt.fields.entidades == ("salud",)
    bad = await core.tuit_options(ORIGIN, partido="XYZ")
    assert bad.kind == "error" and "XYZ" in bad.text
    rows = await requests(log)
    assert rows[0].raw_command.startswith("/tuit lado=") and rows[1].status == "invalid"


async def test_a_message_delivered_again_is_ignored_silently(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    logged: list[str] = []
    first = replace(ORIGIN, source="c1:7", on_logged=lambda: logged.append("first"))
    again = replace(ORIGIN, source="c1:7", on_logged=lambda: logged.append("again"))
    assert (await say(core, "/tuit", first)).kind == "tweet"
    assert (await say(core, "/tuit", again)) == Reply("ignored", "")
    generator.fail = EngineClosed("draining")  # left pending: resumed later, not answered now
    pending = replace(ORIGIN, source="c1:8")
    assert (await say(core, "/tuit", pending)).kind == "busy"
    generator.fail = None
    assert (await say(core, "/otra", pending)).kind == "ignored"
    assert (await core.press(pending, "again:1")).kind == "ignored"
    assert len(generator.requests) == 2 and logged == ["first", "again"]
    assert [r.status for r in await requests(log)] == ["ok", "pending"]
    assert (await say(core, "/ayuda", replace(ORIGIN, on_logged=logged.append))).kind == "help"
    assert logged == ["first", "again"]  # nothing logged: the front-end acknowledges when done


async def test_a_stored_tweet_is_sent_again_as_it_was_written(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    reply = await say(core, "/tuit derecha pensiones #chile")
    assert reply.tweet is not None
    request = await log.request(reply.tweet.request_id)
    assert await core.redeliver(request) == reply
    assert len(generator.requests) == 1  # nothing generated again
    assert await core.mark_sending(reply.tweet.generation_id)
    assert not await core.mark_sending(reply.tweet.generation_id)  # another sender must not send it


async def test_mark_sent(core: BotCore, log: GenerationLog) -> None:
    reply = await say(core, "/tuit")
    assert reply.tweet is not None
    assert await core.mark_sent(reply.tweet.generation_id, "chat:99")
    logged = await log.generation(reply.tweet.generation_id)
    assert logged is not None and logged.message_ref == "chat:99"
    assert not await core.mark_sent(10_000, "x")


async def test_candidates_are_all_stored_one_shown(settings: Settings, log: GenerationLog, generator: FakeGenerator) -> None:
    three = settings.model_copy(update={"bot": settings.bot.model_copy(update={"candidates": 3})})
    core = BotCore(three, generator, log, MemoryRateLimiter())
    reply = await say(core, "/tuit")
    assert reply.tweet is not None and generator.requests[0].n == 3
    async with log.sessions() as session:
        shown = (await session.scalars(select(Generation.shown).order_by(Generation.id))).all()
    assert shown == [True, False, False]


async def test_the_best_ranked_candidate_is_shown_and_every_score_stored(settings: Settings, log: GenerationLog) -> None:
    class Ranked(FakeGenerator):
        async def generate(self, req: TweetRequest) -> TweetResult:
            result = await super().generate(req)
            texts = ["Las pensiones dignas son urgentes.", "Nada que ver.", "Otra cosa."]
            details = [{"fit": -2.0, "topic": 1.0}, {"fit": -3.0, "topic": 0.0}, {"fit": -4.0, "topic": 0.0}]
            return TweetResult(**{**result.__dict__, "texts": texts, "scores": [0.5, -1.0, -2.5],
                                  "score_details": details})

    three = settings.model_copy(update={"bot": settings.bot.model_copy(update={"candidates": 3})})
    generator = Ranked()
    core = BotCore(three, generator, log, MemoryRateLimiter())
    reply = await say(core, "/tuit derecha negativo pensiones")
    assert reply.tweet is not None and reply.tweet.text == "Las pensiones dignas son urgentes."
    async with log.sessions() as session:
        rows = (await session.execute(select(Generation.shown, Generation.score, Generation.score_detail)
                                      .order_by(Generation.id))).all()
    assert [tuple(r) for r in rows] == [
        (True, 0.5, {"fit": -2.0, "topic": 1.0}), (False, -1.0, {"fit": -3.0, "topic": 0.0}),
        (False, -2.5, {"fit": -4.0, "topic": 0.0}),
    ]
    # The candidates are weighed against the other sides' parties and the other sentiments.
    contrasts = generator.requests[0].prompt.contrasts
    sides = {core.catalog.parties[c.fields.partido].side for c in contrasts if c.group == "side"}
    assert sides and "derecha" not in sides
    assert {c.fields.sentimiento for c in contrasts if c.group == "sentiment"} == {"POSITIVE", "NEUTRAL", "MIXED"}
    assert all(c.fields.entidades == ("pensiones",) for c in contrasts)
    # Decoding leans away from one prompt per other side: its most weighted party.
    negatives = generator.requests[0].prompt.negatives
    negative_sides = [core.catalog.parties[f.partido].side for f in negatives]
    assert sorted(negative_sides) == sorted(set(core.catalog.sides) - {"derecha"})
    assert all(f.entidades == ("pensiones",) and f.sentimiento == "NEGATIVE" for f in negatives)


def with_casual_right(settings: Settings) -> Settings:
    """``settings`` where the right has a casual model of its own ("casual-derecha")."""
    sides = dict(settings.politics.sides)
    sides["derecha"] = SideSpec(aliases=list(sides["derecha"].aliases), model="casual-derecha")
    models = {**settings.generation.models, "casual-derecha": ModelSpec(path="x", kind="casual")}
    return settings.model_copy(update={
        "politics": PoliticsSettings(sides=sides, coalitions=settings.politics.coalitions, parties=settings.politics.parties),
        "generation": GenerationSettings(models=models, default_model="demo"),
    })


async def test_a_side_with_its_own_model_uses_it(settings: Settings, log: GenerationLog, generator: FakeGenerator) -> None:
    core = BotCore(with_casual_right(settings), generator, log, MemoryRateLimiter())
    reply = await say(core, "/tuit derecha")
    assert reply.kind == "tweet" and "casual-derecha" in reply.text
    assert generator.requests[0].model == "casual-derecha" and generator.requests[0].prompt.kind == "casual"
    await say(core, "/tuit derecha UDI")  # a party asks for the controlled model
    assert generator.requests[1].model is None and generator.requests[1].prompt.fields.partido == "UDI"


@pytest.mark.expect_errors(r"unexpected error handling '/tuit'")
async def test_a_broken_database_gives_a_polite_error(
    core: BotCore, log: GenerationLog, monitor: Counted, caplog: pytest.LogCaptureFixture
) -> None:
    await log.aclose()
    Path(log.engine.url.database or "").unlink()
    assert said(await say(core, "/tuit")) == ("error", texts.INTERNAL_ERROR)
    # It is the database that failed (not, say, the parser), and it was logged and counted.
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and isinstance(record.exc_info[1], OperationalError)
    assert monitor.failures == [("console", "internal")]


@pytest.mark.expect_errors(r"unexpected error handling")
async def test_an_unexpected_exception_is_logged_at_error_and_counted(
    core: BotCore, monitor: Counted, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug anywhere in a handler becomes the polite internal-error reply, and never silently:
    an ERROR line with the exception for the operator, and a failure of kind "internal"."""
    bug = RuntimeError("a bug in the parser")

    def broken(*args: object, **kwargs: object) -> None:
        raise bug

    monkeypatch.setattr(core_module, "parse_command", broken)
    assert said(await say(core, "/tuit derecha")) == ("error", texts.INTERNAL_ERROR)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "bot.core" and record.exc_info is not None and record.exc_info[1] is bug
    assert monitor.failures == [("console", "internal")]


async def test_a_request_taken_over_meanwhile_is_ignored_here(
    core: BotCore, log: GenerationLog, generator: FakeGenerator, settings: Settings
) -> None:
    """When another process took the request over while this one generated (this one's lease
    ended, e.g. it stalled), the other answers it: this one stores nothing and says nothing."""
    other = await GenerationLog.open(settings.database.url)

    async def taken_over() -> None:
        [pending] = await log.pending()
        async with log.sessions() as session, session.begin():  # the lease ends...
            await session.execute(update(Request).values(lease_until=pending.created_at))
        assert await other.claim(pending.id, 60)  # ...and another process takes the request

    generator.hook = taken_over
    try:
        assert said(await say(core, "/tuit derecha")) == ("ignored", "")
    finally:
        await other.aclose()
    [row] = await requests(log)
    assert row.status == "pending" and row.lease_holder == other.holder
    async with log.sessions() as session:
        assert (await session.scalars(select(Generation))).all() == []


async def test_concurrent_requests_are_all_answered_and_logged(core: BotCore, log: GenerationLog) -> None:
    origins = [Origin("console", f"user{i}", f"chat{i % 4}") for i in range(24)]
    replies = await asyncio.gather(*(say(core, "/tuit izquierda", o) for o in origins))
    assert all(r.kind == "tweet" and r.text.endswith(FICTION_LABEL) for r in replies)
    assert len({r.tweet.generation_id for r in replies if r.tweet}) == 24
    assert [r.status for r in await requests(log)] == ["ok"] * 24


def due(parsed: object) -> tuple[str, str] | None:
    """What a ``/tuit`` is due after the parser's verdict: its error, or None for a tweet."""
    return ("error", parsed.message) if isinstance(parsed, ParseError) else None


def assert_answers(reply: Reply, error: tuple[str, str] | None) -> None:
    """``reply`` says ``error`` when one is due, else it is a labelled tweet."""
    if error is not None:
        assert said(reply) == error
    else:
        assert reply.kind == "tweet" and reply.tweet is not None and reply.text.endswith(FICTION_LABEL)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=120), data=st.text(max_size=30))
async def test_no_input_crashes_a_handler(core: BotCore, settings: Settings, text: str, data: str) -> None:
    """Whatever comes in gets the reply it is due: a tweet where the parser accepts the request,
    the parser's own Spanish message where it does not, never the internal-error reply (and
    nothing logged at ERROR: tests/support/error_logs.py)."""
    limit = settings.bot.max_command_chars
    assert_answers(await say(core, "/tuit " + text),
                   due(parse_command("/tuit " + text, core.catalog, limit)))
    assert_answers(await core.tuit_options(ORIGIN, tema=text, lado=data or None),
                   due(parse_fields(core.catalog, limit, tema=text, lado=data or None)))
    anything = await say(core, text)
    assert anything.kind in {"tweet", "error", "help", "options", "info"} and anything.text
    assert anything.text != texts.INTERNAL_ERROR
    pressed = await core.press(ORIGIN, data)
    assert pressed.kind in {"info", "tweet"} and pressed.text != texts.INTERNAL_ERROR


async def test_a_message_delivered_again_uses_no_quota(settings: Settings, log: GenerationLog) -> None:
    """Admission comes after the log recognises a message delivered again (a crash, Telegram's
    retry): the second delivery is ignored and does not count against the user's limit."""
    limits = settings.rate_limits.model_copy(update={"per_user_per_minute": 2, "per_chat_per_minute": 0})
    core = BotCore(settings.model_copy(update={"rate_limits": limits}), FakeGenerator(), log, MemoryRateLimiter())
    first = Origin("telegram", "u9", "c9", source="c9:1")
    assert (await core.handle(Incoming(first, "/tuit"))).kind == "tweet"
    assert (await core.handle(Incoming(first, "/tuit"))).kind == "ignored"  # delivered again
    second = Origin("telegram", "u9", "c9", source="c9:2")
    assert (await core.handle(Incoming(second, "/tuit"))).kind == "tweet"  # the second of two
    third = Origin("telegram", "u9", "c9", source="c9:3")
    assert (await core.handle(Incoming(third, "/tuit"))).kind == "rate_limited"


@pytest.mark.parametrize(("exc", "kind"), [
    (EngineClosed("draining"), "closed"), (EngineBusy("full"), "busy"),
    (GenerationTimeout("slow"), "timeout"), (BlockedOutput("nope"), "blocked"),
    (ValueError("bad override"), "generation"),
    pytest.param(RuntimeError("boom"), "internal", marks=pytest.mark.expect_errors(r"generation failed")),
])
async def test_each_generation_failure_is_counted_as_its_kind(
    core: BotCore, generator: FakeGenerator, monitor: Counted, exc: Exception, kind: Failure
) -> None:
    """Operators tell a full queue from a broken backend by the failure's kind (the label of
    the failures metric, bot/monitor.py); a full queue is also a refusal."""
    generator.fail = exc
    await say(core, "/tuit derecha")
    assert monitor.failures == [("console", kind)]
    assert monitor.refusals == ([("console", "busy")] if kind == "busy" else [])


@pytest.mark.parametrize(("exc", "reply"), [
    (GenerationTimeout("slow"), ("error", texts.TIMEOUT)),
    (EngineBusy("full"), ("busy", texts.BUSY)),
    (EngineClosed("draining"), ("ignored", "")),
])
async def test_a_failure_goes_into_the_placeholder_and_is_answered_once(
    core: BotCore, log: GenerationLog, generator: FakeGenerator, exc: Exception, reply: tuple[str, str]
) -> None:
    """A tweet that could not be written is said where the placeholder ("✍️ escribiendo…")
    is, and the reply names its request, so that its delivery is recorded and nobody says it
    again. Shutting down says nothing there: the placeholder already promises a tweet, which
    the process that takes the request over writes into it."""
    async def placeholder() -> MessageRef:
        return {"ref": "c1:50"}

    generator.fail = exc
    answer = await say(core, "/tuit derecha", replace(ORIGIN, placeholder=placeholder))
    [row] = await requests(log)
    assert said(answer) == reply and row.answer_ref == "c1:50"
    if isinstance(exc, EngineClosed):
        assert row.status == "pending" and row.lease_until is None  # any process answers it now
        return
    assert answer.request_id == row.id and answer.answer_ref == {"ref": "c1:50"}
    assert row.seed == generator.requests[0].seed  # the failed try can be replayed
    await core.delivered(answer, "c1:50")
    [row] = await requests(log)
    assert row.answered_at is not None  # no peer says it again


@pytest.mark.parametrize(("status", "error", "reply"), [
    ("rate_limited", "Espera 10 s", ("rate_limited", "Espera 10 s")),
    ("banned", texts.BANNED, ("error", texts.BANNED)),
    ("invalid", "No entendí «xyz».", ("error", "No entendí «xyz».")),
    ("busy", "EngineBusy: full", ("busy", texts.BUSY)),
    ("blocked", "BlockedOutput: nope", ("error", texts.BLOCKED)),
    ("error", "GenerationTimeout: slow", ("error", texts.TIMEOUT)),
    ("error", "RuntimeError: boom", ("error", texts.GENERATION_FAILED)),
])
async def test_a_stored_refusal_or_failure_is_said_again_with_its_words(
    core: BotCore, log: GenerationLog, status: str, error: str, reply: tuple[str, str]
) -> None:
    """A process that died between answering and delivering left a refusal or a failure in the
    log; the peer that delivers it says what the user was to be told, nothing generic."""
    begun = await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/tuit", {}, source="c1:77")
    await log.hold(begun.id, "c1:78")
    await log.finish(begun.id, status, error=error)
    request = await log.request(begun.id)
    assert request is not None
    again = await core.redeliver(request)
    assert again is not None and said(again) == reply
    assert again.request_id == begun.id and again.answer_ref == {"ref": "c1:78"}


async def test_a_logged_request_gives_back_its_origin(core: BotCore, log: GenerationLog) -> None:
    """A request answered after a restart is answered where and to whom it was asked: the
    origin is rebuilt whole from the log (a chat with no kind logged is private)."""
    begun = await log.begin("discord", "u9", "Bea", "g1", "", "La sala", "/tuit",
                            {"message_id": "5", "token": "t0k"}, source="i:1")
    request = await log.request(begun.id)
    assert request is not None
    assert core.origin_of(request) == Origin("discord", "u9", "g1", user_name="Bea", chat_kind="private",
                                             chat_title="La sala", message_id="5",
                                             reply_ref={"token": "t0k"}, source="i:1")
    bare = await log.begin("discord", "u9", "Bea", "g1", "guild", "", "/tuit", {})
    assert core.origin_of(await log.request(bare.id)).message_id == ""  # type: ignore[arg-type]


async def test_a_casual_models_stored_tweet_is_sent_again_as_it_was_shown(
    settings: Settings, log: GenerationLog, generator: FakeGenerator
) -> None:
    """A casual model's tweet delivered by a peer after a crash says what the first reply said
    (the model's own line, no tone buttons: a casual model takes no sentiment)."""
    core = BotCore(with_casual_right(settings), generator, log, MemoryRateLimiter())
    reply = await say(core, "/tuit derecha")
    assert reply.tweet is not None and reply.choices == ()
    request = await log.request(reply.tweet.request_id)
    assert request is not None and await core.redeliver(request) == reply


@pytest.mark.expect_errors(r"could not mark generation")
async def test_a_tweet_is_sent_when_its_sending_mark_cannot_be_stored(
    core: BotCore, log: GenerationLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answering now is worth the small chance of a second copy after a crash: when the mark
    cannot be written, the front-end is told to send (and the failure is logged)."""
    async def unreachable(generation_id: int) -> bool:
        raise OperationalError("UPDATE", {}, ConnectionError("caído"))

    monkeypatch.setattr(log, "mark_sending", unreachable)
    assert await core.mark_sending(1) is True


async def test_a_pending_request_that_asks_for_nothing_is_answered_with_why(core: BotCore, log: GenerationLog, monitor: Counted) -> None:
    """A request left pending that is not a tweet request (its command cannot be read back) is
    closed as invalid with the reason, and the reply names it so its delivery is recorded."""
    begun = await log.begin("telegram", "u1", "Ana", "c1", "private", "", "/nada", {}, source="c1:90")
    reply = await core.resume(begun.id)
    assert said(reply) == ("error", texts.EXPIRED) and reply.request_id == begun.id
    request = await log.request(begun.id)
    assert request is not None and (request.status, request.error) == ("invalid", texts.EXPIRED)
    assert monitor.failures == [("telegram", "bad_input")]


async def test_the_answer_goes_into_the_placeholder_logged_first(core: BotCore, log: GenerationLog) -> None:
    """When a peer took the request over and logged its own placeholder before this process
    logged one, the tweet goes into the peer's (the one the log names), so the chat shows one
    tweet, not a second placeholder left saying "escribiendo"."""
    async def placeholder() -> MessageRef:
        [pending] = await log.pending()
        assert await log.hold(pending.id, "c1:60")  # the peer's, logged first
        return {"ref": "c1:61"}

    reply = await say(core, "/tuit derecha", replace(ORIGIN, placeholder=placeholder))
    assert reply.kind == "tweet" and reply.answer_ref == {"ref": "c1:60"}


async def test_a_delivered_tweet_is_recorded_where_it_went(core: BotCore, log: GenerationLog) -> None:
    """The front-end's report of a delivery answers the request once and for all: the tweet
    keeps the message it is in (a reply to it follows it up), no peer delivers it again, and
    this process stops renewing its lease."""
    reply = await say(core, "/tuit derecha")
    assert reply.tweet is not None
    assert await log.renew(60, 600) == 1  # written, not yet delivered: still held
    await core.delivered(reply, "c1:70")
    tweet = await log.generation(reply.tweet.generation_id)
    assert tweet is not None and tweet.message_ref == "c1:70"
    [row] = await requests(log)
    assert row.answered_at is not None and await log.renew(60, 600) == 0
    assert not log.holds(reply.tweet.request_id)


def test_a_request_is_held_for_every_try_at_the_slowest_backends_limit() -> None:
    """The heartbeat renews a request's lease for as long as answering can take (every retry
    round at the engine's, or the remote backend's, time limit, plus the logging around them):
    shorter, and a slow live answer is taken over and written twice; longer, and a stuck one
    waits too long for a peer."""
    local = GenerationSettings.model_validate({
        "engine": {"request_timeout_s": 20}, "postprocess": {"max_tries": 3}, "remote": {"timeout_s": 50},
    })
    assert core_module.max_hold_seconds(local) == 20 * 3 + core_module.HOLD_MARGIN_S
    remote = local.model_copy(update={"backend": "remote"})
    assert core_module.max_hold_seconds(remote) == 50 * 3 + core_module.HOLD_MARGIN_S
    slow_engine = GenerationSettings.model_validate({
        "backend": "remote", "engine": {"request_timeout_s": 80},
        "remote": {"timeout_s": 50, "endpoints": ["http://a.test:8000/v1"]},
    })
    assert core_module.max_hold_seconds(slow_engine) == 80 * slow_engine.postprocess.max_tries + core_module.HOLD_MARGIN_S
