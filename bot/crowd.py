"""``politico crowd``: how long a crowd waits for its tweets (the acceptance test of issue 19).

N users in N Telegram chats send ``/tuit`` with different controls at the same moment, and one
more user arrives ``--late-s`` seconds later; each one's wait runs from the moment it sent the
command to the moment the front-end would hand the labelled tweet to Telegram (the core's reply
in hand and the tweet marked as being sent; the network is not included). The bot is the one
``politico run`` builds from the real config (model, candidates, ranking, guidance, engine), so
what is measured is what users of the shipped bot wait, minus Telegram's own round trips.

Commands go in where the Telegram adapter puts them (``BotCore.handle`` with a Telegram origin,
like ``bot/telegram/convert.py`` builds), so admission, rate limits and the log apply as they do
in production. The log is a temporary SQLite database, never the configured one, and the rate
limiter is the in-memory one even when the config shares limits through Redis (a benchmark must
not spend the real bot's quota). Each round uses new users and chats, so rounds do not run into
the per-user and per-chat limits.

The model is loaded and warmed up with a few requests before any timing. ``--quick`` (3 users,
1 late, short tweets) is a smoke test; numbers worth reading come from a quiet machine
(``docs/benchmarks.md``).

``--serve N`` also measures the fleet's way: the same bot on the remote backend, generating on
N ``politico serve`` processes started here on loopback with the same config. Rounds alternate
(in-process, then remote, with the same commands), so a change in the machine's load hits both,
and the report gives the remote crowd's median over the in-process one's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.app import App, build_app
from bot.cli import add_config_argument, settings_from
from bot.config import Settings, with_overrides
from bot.core import BotCore
from bot.monitor_http import engine_stats_of
from bot.types import FICTION_LABEL, Incoming, Origin
from generation.config import DEFAULT_CONFIG
from generation.logs import quiet_model_loading
from generation.measuring.bench import machine
from generation.measuring.percentiles import percentile
from generation.measuring.serve_bench import start_server

PLATFORM = "telegram"
#: Issue 19's acceptance, in seconds: the crowd's median and slowest wait, the late user's wait;
#: they hold for its crowd (:data:`ISSUE_CROWD`: users, seconds until the late one) only.
TARGETS = {"crowd_p50_s": 6.0, "crowd_max_s": 12.0, "late_wait_s": 10.0}
ISSUE_CROWD = (30, 2.0)

#: What users ask for, mixed at random into commands: who (side, coalition, party or nothing),
#: how (a sentiment or nothing), about what (topics), and sometimes a hashtag or a mention.
WHO = ("derecha", "izquierda", "centro", "chile vamos", "frente amplio", "nueva mayoria", "kast",
       "piñera", "goic", "guillier", "beatriz sanchez", "meo", "partido=UDI", "partido=RD", "")
FEELING = ("positivo", "negativo", "neutral", "mixto", "optimista", "enojado", "")
TOPICS = ("pensiones", "delincuencia", "educación", "salud", "vivienda", "empleo", "migración",
          "transporte", "medio ambiente", "\"crecimiento económico\"", "\"salud digna\"")
HASHTAGS = ("#NuevaConstitución", "#NoMasAFP", "#Chile", "#Araucanía", "#EducaciónGratuita")
MENTIONS = ("@sebastianpinera", "@gabrielboric", "@Carabdechile", "@mineducchile")


@dataclass(frozen=True)
class Plan:
    """One benchmark: how many users, when the late one arrives, how often it is repeated."""

    users: int
    late_s: float
    rounds: int
    warmup: int
    seed: int


@dataclass(frozen=True)
class Outcome:
    """What one user asked and got: the wait (seconds) for a labelled tweet, or the failure."""

    user: str
    late: bool
    command: str
    wait_s: float
    ok: bool
    kind: str
    error: str = ""


def commands(rng: random.Random, count: int) -> list[str]:
    """``count`` varied, valid ``/tuit`` commands, as a crowd of real users would type them."""
    made = []
    for _ in range(count):
        parts = [rng.choice(WHO), rng.choice(FEELING), *rng.sample(TOPICS, rng.choice((1, 1, 2)))]
        if rng.random() < 0.3:
            parts.append(rng.choice(HASHTAGS))
        if rng.random() < 0.2:
            parts.append(rng.choice(MENTIONS))
        made.append(" ".join(["/tuit", *(part for part in parts if part)]))
    return made


def telegram_origin(user_id: int) -> Origin:
    """The user's first message in its private chat with the bot, as ``bot/telegram/convert.py``
    describes one (in a private chat Telegram's chat id is the user's id)."""
    chat = str(user_id)
    return Origin(
        platform=PLATFORM, user_id=chat, chat_id=chat, user_name=f"crowd {user_id}",
        chat_kind="private", message_id="1", reply_ref={"chat_id": chat, "message_id": "1"},
        source=f"{chat}:1",
    )


async def ask(core: BotCore, user_id: int, command: str, sent_at: float, *, late: bool = False) -> Outcome:
    """One user's request, answered as the Telegram adapter answers it (``deliver``): the wait
    ends when the labelled tweet is marked as being sent, right before Telegram would get it."""
    origin = telegram_origin(user_id)
    reply = await core.handle(Incoming(origin, command))
    if reply.kind != "tweet" or reply.tweet is None:
        error = (reply.text.strip().splitlines() or [reply.kind])[0][:200]
    elif FICTION_LABEL not in reply.text:
        error = "the tweet came without the fictional label"
    elif not reply.tweet.text.strip():
        error = "the tweet is empty"
    elif not await core.mark_sending(reply.tweet.generation_id):
        error = "the log refused to mark the tweet as being sent"
    else:
        error = ""
    wait = time.perf_counter() - sent_at
    if not error and reply.tweet is not None:
        await core.mark_sent(reply.tweet.generation_id, f"{origin.chat_id}:2")
    return Outcome(origin.user_id, late, command, round(wait, 3), not error, reply.kind, error)


async def crowd_round(core: BotCore, plan: Plan, number: int, rng: random.Random) -> dict[str, Any]:
    """All users at once, the late one ``late_s`` later; waits and failures of the round."""
    first_id = 9_000_000 + number * (plan.users + 1)  # new users and chats every round
    asked = commands(rng, plan.users + 1)
    bar = tqdm(total=plan.users + 1, desc=f"round {number + 1}/{plan.rounds}", unit="tweet",
               file=sys.stderr, leave=False)
    started = time.perf_counter()
    crowd = [asyncio.create_task(ask(core, first_id + i, asked[i], started)) for i in range(plan.users)]
    for task in crowd:
        task.add_done_callback(lambda _: bar.update())
    late_at = started + plan.late_s
    await asyncio.sleep(plan.late_s)
    # Measured from when the late user sent, not from when this loop got round to it.
    late_lag = time.perf_counter() - late_at
    late = await ask(core, first_id + plan.users, asked[plan.users], late_at, late=True)
    bar.update()
    outcomes = await asyncio.gather(*crowd)
    bar.close()
    waits = [o.wait_s for o in outcomes if o.ok]
    return {
        "round": number + 1,
        "wall_s": round(time.perf_counter() - started, 3),
        "crowd": {
            "users": plan.users, "ok": len(waits),
            "p50_s": round(statistics.median(waits), 3) if waits else None,
            "p90_s": percentile(waits, 0.9) if waits else None,
            "max_s": max(waits) if waits else None,
        },
        "late": {"after_s": plan.late_s, "wait_s": late.wait_s if late.ok else None, "ok": late.ok,
                 "loop_lag_s": round(late_lag, 3)},
        "failures": [asdict(o) for o in [*outcomes, late] if not o.ok],
        "requests": [asdict(o) for o in [*outcomes, late]],
    }


def medians(rounds: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each figure's median over the rounds (None when no round has it)."""
    figures = {
        "crowd_p50_s": [r["crowd"]["p50_s"] for r in rounds],
        "crowd_p90_s": [r["crowd"]["p90_s"] for r in rounds],
        "crowd_max_s": [r["crowd"]["max_s"] for r in rounds],
        "late_wait_s": [r["late"]["wait_s"] for r in rounds],
    }
    return {
        name: round(statistics.median(known), 3) if (known := [v for v in values if v is not None]) else None
        for name, values in figures.items()
    }


