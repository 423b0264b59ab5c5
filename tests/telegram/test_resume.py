"""After a crash the log is the only trace of an unanswered command or an undelivered answer: a
live process answers each once (generating what was pending, delivering what was stored), edits
a placeholder rather than sending again, never sends again a new message whose send had begun,
and waits for a request another process holds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.telegram.frontend import PLACEHOLDER
from bot.types import FICTION_LABEL
from db.log import NewGeneration
from tests.fakes.telegram_api import FakeBotAPI
from tests.support.bots import running_app, running_bot, telegram_config
from tests.support.waiting import eventually
from tests.telegram.helpers import answer_to, shown_answers, text_of


async def pending(app, chat: str, message_id: int, command: str, *, age: timedelta, platform: str = "telegram",
                  lease_s: float | None = None) -> int:
    """A command logged by a previous run that died before answering it (or by a live process
    that holds it for ``lease_s`` more seconds)."""
    now = datetime.now(UTC)
    return (await app.log.write("begin", {
        "at": (now - age).isoformat(), "platform": platform, "user_external_id": chat, "user_name": "Ana",
        "chat_external_id": chat, "chat_kind": "private", "chat_title": "", "raw_command": command,
        "reply_to": {"chat_id": chat, "message_id": str(message_id)}, "parent_id": None,
        "source": f"{chat}:{message_id}",
        "lease_until": (now + timedelta(seconds=lease_s)).isoformat() if lease_s is not None else None,
    })).id


async def stored(app, chat: str, message_id: int, text: str, *, age: timedelta, began_sending: bool,
                 answer_ref: str = "") -> int:
    """A tweet a previous run logged (with its placeholder, if ``answer_ref``); it died before
    sending it, or after it began to."""
    request_id = await pending(app, chat, message_id, "/tuit derecha", age=age)
    if answer_ref:
        await app.log.hold(request_id, answer_ref)
    controls = {"side": "derecha", "coalition": "Chile Vamos", "party": "RN", "sentiment": "POSITIVE",
                "entities": [], "hashtags": [], "phrases": [], "chosen": ["party"]}
    [generation_id] = await app.log.finish(
        request_id, "ok", controls=controls, side="derecha", coalition="Chile Vamos", party="RN",
        sentiment="POSITIVE", model="demo", generations=[NewGeneration(text)],
    )
    if began_sending:
        await app.log.mark_sending(generation_id)
    return generation_id


async def test_pending_requests_are_answered_once_and_old_ones_expire(
    api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = telegram_config(tmp_path, tiny_model_dir, api)
    async with running_app(config) as app:
        young = await pending(app, "77", 555, "/tuit derecha positivo", age=timedelta(minutes=2))
        old = await pending(app, "77", 556, "/tuit izquierda", age=timedelta(hours=1))
        other_platform = await pending(app, "77", 557, "/tuit", age=timedelta(minutes=1), platform="discord")
        async with running_bot(app):
            answer = await answer_to(api, 555)
            assert FICTION_LABEL in text_of(answer) and answer.params["chat_id"] == 77
            assert answer.method == "editMessageText"  # into a placeholder put up for it
        assert (await app.log.request(young)).status == "ok"
        assert (await app.log.request(old)).status == "expired"
        assert (await app.log.request(other_platform)).status == "pending"
        generation = await app.log.generation((await app.log.request(young)).generation_ids[0])
        assert generation.message_ref == f"77:{answer.message['message_id']}"

    async with running_app(config) as app, running_bot(app):
        await api.wait_for(lambda: len(api.of("setMyCommands")) == 2)
        assert len(shown_answers(api, 555)) == 1 and not api.replies_to(556)
    assert api.violations == []


async def test_stored_answers_are_delivered_once_into_their_placeholder_or_as_new_messages(
    api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A previous run died after storing answers but before delivering them: a tweet never sent
    goes out as stored; one whose placeholder was up is edited into it (safe to repeat); a
    refusal is said again; one sent as a new message whose send began is never sent again (it
    may have arrived); an old one is left alone."""
    config = telegram_config(tmp_path, tiny_model_dir, api)
    async with running_app(config) as app:
        never = await stored(app, "78", 601, "Un tuit que nunca salió", age=timedelta(minutes=2), began_sending=False)
        await stored(app, "78", 602, "Un tuit que quizá salió", age=timedelta(minutes=2), began_sending=True)
        await stored(app, "78", 603, "Un tuit de hace horas", age=timedelta(hours=2), began_sending=False)
        placeholder = api.sent_before(78, PLACEHOLDER, reply_to=604)
        into = await stored(app, "78", 604, "Un tuit con su marcador", age=timedelta(minutes=1), began_sending=True,
                            answer_ref=f"78:{placeholder}")
        refused = await pending(app, "78", 605, "/tuit x", age=timedelta(minutes=1))
        await app.log.finish(refused, "rate_limited", error="Espera 9 s para pedir otro tuit.")
        async with running_bot(app):
            answer = await answer_to(api, 601)
            edited = (await api.wait_for(lambda: api.edits_of(78, placeholder), 60))[-1]
            again = await answer_to(api, 605)
            generation = await eventually(lambda: app.log.generation(never), lambda g: bool(g.message_ref))
            await eventually(lambda: app.log.unanswered(600), lambda left: left == [])
        text = text_of(answer)
        assert text.startswith("Un tuit que nunca salió") and text.endswith(FICTION_LABEL)
        assert "lado derecha" in text and "partido RN (al azar)" in text  # as first written
        assert generation.message_ref == f"78:{answer.message['message_id']}"
        # Sent as stored: nothing was generated again.
        assert (await app.log.request(generation.request_id)).generation_ids == (never,)
        assert edited.method == "editMessageText" and edited.params["message_id"] == placeholder
        assert text_of(edited).startswith("Un tuit con su marcador")
        assert text_of(again) == "Espera 9 s para pedir otro tuit."
        assert not api.replies_to(602) and not api.replies_to(603)
        assert (await app.log.request((await app.log.generation(into)).request_id)).status == "ok"

    async with running_app(config) as app, running_bot(app):
        await api.wait_for(lambda: len(api.of("setMyCommands")) == 2)
        await eventually(lambda: app.log.unanswered(600), lambda left: left == [])
    assert [len(shown_answers(api, m)) for m in (601, 602, 603, 604, 605)] == [1, 0, 0, 1, 1]
    assert api.violations == []


async def test_a_request_another_process_holds_is_answered_once_its_lease_ends(
    api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = telegram_config(tmp_path, tiny_model_dir, api)
    async with running_app(config) as app:
        leased_at = time.monotonic()
        held = await pending(app, "79", 701, "/tuit izquierda", age=timedelta(minutes=1), lease_s=2)
        async with running_bot(app):
            answer = await answer_to(api, 701)
        assert answer.at - leased_at >= 1.9  # not before the lease ended, and not skipped
        assert (await app.log.request(held)).status == "ok"
    assert len(shown_answers(api, 701)) == 1
