"""A real bot process killed with SIGKILL in the middle of a burst, restarted on the same
database: every command the log holds as pending is answered once, no command twice, and SQLite
survives intact.

Two windows remain that resuming cannot cover: an update Telegram delivered
but the handler had not yet logged, and a tweet logged as finished but not yet sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import telegram_config
from tests.telegram.helpers import QUEUE_NOTICE_PREFIX, final_answer

BURST = 24


def pending_messages(database: Path) -> list[int]:
    """Message ids of the commands the log holds as unanswered."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT reply_to FROM requests WHERE status = 'pending'").fetchall()
    return [int(json.loads(row[0])["message_id"]) for row in rows]


def answers(api: FakeBotAPI, message_id: int) -> int:
    """How many real answers (not "en cola" notices) a command got."""
    count = 0
    for call in api.replies_to(message_id):
        if call.method == "sendPhoto":
            count += 1
        elif call.method == "sendMessage":
            if not call.params["text"].startswith(QUEUE_NOTICE_PREFIX):
                count += 1
            else:
                notice = call.message["message_id"]
                count += bool([c for c in api.of("editMessageText") if c.params.get("message_id") == notice])
    return count


async def bot_process(config: Path, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "--config", str(config), "run",
        stdout=subprocess.DEVNULL, stderr=log.open("ab"), env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def test_kill_9_mid_burst_then_restart(api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path) -> None:
    limits = "[rate_limits]\nper_user_per_minute = 0\nper_chat_per_minute = 0\n"
    config = telegram_config(tmp_path, tiny_model_dir, api, limits)
    log = tmp_path / "bot.log"
    first = await bot_process(config, log)
    try:
        await api.wait_for(lambda: api.of("setMyCommands"), timeout=180)
        ids = [await api.send_text(f"/tuit tema {i}", user_id=100 + i) for i in range(BURST)]
        await api.wait_for(lambda: sum(final_answer(api, i) is not None for i in ids) >= 2, timeout=180)
    finally:
        first.kill()
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    pending = pending_messages(tmp_path / "test.db")
    assert pending, "the burst finished before the kill; nothing was tested"

    second = await bot_process(config, log)
    try:
        await api.wait_for(lambda: all(final_answer(api, i) for i in pending), timeout=180)
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 60)
    assert second.returncode == 0, log.read_text()[-3000:]
    assert [answers(api, i) for i in pending] == [1] * len(pending)
    assert max(answers(api, i) for i in ids) == 1
    assert api.violations == []
    with sqlite3.connect(tmp_path / "test.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = dict(db.execute("SELECT status, count(*) FROM requests GROUP BY status").fetchall())
    assert statuses.get("pending", 0) == 0
