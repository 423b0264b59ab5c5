"""The shipped configuration end to end: config.toml as users run it, the demo model, only the
tokens, the database and service addresses swapped for test ones (tests/support/shipped.py).

* the console (``politico chat``), piped as a user would;
* Telegram with the in-process engine: a crowd large enough that the engine sheds candidates
  (8 asked per request, 4 given past 64 rows), every command answered once;
* Telegram on PostgreSQL that stops and starts under the bot mid-burst: everyone answered once,
  everything logged.

The remote backend over real ``politico serve`` processes on this configuration is the fleet
test's (tests/fleet/test_fleet.py).
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

import asyncpg

from bot.catalog import Catalog
from bot.config import load_settings
from bot.parser import ParseError, parse_command
from bot.types import FICTION_LABEL
from db.migrate import upgrade
from tests.conftest import ROOT
from tests.fakes.telegram_api import TOKEN, FakeBotAPI
from tests.support.outage import Outage
from tests.support.shipped import SHIPPED_CONFIG, shipped_env
from tests.telegram.helpers import final_answer, shown_answers, text_of


def bot_process(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args, "--config", str(SHIPPED_CONFIG)],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE if args[0] == "chat" else subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def test_the_console_on_the_shipped_config(tmp_path: Path) -> None:
    lines = ["/tuit derecha positivo pensiones", "/ayuda", "/tuit partido=NOEXISTE", "/tuit izquierda educación"]
    chat = bot_process(shipped_env(tmp_path), tmp_path / "chat.log", "chat", "--json")
    out, _ = chat.communicate("\n".join(lines).encode() + b"\n", timeout=180)
    answers = [json.loads(line) for line in out.decode().splitlines()]
    assert [a["kind"] for a in answers] == ["tweet", "help", "error", "tweet"], (tmp_path / "chat.log").read_text()
    settings = load_settings(SHIPPED_CONFIG)
    refused = parse_command(lines[2], Catalog.from_settings(settings.politics), settings.bot.max_command_chars)
    assert isinstance(refused, ParseError) and answers[2]["text"] == refused.message  # the exact Spanish error
    for tweet in (answers[0], answers[3]):
        assert tweet["label"] == FICTION_LABEL and tweet["text"].strip() and tweet["id"] > 0
    assert answers[0]["controls"]["side"] == "derecha" and answers[0]["controls"]["sentiment"] == "POSITIVE"
    assert answers[3]["controls"]["side"] == "izquierda"
    assert chat.returncode == 1  # a command was refused, and the exit status says so


async def test_telegram_in_process_sheds_under_a_crowd_and_answers_everyone_once(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        env = shipped_env(tmp_path, telegram__token=TOKEN, telegram__base_url=api.base_url,
                          rate_limits__per_user_per_minute="0")
        bot = bot_process(env, tmp_path / "bot.log", "run")
        try:
            await api.wait_for(lambda: bot.poll() is None and api.of("setMyCommands"), timeout=180)
            sent = await asyncio.gather(*(api.send_text(f"/tuit {side} pensiones", user_id=500 + i)
                                          for i, side in enumerate(["derecha", "izquierda", "centro"] * 6)))
            await api.wait_for(lambda: all(final_answer(api, m) for m in sent), timeout=180)
        finally:
            bot.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(bot.wait, 60)
    assert code == 0, (tmp_path / "bot.log").read_text()[-3000:]
    assert all(len(shown_answers(api, m)) == 1 and FICTION_LABEL in text_of(final_answer(api, m)) for m in sent)
    assert api.violations == []
    with sqlite3.connect(tmp_path / "politico.db") as db:
        params = [json.loads(row[0]) for row in db.execute("SELECT params FROM requests WHERE status = 'ok'")]
    assert len(params) == len(sent)
    assert any(p.get("shed") == 4 for p in params), params  # the shipped shed_rows / shed_candidates


async def test_postgresql_stopped_and_started_under_the_bot_loses_nobody(tmp_path: Path, postgres_url: str) -> None:
    users = 30
    outage = Outage(postgres_url, tmp_path)
    await outage.up()
    await upgrade(outage.url)
    async with FakeBotAPI() as api:
        env = shipped_env(tmp_path, database_url=outage.url, telegram__token=TOKEN,
                          telegram__base_url=api.base_url)
        bot = bot_process(env, tmp_path / "bot.log", "run")
        try:
            await api.wait_for(lambda: bot.poll() is None and api.of("setMyCommands"), timeout=180)
            sent = await asyncio.gather(*(api.send_text(f"/tuit tema {i}", user_id=700 + i) for i in range(users)))
            await api.wait_for(lambda: sum(bool(final_answer(api, m)) for m in sent) >= 5, timeout=180)
            await outage.down()  # connections dropped, new ones refused
            answered_down = sum(bool(final_answer(api, m)) for m in sent)
            await api.wait_for(lambda: sum(bool(final_answer(api, m)) for m in sent) >= answered_down + 3, timeout=180)
            await outage.up()
            await api.wait_for(lambda: all(final_answer(api, m) for m in sent), timeout=180)
            rows = await _when_answered(outage.url, users)
        finally:
            bot.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(bot.wait, 60)
            await outage.down()
    assert code == 0, (tmp_path / "bot.log").read_text()[-3000:]
    assert [len(shown_answers(api, m)) for m in sent] == [1] * users
    assert sorted(int(r["message_id"]) for r in rows) == sorted(sent)
    assert {r["status"] for r in rows} == {"ok"}
    assert api.violations == []


async def _when_answered(url: str, expected: int) -> list[dict[str, object]]:
    """The logged requests once the spool has replayed and every delivery is recorded."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for _ in range(600):
            rows = await conn.fetch("SELECT status, answered_at, reply_to::text AS reply_to FROM requests")
            if len(rows) == expected and all(r["answered_at"] for r in rows):
                return [{"status": r["status"], "message_id": json.loads(r["reply_to"])["message_id"]} for r in rows]
            await asyncio.sleep(0.1)
        raise AssertionError(f"not all logged and answered: {[dict(r) for r in rows]}")
    finally:
        await conn.close()