def targets(plan: Plan, median: dict[str, float | None]) -> dict[str, dict[str, Any]]:
    """The issue's targets beside the medians; ``met`` is None for any other crowd (a smaller
    one meeting them says nothing)."""
    applies = (plan.users, plan.late_s) == ISSUE_CROWD
    return {
        name: {"target": limit, "measured": median[name],
               "met": (median[name] is not None and median[name] <= limit) if applies else None}
        for name, limit in TARGETS.items()
    }


def engine_stats(app: App) -> dict[str, Any] | None:
    """The local engine's counters (steps, rows per step, tokens, shed requests); None on a remote
    backend."""
    stats = engine_stats_of(app.backend)
    return None if stats is None else dict(stats())


async def warm_up(core: BotCore, count: int) -> dict[str, Any]:
    """A few requests at once before timing: the first decoding steps of a fresh process and
    the first writes to a fresh database are slower than any later ones."""
    started = time.perf_counter()
    asked = commands(random.Random(-1), count)
    outcomes = await asyncio.gather(*(ask(core, 8_000_000 + i, asked[i], started) for i in range(count)))
    return {"requests": count, "ok": sum(o.ok for o in outcomes), "wall_s": round(time.perf_counter() - started, 3)}


def config_summary(settings: Settings, config: str | None, overrides: list[str]) -> dict[str, Any]:
    """The settings that decide how long a tweet takes."""
    generation = settings.generation
    spec = generation.models.get(generation.default_model)
    decoding = spec.decoding if spec is not None else None
    return {
        "config": str(config or DEFAULT_CONFIG),
        "overrides": overrides,
        "backend": generation.backend,
        "model": generation.default_model,
        "model_path": spec.path if spec is not None else None,
        "quantize": spec.quantize if spec is not None else None,
        "candidates": settings.bot.candidates,
        "ranking": generation.ranking.enabled,
        "max_new_tokens": decoding.max_new_tokens if decoding else None,
        "guide_bias": decoding.guide_bias if decoding else None,
        "contrast_guidance": decoding.contrast_guidance if decoding else None,
        "engine": generation.engine.model_dump(),
        "rate_limits_per_user_chat": list(settings.rate_limits.for_platform(PLATFORM)),
    }


