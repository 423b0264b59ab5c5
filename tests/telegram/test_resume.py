"""After a crash the log is the only trace of an unanswered command: a restart answers it once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.types import FICTION_LABEL
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import running_app, running_bot, telegram_config
from tests.telegram.helpers import answer_to, text_of


async def pending(app, chat: str, message_id: int, command: str, *, age: timedelta, platform: str = "telegram") -> int:
    """A command logged by a previous run that died before answering it."""
    at = datetime.now(UTC) - age
    return await app.log.write("begin", {
        "at": at.isoformat(), "platform": platform, "user_external_id": chat, "user_name": "Ana",
        "chat_external_id": chat, "chat_kind": "private", "chat_title": "", "raw_command": command,
        "reply_to": {"chat_id": chat, "message_id": str(message_id)}, "parent_id": None,
    })


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
