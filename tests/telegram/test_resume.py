"""After a crash the log is the only trace of an unanswered command or an unsent tweet: a restart
answers each once (generating what was pending, sending what was stored but never sent), never
sends again a tweet whose send had begun, and waits for a request another process holds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.types import FICTION_LABEL
from db.log import NewGeneration
from tests.fakes.telegram_api import FakeBotAPI
from tests.support.waiting import eventually
from tests.telegram.conftest import running_app, running_bot, telegram_config
from tests.telegram.helpers import answer_to, text_of


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


async def stored(app, chat: str, message_id: int, text: str, *, age: timedelta, began_sending: bool) -> int:
    """A tweet a previous run logged; it died before sending it, or after it began to."""
    request_id = await pending(app, chat, message_id, "/tuit derecha", age=age)
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
        assert (await app.log.request(young)).status == "ok"
        assert (await app.log.request(old)).status == "expired"
        assert (await app.log.request(other_platform)).status == "pending"
        generation = await app.log.generation((await app.log.request(young)).generation_ids[0])
        assert generation.message_ref == f"77:{answer.message['message_id']}"

    async with running_app(config) as app, running_bot(app):
        await api.wait_for(lambda: len(api.of("setMyCommands")) == 2)
        assert len(api.replies_to(555)) == 1 and not api.replies_to(556)
    assert api.violations == []


async def test_a_stored_tweet_never_sent_is_sent_once_and_one_maybe_sent_never_again(
    api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = telegram_config(tmp_path, tiny_model_dir, api)
    async with running_app(config) as app:
        never = await stored(app, "78", 601, "Un tuit que nunca salió", age=timedelta(minutes=2), began_sending=False)
        await stored(app, "78", 602, "Un tuit que quizá salió", age=timedelta(minutes=2), began_sending=True)
        await stored(app, "78", 603, "Un tuit de hace horas", age=timedelta(hours=2), began_sending=False)
        async with running_bot(app) as frontend:
            answer = await answer_to(api, 601)
            await asyncio.wait_for(frontend._resuming, 30)
            generation = await eventually(lambda: app.log.generation(never), lambda g: bool(g.message_ref))
        text = text_of(answer)
        assert text.startswith("Un tuit que nunca salió") and text.endswith(FICTION_LABEL)
        assert "lado derecha" in text and "partido RN (al azar)" in text  # as first written
        assert generation.message_ref == f"78:{answer.message['message_id']}"
        # Sent as stored: nothing was generated again.
        assert (await app.log.request(generation.request_id)).generation_ids == (never,)
        assert not api.replies_to(602) and not api.replies_to(603)

    async with running_app(config) as app, running_bot(app) as frontend:
        await asyncio.wait_for(frontend._resuming, 30)
    assert len(api.replies_to(601)) == 1 and not api.replies_to(602)
    assert api.violations == []


async def test_a_request_another_process_holds_is_answered_once_its_lease_ends(
    api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path
) -> None:
    config = telegram_config(tmp_path, tiny_model_dir, api)
    async with running_app(config) as app:
        leased_at = time.monotonic()
        held = await pending(app, "79", 701, "/tuit izquierda", age=timedelta(minutes=1), lease_s=2)
        async with running_bot(app) as frontend:
            answer = await answer_to(api, 701)
            await asyncio.wait_for(frontend._resuming, 30)
        assert answer.at - leased_at >= 1.9  # not before the lease ended, and not skipped
        assert (await app.log.request(held)).status == "ok"
    assert len(api.replies_to(701)) == 1