async def run(settings: Settings, plan: Plan, remote: Settings | None = None) -> dict[str, Any]:
    """Build the bot (and the one on ``remote`` settings, if given), warm up, run the rounds
    (alternating the two bots); what was measured."""
    load_start = [round(x, 2) for x in os.getloadavg()]
    began = time.perf_counter()
    app = await build_app(settings)
    other: App | None = None
    try:
        loaded_s = time.perf_counter() - began
        other = await build_app(remote) if remote is not None else None
        env = {**machine(), "load_average": load_start, "cpus_usable": len(os.sched_getaffinity(0))}
        bots = [(app, random.Random(plan.seed))] + ([(other, random.Random(plan.seed))] if other else [])
        for bot, _ in bots:
            bot.core.rng.seed(plan.seed)
        warmups = [await warm_up(bot.core, plan.warmup) for bot, _ in bots]
        after_warmup = engine_stats(app)
        rounds: list[list[dict[str, Any]]] = [[] for _ in bots]
        for number in range(plan.rounds):
            for kept, (bot, rng) in zip(rounds, bots, strict=True):
                kept.append(await crowd_round(bot.core, plan, number, rng))
        stats = engine_stats(app)
    finally:
        if other is not None:
            await other.aclose()
        await app.aclose()
    env["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    median = medians(rounds[0])
    report: dict[str, Any] = {
        "plan": asdict(plan),
        "machine": env,
        "startup_s": round(loaded_s, 3),
        "warmup": warmups[0],
        "rounds": rounds[0],
        "median": median,
        "failures": sum(len(r["failures"]) for kept in rounds for r in kept),
        "targets": targets(plan, median),
        "engine_stats_after_warmup": after_warmup,
        "engine_stats": stats,
    }
    if other is not None:
        remote_median = medians(rounds[1])
        report["remote"] = {
            "endpoints": [str(url) for url in other.settings.generation.remote.endpoints],
            "warmup": warmups[1], "rounds": rounds[1], "median": remote_median,
            "p50_over_in_process": _ratio(remote_median["crowd_p50_s"], median["crowd_p50_s"]),
        }
    report["wall_s"] = round(time.perf_counter() - began, 1)
    return report


def _ratio(over: float | None, under: float | None) -> float | None:
    return round(over / under, 3) if over is not None and under else None


def table(report: dict[str, Any]) -> str:
    """The report in a few lines for the terminal (the JSON has every request)."""
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    users = report["plan"]["users"]
    lines = [f"{'round':>6} {'ok':>7} {'p50 s':>7} {'p90 s':>7} {'max s':>7} {'late s':>7}"]
    for r in report["rounds"]:
        crowd, late = r["crowd"], r["late"]
        lines.append(f"{r['round']:>6} {crowd['ok']:>3}/{users:<3} {cell(crowd['p50_s']):>7} "
                     f"{cell(crowd['p90_s']):>7} {cell(crowd['max_s']):>7} {cell(late['wait_s']):>7}")
    m = report["median"]
    lines.append(f"{'median':>6} {'':>7} {cell(m['crowd_p50_s']):>7} {cell(m['crowd_p90_s']):>7} "
                 f"{cell(m['crowd_max_s']):>7} {cell(m['late_wait_s']):>7}")
    if "remote" in report:
        remote = report["remote"]
        r = remote["median"]
        lines.append(f"{'remote':>6} {'':>7} {cell(r['crowd_p50_s']):>7} {cell(r['crowd_p90_s']):>7} "
                     f"{cell(r['crowd_max_s']):>7} {cell(r['late_wait_s']):>7}  "
                     f"({len(remote['endpoints'])} × politico serve; p50 ÷ in-process {cell(remote['p50_over_in_process'])})")
    for name, target in report["targets"].items():
        verdict = {True: " (met)", False: " (NOT met)", None: ""}[target["met"]]
        lines.append(f"target {name} ≤ {target['target']:g}: {cell(target['measured'])}{verdict}")
    if (report["plan"]["users"], report["plan"]["late_s"]) != ISSUE_CROWD:
        lines.append(f"(the targets hold for --users {ISSUE_CROWD[0]} --late-s {ISSUE_CROWD[1]:g})")
    lines.append(f"failures: {report['failures']}")
    failures = [f for r in report["rounds"] for f in r["failures"]]
    lines += [f"  user {f['user']} ({f['kind']}): {f['error']}" for f in failures[:5]]
    env = report["machine"]
    lines.append(f"load average {env['load_average'][0]} at the start, {env['load_average_end'][0]} at the end; "
                 f"{env['cpus_usable']} usable CPUs, torch {env['torch']}, {env['torch_threads']} threads")
    return "\n".join(lines)


QUICK = {"users": 3, "late_s": 0.2, "warmup": 1, "max_new_tokens": 16}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="politico crowd",
        description="Cuánto espera una multitud: N usuarios en N chats de Telegram piden /tuit a la "
        "vez y uno más llega después (issue 19). Usa el bot de `politico run` con la configuración "
        "real, sobre una base SQLite temporal.",
    )
    add_config_argument(parser)
    parser.add_argument("--users", type=int, help="usuarios que piden a la vez (30; --quick: 3)")
    parser.add_argument("--late-s", type=float, help="segundos después llega uno más (2; --quick: 0.2)")
    parser.add_argument("--rounds", type=int, default=1, help="veces que se repite la multitud (1)")
    parser.add_argument("--warmup", type=int, help="pedidos antes de medir (2; --quick: 1)")
    parser.add_argument("--seed", type=int, default=0, help="semilla de los comandos y del bot (0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="cambia una clave de la configuración (generation.engine.max_batch=64, "
                        "bot.candidates=4); se puede repetir")
    parser.add_argument("--serve", type=int, default=0, metavar="N",
                        help="también con el backend remoto sobre N procesos `politico serve` "
                        "iniciados aquí (rondas alternadas con el motor en proceso)")
    parser.add_argument("--quick", action="store_true",
                        help="prueba de humo: 3 usuarios, uno tarde a 0.2 s, tuits de 16 tokens")
    parser.add_argument("--out", type=Path, default=Path("crowd-bench.json"),
                        help="dónde escribir el informe JSON (crowd-bench.json)")
    options = parser.parse_args(argv)
    quick = QUICK if options.quick else {}
    plan = Plan(
        users=options.users if options.users is not None else quick.get("users", 30),
        late_s=options.late_s if options.late_s is not None else quick.get("late_s", 2.0),
        rounds=options.rounds,
        warmup=options.warmup if options.warmup is not None else quick.get("warmup", 2),
        seed=options.seed,
    )
    if plan.users < 1 or plan.rounds < 1 or plan.late_s < 0 or plan.warmup < 0 or options.serve < 0:
        parser.error("--users y --rounds deben ser ≥ 1; --late-s, --warmup y --serve, ≥ 0")
    settings = settings_from(options.config)
    overrides = list(options.overrides)
    if options.quick:
        model = settings.generation.default_model
        overrides.insert(0, f"generation.models.{model}.decoding.max_new_tokens={quick['max_new_tokens']}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    quiet_model_loading()
    with tempfile.TemporaryDirectory(prefix="politico-crowd-") as tmp:
        settings = with_overrides(settings, [*overrides, *temporary_log(Path(tmp), "crowd")])
        servers = start_servers(options.serve, Path(tmp), options.config, overrides)
        try:
            remote = with_overrides(settings, [
                "generation.backend=remote", f"generation.remote.endpoints={json.dumps([url for _, url in servers])}",
                *temporary_log(Path(tmp), "crowd-remote"),
            ]) if servers else None
            report = {
                "command": " ".join(["politico crowd", *argv]),
                "settings": config_summary(settings, options.config, overrides),
                **asyncio.run(run(settings, plan, remote)),
            }
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait(60)
    options.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(report))
    print(f"informe: {options.out}")
    return 1 if report["failures"] else 0


def temporary_log(folder: Path, name: str) -> list[str]:
    """Overrides that put a bot's log in ``folder`` (never the configured database), with the
    in-memory rate limiter (a benchmark must not spend the real bot's shared quota)."""
    return [f"database.url=sqlite+aiosqlite:///{folder / f'{name}.db'}",
            f"database.spool_path={folder / f'{name}-spool.jsonl'}", "rate_limits.redis_url=''"]


def start_servers(count: int, folder: Path, config: str | None,
                  overrides: list[str]) -> list[tuple[subprocess.Popen[bytes], str]]:
    """``count`` ``politico serve`` processes on the config, with the ``--set`` overrides that
    concern generation passed on as environment keys (as operators set them), started
    one after the other, each healthy."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # several torch processes on few cores
    for assignment in overrides:
        key, _, value = assignment.partition("=")
        if key.startswith("generation."):
            env["POLITICO_" + key.upper().replace(".", "__")] = value.strip().strip('"')
    config_path = Path(config) if config else DEFAULT_CONFIG
    servers: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for number in range(count):
            servers.append(start_server(config_path, folder / f"serve-{number}.log", env=env))
    except BaseException:
        for process, _ in servers:
            process.kill()
        raise
    return servers
