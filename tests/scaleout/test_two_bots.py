"""Two ``politico run`` processes on one PostgreSQL, one Redis and one ``politico serve``.

The test plays Telegram and the load balancer: it posts updates to both processes' webhooks,
alternating, while the fake Bot API records what the bots send; then it stops one process with
SIGTERM right after handing it a burst of updates, and sends the rest to the survivor. Every
update must be answered exactly once and logged exactly once, and each user's rate limit must
hold across both processes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import socket
import time
from pathlib import Path

import asyncpg
import httpx

from db.migrate import upgrade
from tests.conftest import write_config
from tests.fakes.telegram_api import TOKEN, FakeBotAPI, message_update
from tests.scaleout.conftest import Program, free_port, start_servers
from tests.support.services import REDIS_HOST, REDIS_PORT, require
from tests.telegram.helpers import final_answer, shown_answers

SECRET = "secreto-del-webhook"
USERS, PER_USER, LIMIT = 6, 4, 3


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False



async def test_two_bot_processes_answer_every_update_once(
    tmp_path: Path, tiny_model_dir: Path, postgres_url: str
) -> None:
    require(REDIS_HOST, REDIS_PORT, "Redis")
    await upgrade(postgres_url)
    (serve,) = start_servers(tmp_path / "gpu", tiny_model_dir, 1)
    bots: list[Program] = []
    async with FakeBotAPI() as api:
        ports = [free_port(), free_port()]
        tables = f"""
[telegram]
token = "{TOKEN}"
base_url = "{api.base_url}"
webhook_url = "http://127.0.0.1/tg"
webhook_secret = "{SECRET}"

[rate_limits]
per_user_per_minute = {LIMIT}
redis_url = "redis://{REDIS_HOST}:{REDIS_PORT}/0"
"""
        (tmp_path / "bots").mkdir()
        config = write_config(tmp_path / "bots", tiny_model_dir, tables)
        env = {
            "POLITICO_DATABASE__URL": postgres_url,
            "POLITICO_GENERATION__BACKEND": "remote",
            "POLITICO_GENERATION__REMOTE__ENDPOINTS": json.dumps([serve.url]),
        }
        try:
            bots = [
                Program(["run", "--config", str(config)], tmp_path / f"bot-{port}.log",
                        {**env, "POLITICO_TELEGRAM__WEBHOOK_PORT": str(port)})
                for port in ports
            ]

            def ready() -> bool:
                for bot in bots:
                    bot.check_alive()
                return all(listening(port) for port in ports) and len(api.of("setWebhook")) >= 2

            await api.wait_for(ready, timeout=120)

            # Fresh user ids: the Redis windows of earlier runs must not count here.
            first_user = random.randrange(10**9, 2 * 10**9)
            users = [first_user + i for i in range(USERS)]
            ids = itertools.count(1)
            updates = [
                message_update(next(ids), api.new_message_id(), uid, "/tuit derecha")
                for _ in range(PER_USER) for uid in users
            ]
            async with httpx.AsyncClient(timeout=30) as client:
                async def deliver(port: int, update: dict) -> None:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/tg", json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                    )
                    assert response.status_code == 200, response.text

                await asyncio.gather(*(deliver(ports[i % 2], u) for i, u in enumerate(updates)))
                # A burst for the first process, acknowledged, then SIGTERM while it works on it;
                # the balancer sends what follows to the second. New users: no limit applies.
                burst = [
                    message_update(next(ids), api.new_message_id(), first_user + USERS + i, "/tuit izquierda")
                    for i in range(8)
                ]
                await asyncio.gather(*(deliver(ports[0], u) for u in burst[:6]))
                bots[0].process.send_signal(signal.SIGTERM)
                await asyncio.gather(*(deliver(ports[1], u) for u in burst[6:]))
                updates += burst
                first_code = await asyncio.to_thread(bots[0].process.wait, 60)

            message_ids = [u["message"]["message_id"] for u in updates]
            await api.wait_for(lambda: all(final_answer(api, m) for m in message_ids), timeout=120)
            rows = await _requests_when_settled(postgres_url, len(updates))
        finally:
            codes = [bot.terminate() for bot in bots]
            serve.terminate()

    assert first_code == 0 and codes == [0, 0], "\n".join(bot.log() for bot in bots)
    assert not api.violations
    # Answered exactly once: one answer shown per update, and one logged request per update.
    assert {m: len(shown_answers(api, m)) for m in message_ids} == dict.fromkeys(message_ids, 1)
    assert sorted(int(r["message_id"]) for r in rows) == sorted(message_ids)
    # The per-user limit held across processes: each user got LIMIT tweets and one refusal.
    per_user: dict[int, list[str]] = {}
    for row in rows:
        per_user.setdefault(row["user"], []).append(row["status"])
    assert sorted(per_user) == sorted([*users, *(first_user + USERS + i for i in range(8))])
    for uid in users:
        assert per_user[uid].count("rate_limited") == PER_USER - LIMIT, per_user[uid]
    assert all("pending" not in statuses for statuses in per_user.values())


async def _requests_when_settled(url: str, expected: int) -> list[dict]:
    """The logged requests once none is pending (the reply is sent before the log is closed)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        deadline = time.monotonic() + 30
        while True:
            rows = await conn.fetch(
                "SELECT r.status, r.reply_to::text AS reply_to, u.external_id AS user "
                "FROM requests r JOIN users u ON u.id = r.user_id"
            )
            settled = len(rows) >= expected and all(r["status"] != "pending" for r in rows)
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return [
        {"status": r["status"], "user": int(r["user"]), "message_id": json.loads(r["reply_to"])["message_id"]}
        for r in rows
    ]

