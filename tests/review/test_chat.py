"""Review in chat: only configured admins review, ban or see others' data; anyone may /borrarme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.config import Settings
from bot.core import BotCore
from bot.ratelimit import MemoryRateLimiter
from bot.review import (
    CANT_BAN_ADMIN,
    NOT_ADMIN,
    NOTHING_STORED,
    QUEUE_EMPTY,
    USE_PRIVATE,
    ChatReview,
)
from bot.types import FICTION_LABEL, Incoming, Origin
from db.log import GenerationLog
from db.review import Filters, ReviewStore
from generation.types import EngineBusy
from tests.review.factory import LogFactory

ADMIN = Origin("telegram", "1", "1", "Admin")
DISCORD_ADMIN = Origin("discord", "2", "2", "Admin", chat_kind="dm")
USER = Origin("telegram", "100", "100", "Ana")
OTHER = Origin("telegram", "300", "300", "Otro")


class NoGenerator:
    """Review commands never generate: this one only notes being asked (raising here would be
    swallowed by the core and turned into a reply), and the ``core`` fixture checks it never was."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    async def generate(self, req: Any) -> Any:
        self.asked.append(req)
        raise EngineBusy("review tests never generate")


@pytest.fixture
def core(engine: AsyncEngine) -> Iterator[BotCore]:
    settings = Settings(telegram={"admins": [1]}, discord={"admins": [2]})
    generator = NoGenerator()
    bot = BotCore(settings, generator, GenerationLog(engine), MemoryRateLimiter())
    ChatReview(settings, ReviewStore(engine)).install(bot)
    yield bot
    assert generator.asked == [], "a review command generated a tweet"


async def say(core: BotCore, origin: Origin, text: str) -> Any:
    return await core.handle(Incoming(origin, text))


async def test_non_admins_cannot_review_ban_or_see_anything(core: BotCore, factory: LogFactory, store: ReviewStore) -> None:
    _, (generation_id,) = await factory.tweet("secreto de Ana", user="100", user_name="Ana")
    for command in ("/revisar", "/pendientes", "/ban 300", "/desban 100", "/review", "/revisar@MiBot"):
        reply = await say(core, OTHER, command)
        assert reply.text == NOT_ADMIN and not reply.buttons, command
    for action in ("approve", "reject", "flag"):
        reply = await core.press(OTHER, f"{action}:{generation_id}")
        assert reply.text == NOT_ADMIN
    # An admin of one platform is nobody on another.
    assert (await say(core, Origin("discord", "1", "1"), "/revisar")).text == NOT_ADMIN
    assert (await store.counts())["pending"] == 1
    assert not await store.is_banned("telegram", "300")


async def test_admin_commands_stay_out_of_groups(core: BotCore, factory: LogFactory) -> None:
    await factory.tweet("hola")
    group = Origin("telegram", "1", "-500", "Admin", chat_kind="group")
    assert (await say(core, group, "/revisar")).text == USE_PRIVATE


async def test_admin_reviews_the_queue_with_buttons(core: BotCore, factory: LogFactory, store: ReviewStore) -> None:
    _, (first,) = await factory.tweet("primer tuit", user_name="Ana")
    _, (second,) = await factory.tweet("segundo tuit")
    await factory.rate(first, 1)
    await factory.rate(first, -1, user="201")

    reply = await say(core, ADMIN, "/revisar")
    assert "primer tuit" in reply.text and FICTION_LABEL in reply.text
    assert "👍 1 · 👎 1" in reply.text and "partido RN" in reply.text and "tema pensiones" in reply.text
    assert "Ana (telegram:100)" in reply.text and "2 pendiente(s)" in reply.text
    assert [b.data for b in reply.buttons] == [f"approve:{first}", f"reject:{first}", f"flag:{first}"]

    reply = await core.press(ADMIN, f"approve:{first}")
    assert reply.text.startswith(f"✅ Aprobado: tuit {first}.") and "segundo tuit" in reply.text
    reply = await core.press(DISCORD_ADMIN, f"flag:{second}")
    assert reply.text.startswith("🚩 Marcado") and QUEUE_EMPTY in reply.text and not reply.buttons
    assert (await say(core, ADMIN, "/pendientes")).text.startswith("Pendientes de revisión: 0")
    detail = await store.detail(await store.request_of(second))
    assert detail.generation(second).reviews[0].admin == "discord:2"
    assert (await core.press(ADMIN, "reject:999999")).text.startswith("Ese tuit ya no existe")


async def test_ban_and_unban(core: BotCore, store: ReviewStore) -> None:
    assert (await say(core, ADMIN, "/ban 100")).text == "telegram:100 bloqueado."
    assert await store.is_banned("telegram", "100")
    assert (await say(core, USER, "/tuit derecha")).text == texts.BANNED
    assert (await say(core, ADMIN, "/ban 100")).text == "telegram:100 ya estaba bloqueado."
    assert (await say(core, ADMIN, "/desban telegram:100")).text == "telegram:100 desbloqueado."
    assert not await store.is_banned("telegram", "100")
    assert (await say(core, ADMIN, "/ban discord:1")).text == "discord:1 bloqueado."
    assert (await say(core, ADMIN, "/ban 1")).text == CANT_BAN_ADMIN
    for bad in ("/ban", "/ban Ana", "/ban 1 2", "/ban slack:5"):
        assert (await say(core, ADMIN, bad)).text.startswith("Uso: /ban"), bad
    assert [e.action for e in reversed(await store.audit_trail())] == ["ban", "unban", "ban"]


async def test_borrarme_deletes_only_the_callers_data(core: BotCore, factory: LogFactory, store: ReviewStore) -> None:
    _, (mine,) = await factory.tweet("de Ana", user="100")
    await factory.tweet("de Otro", user="300", user_name="Otro")
    await factory.rate(mine, 1, user="300")
    reply = await say(core, USER, "/borrarme")
    assert reply.text == (
        "Borré tus datos: 1 pedido(s), 1 tuit(s) generado(s), 0 valoración(es), "
        "tu perfil (nombre e identificador)."
    )
    assert [r.text for r in (await store.search(Filters())).rows] == ["de Otro"]
    assert (await say(core, USER, "/borrarme")).text == NOTHING_STORED
    assert (await say(core, OTHER, "/forgetme")).text.startswith("Borré tus datos: 1 pedido(s)")
