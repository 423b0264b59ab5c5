"""The fleet of docs/deploy.md §2 on loopback, on the shipped configuration, under a crowd and
faults: two ``politico run`` processes in webhook mode behind a balancer, sharing PostgreSQL and
Redis, generating on two ``politico serve`` processes with the demo model.

36 users send their commands at once (three of them more than the per-user limit allows).
Mid-burst one server is killed (its requests move to the other: retries) and then one bot
process, on its Nth tweet edit, after the fake Bot API applied it (so it dies with tweets in the
chat it never heard about, tweets stored but not delivered, requests being written and webhook
calls unanswered). Nothing is restarted: the live bot takes the dead one's requests over.

A third of the commands arrive after the bot died (the balancer skips its closed port).
Every command must show exactly one answer (no placeholder left, nothing twice), the shared
per-user limit must hold across both processes, everything shown must be in the log, and the
live process's /metrics must show the takeovers, the retries and the shed answers.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

from bot.telegram.frontend import PLACEHOLDER
from db.migrate import upgrade
from tests.fakes.telegram_api import TOKEN, Call, FakeBotAPI, message_update
from tests.fleet.balancer import Balancer, deliver
from tests.scaleout.conftest import Program, start_servers
from tests.support.ports import free_port
from tests.support.services import REDIS_HOST, REDIS_PORT, require
from tests.support.shipped import SHIPPED_CONFIG, shipped_env
from tests.support.waiting import until
from tests.telegram.helpers import final_answer, shown_answers, text_of

SECRET = "secreto-del-webhook"
USERS = 36
#: Users who ask more than the shipped per-user limit (6 a minute) allows: 6 tweets, 1 refusal.
EAGER, EAGER_COMMANDS, LIMIT = 3, 7, 6
#: Short leases so that the dead process's requests are free soon (shipped: 15 s).
LEASE_S = 5
#: The server is killed once this many placeholders are up; the bot on its Nth tweet edit.
KILL_SERVER_AT, KILL_BOT_AT = 8, 3



def tweet_edit(call: Call) -> bool:
    return call.method == "editMessageText" and "Tuit ficticio" in str(call.params.get("text", ""))


async def test_the_fleet_answers_everyone_once_through_a_dead_bot_and_a_dead_server(
    tmp_path: Path, postgres_url: str
) -> None:
    require(REDIS_HOST, REDIS_PORT, "Redis")
    await upgrade(postgres_url)
    servers = start_servers(tmp_path, None, 2, config=SHIPPED_CONFIG, env={"OMP_WAIT_POLICY": "PASSIVE"}, timeout=180)
    bots: list[Program] = []
    async with FakeBotAPI() as api:
        killed: dict[str, float] = {}

        async def faults(call: Call) -> None:
            """The faults, at fixed points of the burst (after the fake applied the call)."""
            if "server" not in killed and call.method == "sendMessage" and call.params.get("text") == PLACEHOLDER \
                    and len([c for c in api.of("sendMessage") if c.params.get("text") == PLACEHOLDER]) >= KILL_SERVER_AT:
                servers[0].process.kill()
                killed["server"] = time.monotonic()
            if "bot" not in killed and call.via == "a" and tweet_edit(call) \
                    and sum(tweet_edit(c) and c.via == "a" for c in api.calls) >= KILL_BOT_AT:
                bots[0].process.kill()  # the edit is in the chat; the bot never hears so
                killed["bot"] = time.monotonic()

        ports = [free_port(), free_port()]
        monitors = [free_port(), free_port()]
        try:
            for name, port, monitor in zip("ab", ports, monitors, strict=True):
                env = shipped_env(
                    tmp_path, database_url=postgres_url, telegram__token=TOKEN,
                    telegram__base_url=api.base_url_for(name), telegram__webhook_url="http://127.0.0.1/tg",
                    telegram__webhook_port=str(port), telegram__webhook_secret=SECRET,
                    rate_limits__redis_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
                    generation__backend="remote", generation__remote__endpoints=[s.url for s in servers],
                    bot__lease_s=str(LEASE_S), monitor__port=str(monitor),
                )
                bots.append(Program(["run", "--config", str(SHIPPED_CONFIG)], tmp_path / f"bot-{name}.log", env))
            await api.wait_for(lambda: _ready(bots, api), timeout=180)
            api.before_reply = faults

            # Fresh user ids: the Redis windows of earlier runs must not count here.
            first_user = random.randrange(10**9, 2 * 10**9)
            users = [first_user + i for i in range(USERS)]
            commands = [(uid, "/tuit derecha pensiones" if i % 2 else "/tuit izquierda educación")
                        for i, uid in enumerate(users)]
            commands += [(uid, f"/tuit centro tema {n}") for uid in users[:EAGER] for n in range(EAGER_COMMANDS - 1)]
            updates = [message_update(n + 1, api.new_message_id(), uid, text) for n, (uid, text) in enumerate(commands)]
            started = time.monotonic()
            first, then = updates[:len(updates) * 2 // 3], updates[len(updates) * 2 // 3:]
            async with Balancer([f"http://127.0.0.1:{p}" for p in ports]) as balancer, \
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
                url = f"{balancer.url}/tg"
                tries = await asyncio.gather(*(deliver(session, url, u, SECRET) for u in first))
                # The rest arrive once the bot is dead: the balancer finds its port closed.
                await until(lambda: "bot" in killed, "the bot to be killed on its tweet edit", timeout=150)
                tries += await asyncio.gather(*(deliver(session, url, u, SECRET) for u in then))
            message_ids = [u["message"]["message_id"] for u in updates]
            await api.wait_for(lambda: all(final_answer(api, m) for m in message_ids), timeout=150)
            answered_s = time.monotonic() - started
            rows = await _settled(postgres_url, len(updates))
            metrics = httpx.get(f"http://127.0.0.1:{monitors[1]}/metrics", timeout=5).text
            bots[1].check_alive()
            servers[1].check_alive()
        finally:
            api.before_reply = None
            codes = [bot.terminate() for bot in bots]
            for server in servers:
                server.terminate()

    logs = "\n".join(bot.log()[-3000:] for bot in bots)
    assert set(killed) == {"server", "bot"}, f"a fault never happened: {killed}\n{logs}"
    assert (f"http://127.0.0.1:{ports[0]}", 0) in balancer.passed  # the dead bot's port, skipped
    assert codes[0] == -signal.SIGKILL and codes[1] == 0, logs
    live_log = bots[1].log()
    assert " ERROR " not in live_log and "Traceback" not in live_log, live_log[-5000:]
    print(f"\n{len(updates)} commands from {USERS} users, all answered {answered_s:.1f} s after the burst "
          f"began; webhook calls tried again {sum(tries) - len(tries)} times; server killed at "
          f"{killed['server'] - started:.1f} s, bot at {killed['bot'] - started:.1f} s")
    # Every command shows one answer: no placeholder left, nothing twice.
    assert {m: len(shown_answers(api, m)) for m in message_ids} == dict.fromkeys(message_ids, 1)
    assert [m for m in api.messages.values() if m.get("text") == PLACEHOLDER] == []
    assert not api.violations
    # Logged once each, all answered; the shared per-user limit held across both processes.
    assert sorted(r["message_id"] for r in rows) == sorted(message_ids)
    assert all(r["answered_at"] is not None for r in rows)
    statuses: dict[int, list[str]] = {}
    for row in rows:
        statuses.setdefault(row["user"], []).append(row["status"])
    for uid in users[:EAGER]:
        assert sorted(statuses[uid]) == ["ok"] * LIMIT + ["rate_limited"] * (EAGER_COMMANDS - LIMIT), statuses[uid]
    assert all(statuses[uid] == ["ok"] for uid in users[EAGER:])
    # Everything shown is in the log: each tweet in the chat is its request's shown tweet.
    shown = {row["message_ref"]: row["text"] for row in rows if row["text"]}
    for message_id in message_ids:
        [answer] = shown_answers(api, message_id)
        if "Tuit ficticio" in answer["text"]:
            ref = f"{answer['chat']['id']}:{answer['message_id']}"
            assert ref in shown and answer["text"].startswith(shown[ref].strip()), (ref, answer["text"])
        else:
            assert answer["text"].startswith("Vas muy rápido"), answer["text"]
    # The live process took the dead one's requests over, retried past the dead server, and
    # ranked the fewer candidates a loaded server sent.
    assert _counter(metrics, "politico_bot_takeovers_total") >= 1, metrics
    assert _counter(metrics, "politico_remote_retries_total") >= 1, metrics
    assert _counter(metrics, 'politico_remote_partial_answers_total{reason="shed"}') >= 1, metrics
    assert text_of(final_answer(api, message_ids[0]))


def _ready(bots: list[Program], api: FakeBotAPI) -> bool:
    for bot in bots:
        bot.check_alive()
    return len(api.of("setWebhook")) >= len(bots)


def _counter(metrics: str, name: str) -> float:
    """The sum of a Prometheus series (all its label sets, unless ``name`` names some)."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(name if "{" in name else (f"{name} ", f"{name}{{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _settled(url: str, expected: int) -> list[dict[str, Any]]:
    """The logged requests with their shown tweet, once every one is answered (the answer is
    shown before its delivery is recorded)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = await conn.fetch(
                "SELECT r.status, r.reply_to::text AS reply_to, r.answered_at, u.external_id AS user, "
                "g.message_ref, g.text FROM requests r JOIN users u ON u.id = r.user_id "
                "LEFT JOIN generations g ON g.request_id = r.id AND g.shown"
            )
            if len(rows) >= expected and all(r["answered_at"] is not None for r in rows):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"requests not all answered in the log: {[dict(r) for r in rows]}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return [{**dict(r), "user": int(r["user"]), "message_id": int(json.loads(r["reply_to"])["message_id"])}
            for r in rows]
