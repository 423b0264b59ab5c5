"""Follow-ups in the core: "/otra más negativo", a reply to a tweet, another sentiment's button;
and a tweet that starts with the user's words. A fake generator records every prompt."""

from __future__ import annotations

import random

import pytest

from bot.catalog import Catalog
from bot.command import ParsedCommand
from bot.config import Settings
from bot.core import BotCore
from bot.followup import apply_change, asks_for_tweet
from bot.parser import parse_change
from bot.ratelimit import MemoryRateLimiter
from bot.types import FICTION_LABEL, Origin, Reply
from db.log import GenerationLog
from tests.bot.test_core import ORIGIN, FakeGenerator, requests, say, with_casual_right

GROUP = Origin("telegram", "5", "-100", chat_kind="supergroup", message_id="31", source="-100:31")


@pytest.fixture
def generator() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def core(settings: Settings, log: GenerationLog, generator: FakeGenerator) -> BotCore:
    return BotCore(settings, generator, log, MemoryRateLimiter(), rng=random.Random(3))


def change(text: str, catalog: Catalog) -> ParsedCommand:
    parsed = parse_change(text, catalog, 300)
    assert isinstance(parsed, ParsedCommand), parsed
    return parsed


async def shown(core: BotCore, reply: Reply, where: str) -> None:
    """Record, as a front-end does, which message shows ``reply``'s tweet."""
    assert reply.tweet is not None
    await core.mark_sent(reply.tweet.generation_id, where)


# -- what a change changes -----------------------------------------------------------------------

def test_a_change_changes_only_what_it_says(catalog: Catalog) -> None:
    earlier = ParsedCommand("tuit", side="derecha", coalition="Chile Vamos", party="UDI", sentiment="POSITIVE",
                            entities=("pensiones",), start="Hoy")
    angrier = apply_change(earlier, change("más enojado", catalog), catalog)
    assert angrier == ParsedCommand("tuit", side="derecha", coalition="Chile Vamos", party="UDI",
                                    sentiment="NEGATIVE", entities=("pensiones",), start="Hoy")
    left = apply_change(earlier, change("ahora de izquierda", catalog), catalog)
    assert (left.side, left.coalition, left.party, left.sentiment) == ("izquierda", "", "", "POSITIVE")
    health = apply_change(earlier, change("sobre salud y vivienda", catalog), catalog)
    assert (health.entities, health.party) == (("salud", "vivienda"), "UDI")
    kast = apply_change(earlier, change("como kast", catalog), catalog)
    assert (kast.party, kast.coalition, kast.side) == ("IND", "Independiente", "derecha")
    same = apply_change(earlier, change("otra", catalog), catalog)
    assert same == earlier and change("otra", catalog).again


def test_a_new_coalition_keeps_the_side_only_if_it_fits(catalog: Catalog) -> None:
    earlier = ParsedCommand("tuit", side="derecha", coalition="Chile Vamos", party="RN")
    front = apply_change(earlier, change("del frente amplio", catalog), catalog)
    assert (front.side, front.coalition, front.party) == ("izquierda", "Frente Amplio", "")
    independent = apply_change(earlier, change("independiente", catalog), catalog)
    assert (independent.side, independent.coalition, independent.party) == ("derecha", "Independiente", "")


@pytest.mark.parametrize(("text", "asks"), [
    ("más enojado", True), ("otra", True), ("ahora de izquierda", True), ("sobre salud", True),
    ("kast", True), ("#Chile", True), ('empieza: "Hoy"', True), ("enojado", True),
    ("jajaja qué malo", False), ("gracias", False), ("buenísimo jaja", False), ("xd", False),
])
def test_a_plain_reply_asks_for_a_tweet_only_when_it_says_a_change(catalog: Catalog, text: str, asks: bool) -> None:
    assert asks_for_tweet(change(text, catalog)) is asks


# -- through the core ----------------------------------------------------------------------------

