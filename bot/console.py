"""``politico chat``: the bot in a terminal, on the same core, log and engine as the chat bots.

With a terminal on stdin it is an interactive prompt; otherwise (a pipe, a file) it answers each
line and exits, which makes it scriptable: ``echo "/tuit derecha" | politico chat --json``.
A line without a leading ``/`` is read as the arguments of ``/tuit`` ("derecha pensiones" is
``/tuit derecha pensiones``): at a prompt, typing the slash each time is just noise. The exit
status is 1 when any answer was an error (bad command, busy, rate limited), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import importlib
import json
import logging
import sys
from typing import Any, TextIO

from bot import texts
from bot.app import App, build_app
from bot.cli import add_config_argument, settings_from
from bot.config import Settings
from bot.types import FICTION_LABEL, Incoming, Origin, Reply
from generation.logs import quiet_model_loading

PROMPT = "tú> "
QUIT = {"/salir", "/exit", "/quit"}


def _command(line: str) -> str:
    text = line.strip()
    return text if text.startswith("/") else f"/tuit {text}"


async def _as_json(app: App, reply: Reply) -> dict[str, Any]:
    if reply.tweet is None:
        return {"kind": reply.kind, "text": reply.text}
    tweet = reply.tweet
    logged = await app.log.generation(tweet.generation_id)
    latency = None
    if logged is not None:
        latency = logged.request_latency_ms if logged.request_latency_ms is not None else logged.latency_ms
    return {
        "kind": "tweet", "id": tweet.generation_id, "request_id": tweet.request_id,
        "text": tweet.text, "label": FICTION_LABEL,
        "controls": logged.controls if logged is not None else {},
        "model": tweet.model, "seed": tweet.seed,
        "latency_ms": round(latency, 1) if latency is not None else None,
    }


async def converse(app: App, lines: TextIO, out: TextIO, *, as_json: bool, interactive: bool,
                   user: str) -> int:
    """Answer ``lines`` until they end (or ``/salir``); returns the exit status."""
    origin_args = {"platform": "console", "user_id": user, "chat_id": f"console:{user}", "user_name": user}
    failed = False
    count = 0
    if interactive:
        print(f"{texts.START}\n(/salir para terminar)\n", file=out)
    while True:
        if interactive:
            out.write(PROMPT)
            out.flush()
        line = await asyncio.to_thread(lines.readline)
        if not line:
            break
        if not line.strip():
            continue
        if line.strip().casefold() in QUIT:
            break
        count += 1
        origin = Origin(**origin_args, message_id=str(count))
        reply = await app.core.handle(Incoming(origin, _command(line)))
        failed = failed or reply.is_error
        if as_json:
            print(json.dumps(await _as_json(app, reply), ensure_ascii=False), file=out)
        else:
            print(reply.text + ("\n" if interactive or reply.tweet else ""), file=out)
        out.flush()
        await app.core.delivered(reply, f"console:{user}:{count}")
    return 1 if failed else 0


async def run(settings: Settings, *, as_json: bool, user: str) -> int:
    try:
        app = await build_app(settings)
    except Exception as exc:  # a model that won't load, a database that won't open
        logging.getLogger(__name__).debug("start-up failed", exc_info=True)
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"politico chat: no pude iniciar: {first_line}", file=sys.stderr)
        return 1
    try:
        return await converse(app, sys.stdin, sys.stdout, as_json=as_json,
                              interactive=sys.stdin.isatty(), user=user)
    finally:
        await app.aclose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="politico chat",
        description="Pedir tuits ficticios desde la terminal. Una línea sin «/» es un /tuit: "
        "«derecha positivo pensiones» = «/tuit derecha positivo pensiones».",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true",
                        help="una línea JSON por respuesta (tuits: text, controls, model, seed, latency_ms, id)")
    parser.add_argument("--user", default="", help="nombre con que se registran los pedidos")
    options = parser.parse_args(argv)
    settings = settings_from(options.config)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet_model_loading()
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # line editing and history, where available
            importlib.import_module("readline")
    user = options.user or _login()
    return asyncio.run(run(settings, as_json=options.json, user=user))


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "console"
