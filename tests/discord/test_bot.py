"""Discord end to end: the real discord.py and the real app against a fake gateway and REST API."""

from __future__ import annotations

import pytest

from bot import texts
from bot.discord.frontend import DiscordFrontend
from bot.types import FICTION_LABEL
from db.log import GenerationLog
from tests.fakes.discord_api import EPHEMERAL, GUILD_ID, Call, FakeDiscord
from tests.support.bots import StartDiscord
from tests.support.waiting import eventually


def followups(fake: FakeDiscord, token: str) -> list[Call]:
    """What an interaction was answered with: follow-ups, and edits of its deferred response."""
    return [c for c in fake.for_token(token) if c.path.startswith("/webhooks/") and c.method in ("POST", "PATCH")]


def callback(fake: FakeDiscord, token: str) -> Call | None:
    return next((c for c in fake.for_token(token) if c.path.endswith("/callback")), None)


async def answered(fake: FakeDiscord, interaction: dict) -> Call:
    token = interaction["token"]
    return (await fake.wait_for(lambda: followups(fake, token), timeout=60))[-1]


async def test_slash_commands_are_synced_and_tuit_takes_options(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord() as frontend:
        names = {c["name"] for c in fake.commands}
        assert {"tuit", "otra", "ayuda", "opciones"} <= names
        sync = next(c for c in fake.calls if c.method == "PUT")
        assert f"/guilds/{GUILD_ID}/commands" in sync.path
        tuit = next(c for c in fake.commands if c["name"] == "tuit")
        options = {o["name"]: o for o in tuit["options"]}
        assert set(options) == {"lado", "coalicion", "partido", "sentimiento", "tema", "hashtags", "frases", "texto",
                                "empieza"}
        assert [c["value"] for c in options["lado"]["choices"]] == ["derecha", "centro", "izquierda"]
        assert options["partido"]["autocomplete"] and options["coalicion"]["autocomplete"]

        interaction = await fake.slash("tuit", {"lado": "izquierda", "sentimiento": "positivo", "tema": "salud"})
        answer = await answered(fake, interaction)
        assert callback(fake, interaction["token"]).body["type"] == 5  # deferred at once
        assert FICTION_LABEL in answer.body["content"]
        buttons, tones = ([b["custom_id"] for b in row["components"]] for row in answer.body["components"])
        assert [i.split(":")[0] for i in buttons] == ["up", "down", "again"]
        assert [i.split(":")[2] for i in tones] == ["NEGATIVE", "NEUTRAL", "MIXED"]  # another sentiment
        ids = buttons
        generation = await eventually(lambda: frontend.app.log.generation(int(ids[0].split(":")[1])),
                                      lambda g: g is not None and bool(g.message_ref))
        assert generation is not None and generation.side == "izquierda" and generation.message_ref

        free = await fake.slash("tuit", {"texto": "derecha negativo pensiones"}, guild=False)
        assert FICTION_LABEL in (await answered(fake, free)).body["content"]
        again = await fake.slash("otra", guild=False)
        assert FICTION_LABEL in (await answered(fake, again)).body["content"]
        for name in ("ayuda", "opciones"):
            reply = await answered(fake, await fake.slash(name))
            assert reply.body["content"] and not reply.body.get("flags", 0) & EPHEMERAL
    assert fake.violations == []


async def test_buttons_rate_regenerate_and_refuse_junk(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord():
        answer = await answered(fake, await fake.slash("tuit"))
        up, _, again = (b["custom_id"] for b in answer.body["components"][0]["components"])
        pressed = await fake.click(up, answer.message)
        response = await fake.wait_for(lambda: callback(fake, pressed["token"]))
        assert response.body["type"] == 4 and "👍" in response.body["data"]["content"]
        assert response.body["data"]["flags"] & EPHEMERAL

        regenerated = await fake.click(again, answer.message)
        second = await answered(fake, regenerated)
        assert FICTION_LABEL in second.body["content"] and second.body["content"] != ""

        for junk in ("", "again:", "x" * 100, "up:999999"):
            press = await fake.click(junk, answer.message)
            reply = await fake.wait_for(lambda press=press: callback(fake, press["token"]))
            assert reply.body["data"]["flags"] & EPHEMERAL
    assert fake.violations == []


async def test_errors_are_ephemeral_and_odd_options_are_answered(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord():
        cases = [
            ({"partido": "NOEXISTE"}, texts.err_unknown_value("party", "NOEXISTE", None)),
            ({"coalicion": "x" * 3000}, texts.err_too_long(3010, 300)),
            ({"lado": "arriba"}, texts.err_unknown_value("side", "arriba", None)),
            ({"texto": "lado=derecha lado=izquierda"}, texts.err_two_values("side", "derecha", "izquierda")),
            ({"tema": "\u0000\u202e" * 50, "frases": '"' * 20}, texts.ERR_CONTROL_CHARS),
        ]
        for options, error in cases:
            interaction = await fake.slash("tuit", options)
            reply = await answered(fake, interaction)
            assert reply.body["content"] == error, options
            assert reply.body.get("flags", 0) & EPHEMERAL
            assert any(c.method == "DELETE" for c in fake.for_token(interaction["token"]))
        unknown = await fake.slash("comando", {"texto": "noexiste"})
        assert (await answered(fake, unknown)).body.get("flags", 0) & EPHEMERAL
    assert fake.violations == []


async def test_autocomplete_offers_coalitions_and_parties(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord():
        asked = await fake.autocomplete("tuit", "partido", "pdc")
        result = await fake.wait_for(lambda: callback(fake, asked["token"]))
        assert result.body["type"] == 8
        assert [c["value"] for c in result.body["data"]["choices"]] == ["PDC"]
        asked = await fake.autocomplete("tuit", "coalicion", "")
        result = await fake.wait_for(lambda: callback(fake, asked["token"]))
        assert "Chile Vamos" in [c["value"] for c in result.body["data"]["choices"]]
    assert fake.violations == []


async def test_card_mode_attaches_a_png(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord(render="card"):
        answer = await answered(fake, await fake.slash("tuit", {"lado": "derecha"}))
        assert answer.files == 1 and answer.body["content"] == FICTION_LABEL
    assert fake.violations == []


async def test_global_sync_and_rate_limits(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    limits = "[rate_limits]\nper_user_per_minute = 1\nper_chat_per_minute = 0\n"
    async with start_discord(limits, guild=False):
        assert any(c.method == "PUT" and c.path.endswith("/commands") and "/guilds/" not in c.path for c in fake.calls)
        first = await answered(fake, await fake.slash("tuit", user_id=55))
        second = await answered(fake, await fake.slash("tuit", user_id=55))
        assert FICTION_LABEL in first.body["content"]
        assert FICTION_LABEL not in second.body["content"] and second.body["flags"] & EPHEMERAL
    assert fake.violations == []


async def test_pending_requests_resume_through_their_webhook(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    """Pending requests are answered once (one another process holds, once its lease ends), a
    stored tweet never sent is sent as it is, one whose send began is not sent again."""
    import time
    from datetime import UTC, datetime, timedelta

    from db.log import NewGeneration
    from tests.fakes.discord_api import APP_ID

    async def pending(app, token: str, age: timedelta, lease_s: float | None = None) -> int:
        now = datetime.now(UTC)
        return (await app.log.write("begin", {
            "at": (now - age).isoformat(), "platform": "discord", "user_external_id": "7",
            "user_name": "Ana", "chat_external_id": "4", "chat_kind": "guild", "chat_title": "",
            "raw_command": "/tuit derecha", "parent_id": None, "source": f"interaction-{token}",
            "reply_to": {"message_id": "1", "application_id": str(APP_ID), "interaction_token": token},
            "lease_until": (now + timedelta(seconds=lease_s)).isoformat() if lease_s is not None else None,
        })).id

    async def stored(app, token: str, text: str) -> int:
        request_id = await pending(app, token, timedelta(minutes=2))
        [generation_id] = await app.log.finish(request_id, "ok", controls={"side": "derecha"}, side="derecha",
                                               model="demo", generations=[NewGeneration(text)])
        return generation_id

    async with start_discord() as frontend:
        await frontend.stop()  # the first run "crashes" before these are answered
        app = frontend.app
        young = await pending(app, "tok-young", timedelta(minutes=3))
        old = await pending(app, "tok-old", timedelta(minutes=20))
        held_from = time.monotonic()
        held = await pending(app, "tok-held", timedelta(minutes=1), lease_s=2)
        never = await stored(app, "tok-never", "Un tuit que nunca salió")
        began = await stored(app, "tok-began", "Un tuit que quizá salió")
        await app.log.mark_sending(began)
        resumed = DiscordFrontend(app, app.settings.discord)
        await resumed.start()
        try:
            sent = await fake.wait_for(lambda: followups(fake, "tok-young"))
            assert FICTION_LABEL in sent[0].body["content"] and sent[0].path.endswith("/@original")
            await fake.wait_for(lambda: followups(fake, "tok-held") and followups(fake, "tok-never"), timeout=30)
            await eventually(lambda: app.log.unanswered(600), lambda left: left == [])
        finally:
            await resumed.stop()
        assert (await app.log.request(young)).status == "ok"
        assert (await app.log.request(old)).status == "expired"
        assert (await app.log.request(held)).status == "ok"
        assert not followups(fake, "tok-old") and not followups(fake, "tok-began")
        [late] = followups(fake, "tok-held")
        assert late.at - held_from >= 1.9  # not before the other process's lease ended
        [resent] = followups(fake, "tok-never")
        assert resent.body["content"].startswith("Un tuit que nunca salió") and FICTION_LABEL in resent.body["content"]
        generation = await app.log.generation((await app.log.request(young)).generation_ids[0])
        assert generation.message_ref
        assert (await app.log.generation(never)).message_ref
    assert fake.violations == []


async def test_odd_interactions_leave_the_bot_answering(
    fake: FakeDiscord, start_discord: StartDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.WARNING)
    async with start_discord():
        tuit_id = next(c["id"] for c in fake.commands if c["name"] == "tuit")
        old = fake._message({"content": "un tuit viejo"})
        odd = [
            fake.interaction(2, {"id": tuit_id, "name": "tuit", "type": 1}),  # no options at all
            fake.interaction(2, {"id": tuit_id, "name": "tuit", "type": 1, "options": [{"name": "nada", "type": 3, "value": "x"}]}),
            fake.interaction(2, {"id": tuit_id, "name": "tuit", "type": 1, "options": [{"name": "lado", "type": 3, "value": ""}]}),
            fake.interaction(2, {"id": "1", "name": "noexiste", "type": 1}),
            fake.interaction(3, {"custom_id": "🔁" * 40, "component_type": 2}, message=old),
            fake.interaction(3, {"custom_id": "up:1", "component_type": 3, "values": ["a"]}, message=old),
            fake.interaction(5, {"custom_id": "modal", "components": []}),  # a modal we never opened
            fake.interaction(4, {"id": tuit_id, "name": "tuit", "type": 1, "options": [{"name": "partido", "type": 3, "value": "x" * 500, "focused": True}]}),
        ]
        for payload in odd:
            await fake.dispatch("INTERACTION_CREATE", payload)
        still = await answered(fake, await fake.slash("ayuda"))
        assert still.body["content"]
        for payload in odd[:3]:
            assert (await answered(fake, payload)).body["content"]
    ours = [r for r in caplog.records if r.name.startswith("bot.") and r.levelno >= logging.ERROR]
    assert ours == [], [r.getMessage() for r in ours]
    assert fake.violations == []


async def test_free_text_and_options_combine(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord() as frontend:
        interaction = await fake.slash("tuit", {"texto": "pensiones dignas", "coalicion": "Frente Amplio"})
        answer = await answered(fake, interaction)
        first_id = answer.body["components"][0]["components"][0]["custom_id"]
        generation = await frontend.app.log.generation(int(first_id.split(":")[1]))
        assert generation.coalition == "Frente Amplio" and generation.side == "izquierda"
        assert "pensiones" in str(generation.controls)
    assert fake.violations == []


async def generation_behind(frontend: DiscordFrontend, answer: Call):
    """The logged tweet a follow-up message shows (from its first button's id)."""
    first_id = answer.body["components"][0]["components"][0]["custom_id"]
    return await frontend.app.log.generation(int(first_id.split(":")[1]))


async def test_follow_ups_from_a_sentiment_button_and_from_otra_with_a_change(fake: FakeDiscord, start_discord: StartDiscord) -> None:
    async with start_discord() as frontend:
        log = frontend.app.log
        answer = await answered(fake, await fake.slash("tuit", {"texto": "derecha feliz pensiones"}))
        first = await generation_behind(frontend, answer)
        negative = next(b["custom_id"] for b in answer.body["components"][1]["components"]
                        if b["custom_id"].endswith(":NEGATIVE"))
        retoned = await answered(fake, await fake.click(negative, answer.message))
        assert FICTION_LABEL in retoned.body["content"] and "negativo" in retoned.body["content"]
        second = await generation_behind(frontend, retoned)
        assert (second.sentiment, second.party, second.controls["entities"]) == ("NEGATIVE", first.party, ["pensiones"])
        assert (await log.request(second.request_id)).parent_id == first.request_id

        changed = await answered(fake, await fake.slash("otra", {"cambio": "ahora sobre salud, en tono neutral"}))
        third = await generation_behind(frontend, changed)
        assert (third.sentiment, third.party, third.controls["entities"]) == ("NEUTRAL", first.party, ["salud"])
        assert (await log.request(third.request_id)).parent_id == second.request_id
        otra = next(c for c in fake.commands if c["name"] == "otra")
        assert [o["name"] for o in otra["options"]] == ["cambio"]

        started = await answered(fake, await fake.slash("tuit", {"lado": "izquierda", "empieza": "Compañeras y compañeros"}))
        assert "Compañeras y compañeros" in started.body["content"]
        assert (await generation_behind(frontend, started)).text.startswith("Compañeras y compañeros")
    assert fake.violations == []


async def test_a_stop_lets_the_answers_in_hand_reach_discord_and_the_log(
    fake: FakeDiscord, start_discord: StartDiscord
) -> None:
    """A rolling restart finishes what the process holds: an answer still on its way when the
    stop begins arrives, and its delivery is logged (so no peer sends it again), before the
    client and the database close."""
    fake.webhook_delay_s = 0.5  # Discord holds every answer's response this long
    async with start_discord() as frontend:
        url = frontend.app.settings.database.url
        interaction = await fake.slash("tuit", {"lado": "derecha", "tema": "salud"})
        await answered(fake, interaction)  # Discord has the tweet; the bot awaits the response
    log = await GenerationLog.open(url)
    try:
        request = await log.request(1)  # the fresh log's only request
        assert request is not None and request.status == "ok"
        assert await log.unanswered(600) == []  # its delivery was recorded
        tweet = await log.generation(request.generation_ids[0])
        assert tweet is not None and tweet.message_ref
    finally:
        await log.aclose()