async def test_otra_with_a_change_follows_the_last_request(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    first = await say(core, "/tuit derecha positivo pensiones")
    second = await say(core, "/otra más negativo")
    assert second.kind == "tweet" and second.text.endswith(FICTION_LABEL) and "negativo" in second.text
    a, b = (r.prompt.fields for r in generator.requests)
    assert (b.partido, b.coalicion, b.entidades) == (a.partido, a.coalicion, a.entidades)
    assert (a.sentimiento, b.sentimiento) == ("POSITIVE", "NEGATIVE")
    rows = await requests(log)
    assert rows[1].parent_id == rows[0].id == first.tweet.request_id and rows[1].raw_command == "/otra más negativo"


async def test_a_follow_up_of_a_tweet_by_its_id(core: BotCore, generator: FakeGenerator) -> None:
    first = await say(core, "/tuit UDI feliz pensiones")
    await say(core, "/tuit izquierda salud")  # the user's last request is another one
    reply = await core.follow_up(ORIGIN, "ahora de izquierda", first.tweet.generation_id)
    fields = generator.requests[-1].prompt.fields
    assert reply.kind == "tweet" and core.catalog.parties[fields.partido].side == "izquierda"
    assert (fields.sentimiento, fields.entidades) == ("POSITIVE", ("pensiones",))
    assert (await core.follow_up(ORIGIN, "otra", 99999)).kind == "info"


async def test_a_reply_to_a_tweet_follows_that_tweet(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    first = await say(core, "/tuit derecha positivo pensiones", GROUP)
    await say(core, "/tuit izquierda neutral salud", GROUP)
    await shown(core, first, "-100:40")
    reply = await core.reply_to_tweet(Origin(**{**GROUP.__dict__, "message_id": "41", "source": "-100:41",
                                                "replied_ref": "-100:40"}), "más enojado")
    assert reply.kind == "tweet"
    fields = generator.requests[-1].prompt.fields
    assert (fields.sentimiento, fields.entidades) == ("NEGATIVE", ("pensiones",))
    assert core.catalog.parties[fields.partido].side == "derecha"
    assert (await requests(log))[-1].parent_id == first.tweet.request_id
    # "/otra" typed as a reply follows the tweet replied to as well
    replying = Origin(**{**GROUP.__dict__, "message_id": "42", "source": "-100:42", "replied_ref": "-100:40"})
    assert (await say(core, "/otra sobre salud", replying)).kind == "tweet"
    assert generator.requests[-1].prompt.fields.entidades == ("salud",)
    assert generator.requests[-1].prompt.fields.sentimiento == "POSITIVE"


async def test_a_reply_that_comes_before_the_delivery_is_recorded_finds_the_placeholder(
    core: BotCore, log: GenerationLog, generator: FakeGenerator
) -> None:
    """The placeholder's ref is logged before the tweet exists; a reply to it may arrive before
    the front-end has recorded where the tweet landed."""
    first = await say(core, "/tuit derecha positivo pensiones", GROUP)
    assert await log.hold(first.tweet.request_id, "-100:44")
    replying = Origin(**{**GROUP.__dict__, "message_id": "45", "source": "-100:45", "replied_ref": "-100:44"})
    assert (await core.reply_to_tweet(replying, "más enojado")).kind == "tweet"
    assert (await requests(log))[-1].parent_id == first.tweet.request_id


async def test_chat_that_replies_to_the_bot_gets_nothing_in_groups_and_a_hint_in_private(
    core: BotCore, log: GenerationLog, generator: FakeGenerator
) -> None:
    first = await say(core, "/tuit derecha", GROUP)
    await shown(core, first, "-100:40")
    before = len(await requests(log))
    for text in ("jajaja qué malo", "gracias bot", "x" * 400):
        origin = Origin(**{**GROUP.__dict__, "message_id": "50", "source": "-100:50", "replied_ref": "-100:40"})
        assert (await core.reply_to_tweet(origin, text)).kind == "ignored"
    not_a_tweet = Origin(**{**GROUP.__dict__, "message_id": "51", "replied_ref": "-100:39"})
    assert (await core.reply_to_tweet(not_a_tweet, "más enojado")).kind == "ignored"
    assert len(await requests(log)) == before and len(generator.requests) == 1
    private = Origin("telegram", "5", "5", message_id="60", source="5:60")
    tweet = await say(core, "/tuit derecha", private)
    await shown(core, tweet, "5:61")
    hint = await core.reply_to_tweet(Origin(**{**private.__dict__, "message_id": "62", "replied_ref": "5:61"}), "gracias")
    assert hint.kind == "info" and "más enojado" in hint.text


async def test_another_sentiments_button(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    reply = await say(core, "/tuit derecha positivo pensiones")
    gid = reply.tweet.generation_id
    assert [b.data for b in reply.choices] == [f"tone:{gid}:{v}" for v in ("NEGATIVE", "NEUTRAL", "MIXED")]
    pressed = await core.press(ORIGIN, f"tone:{gid}:NEGATIVE")
    assert pressed.kind == "tweet" and generator.requests[-1].prompt.fields.sentimiento == "NEGATIVE"
    assert (await requests(log))[-1].parent_id == reply.tweet.request_id
    for junk in ("tone:", f"tone:{gid}", f"tone:{gid}:FURIOUS", "tone:x:NEGATIVE", "tone:99999:NEGATIVE"):
        assert (await core.press(ORIGIN, junk)).kind == "info", junk


async def test_a_pending_follow_up_is_resumed_with_its_change(core: BotCore, log: GenerationLog, generator: FakeGenerator) -> None:
    first = await say(core, "/tuit derecha positivo pensiones")
    begun = await log.begin("console", "u1", "Ana", "c1", "private", "", "/otra más enojado", {},
                            first.tweet.request_id, lease_s=0.01)
    reply = await core.resume(begun.id)
    assert reply.kind == "tweet" and generator.requests[-1].prompt.fields.sentimiento == "NEGATIVE"


async def test_a_tweet_that_starts_with_your_words(core: BotCore, generator: FakeGenerator) -> None:
    reply = await say(core, '/tuit derecha pensiones empieza: "Hoy en La Moneda"')
    assert reply.kind == "tweet" and "empieza: «Hoy en La Moneda»" in reply.text
    sent = generator.requests[-1].prompt
    assert sent.seed_text == "Hoy en La Moneda" and sent.text().endswith("[TWEET] Hoy en La Moneda")
    assert all(c.fields.partido for c in sent.contrasts)  # still ranked against the other sides
    again = await say(core, "/otra más enojado")
    assert again.kind == "tweet" and generator.requests[-1].prompt.seed_text == "Hoy en La Moneda"
    long = await say(core, "/tuit empieza: " + "palabra " * 12)
    assert long.kind == "error" and "muy largo" in long.text and "80" in long.text


async def test_a_casual_model_takes_the_start_as_its_prompt(settings: Settings, log: GenerationLog, generator: FakeGenerator) -> None:
    core = BotCore(with_casual_right(settings), generator, log, MemoryRateLimiter())
    reply = await say(core, "/tuit derecha empieza: Compatriotas")
    sent = generator.requests[-1]
    assert reply.kind == "tweet" and sent.model == "casual-derecha"
    assert (sent.prompt.kind, sent.prompt.seed_text) == ("casual", "Compatriotas")
    assert reply.choices == ()  # a casual model writes free: no sentiment to change


async def test_the_reply_says_what_was_left_out_and_help_shows_everyday_examples(core: BotCore) -> None:
    reply = await say(core, "/tuit algo bacán sobre el sename")
    assert "tema: sename" in reply.text and "no usé: «bacán»" in reply.text
    help_text = (await say(core, "/ayuda")).text
    assert "/tuit algo feliz sobre el sename" in help_text and "más enojado" in help_text
