"""A real bot process killed with SIGKILL in the middle of a burst, restarted on the same
database: every command is answered exactly once and none is lost, and SQLite survives intact.

What makes that hold, checked here: an update is confirmed to Telegram (the fake forgets it)
only once its command is in the log; updates the dead process had fetched but not confirmed
come again and are recognised if it had logged them; updates Telegram delivers again after
they were answered (a confirmation that never arrived) are not answered twice; and what the
dead process logged but never answered, or answered but never sent, the restart answers once
its lease has run out: leases are short heartbeats (``bot.lease_s``), so every lease the dead
process held ends within ``lease_s`` of the kill, whatever the generation time limit. The test
prints how long after the restarted bot's first poll the last pending command was answered
(the figure in the README's "Nothing lost").
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram.conftest import telegram_config
from tests.telegram.helpers import QUEUE_NOTICE_PREFIX, final_answer

WAVE = 4
BURST = 26
#: For the bot processes: one request at a time, of several candidates, so that the kill finds
#: many in flight (the generation time limit stays the default: leases do not depend on it).
ENGINE = {"POLITICO_GENERATION__ENGINE__MAX_BATCH": "1", "POLITICO_BOT__CANDIDATES": "4"}
#: ``bot.lease_s`` as shipped in config.toml (the tests' config does not set it).
LEASE_S = 15.0


def pending_messages(database: Path) -> list[int]:
    """Message ids of the commands the log holds as unanswered."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT reply_to FROM requests WHERE status = 'pending'").fetchall()
    return [int(json.loads(row[0])["message_id"]) for row in rows]


def lease_ends(database: Path) -> list[datetime]:
    """When the leases of the pending requests end (UTC)."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT lease_until FROM requests WHERE status = 'pending'").fetchall()
    return [datetime.fromisoformat(row[0]).replace(tzinfo=UTC) for row in rows if row[0]]


def logged_sources(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT source FROM requests")}


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
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **ENGINE}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "--config", str(config), "run",
        stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=env,
    )


async def test_kill_9_mid_burst_then_restart(api: FakeBotAPI, tmp_path: Path, tiny_model_dir: Path) -> None:
    limits = "[rate_limits]\nper_user_per_minute = 0\nper_chat_per_minute = 0\n"
    config = telegram_config(tmp_path, tiny_model_dir, api, limits)
    database, log = tmp_path / "test.db", tmp_path / "bot.log"
    unlogged: list[int] = []

    def check_logged(updates: list[dict[str, Any]]) -> None:
        """Runs as Telegram forgets these updates: each command must be in the log by now."""
        sources = logged_sources(database)
        message = [u["message"] for u in updates]
        unlogged.extend(m["message_id"] for m in message if f"{m['chat']['id']}:{m['message_id']}" not in sources)

    api.on_confirm = check_logged
    first = await bot_process(config, log)
    try:
        await api.wait_for(lambda: api.of("setMyCommands"), timeout=180)
        ids = [await api.send_text(f"/tuit ola {i}", user_id=300 + i) for i in range(WAVE)]
        await api.wait_for(lambda: {api.update_of(i) for i in ids} <= set(api.confirmed), timeout=180)
        burst = [await api.send_text(f"/tuit tema {i}", user_id=100 + i) for i in range(BURST)]
        await api.wait_for(lambda: sum(final_answer(api, i) is not None for i in burst) >= 2, timeout=180)
        ids += burst
    finally:
        first.kill()
        killed_at = datetime.now(UTC)
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    pending = pending_messages(database)
    assert pending, "the burst finished before the kill; nothing was tested"
    # The dead process's leases were renewed while it lived and end soon after it died.
    assert max(lease_ends(database)) <= killed_at + timedelta(seconds=LEASE_S + 1)
    answered = [i for i in ids if final_answer(api, i) is not None]
    logged = logged_sources(database)
    confirmed = [i for i in ids if api.update_of(i) in api.confirmed]
    # Telegram sends again what it never heard confirmed; say the confirmation of the first wave
    # got lost too: every command the dead process logged comes again.
    await api.redeliver([api.update_of(i) for i in confirmed])

    polls_before = len(api.poll_times)
    second = await bot_process(config, log)
    try:
        await api.wait_for(lambda: all(final_answer(api, i) for i in ids), timeout=180)
        first_poll = api.poll_times[polls_before]
        takeover = max(final_answer(api, i).at for i in ids if i in pending) - first_poll
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 60)
    output = log.read_text()
    assert second.returncode == 0, output[-3000:]
    counts = [answers(api, i) for i in ids]
    ignored = output.count("already logged as request")
    print(f"\ncommands {len(ids)}, answered before the kill {len(answered)}, logged at the kill {len(logged)} "
          f"({len(pending)} pending), confirmed {len(confirmed)}, delivered again {len(ids)}, "
          f"ignored as already logged {ignored}, answers {sum(counts)}; the last pending command "
          f"answered {takeover:.1f} s after the restarted bot's first poll")
    assert counts == [1] * len(ids)  # every command answered, none twice
    assert unlogged == []  # no update was confirmed before its command was logged
    assert ignored == len(logged)  # each logged command delivered again was recognised
    assert api.violations == []
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = dict(db.execute("SELECT status, count(*) FROM requests GROUP BY status").fetchall())
        unsent = db.execute("SELECT count(*) FROM generations WHERE shown AND sending_at IS NULL").fetchone()
    assert statuses.get("pending", 0) == 0 and sum(statuses.values()) == len(ids)
    assert unsent == (0,)
