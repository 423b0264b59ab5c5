"""``politico run``: every front-end with a token, in one process, on one engine and database.

Telegram and Discord share the app built by :func:`bot.app.build_app` (one model in memory, one
log, one rate limiter). With no token configured it opens the console chat instead. Ctrl-C or
SIGTERM stops taking new updates, lets the requests in hand finish (the engine drains for
``generation.engine.drain_timeout_s``), and closes the database; what was cut short stays
``pending`` in the log and is answered by the next start. With ``[monitor] port`` set, the
process also answers ``/health`` and ``/metrics`` there (``bot/monitor_http.py``) from before the
front-ends start until the engine has drained.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Protocol

from bot.app import App, build_app
from bot.cli import add_config_argument, settings_from
from bot.config import Settings
from bot.monitor_http import MonitorError, monitor_for
from generation.logs import configure_logging

log = logging.getLogger(__name__)


class Frontend(Protocol):
    platform: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def frontends_for(app: App) -> list[Frontend]:
    """One front-end per platform that has a token."""
    settings = app.settings
    found: list[Frontend] = []
    if settings.telegram.token:
        from bot.telegram.frontend import TelegramFrontend

        found.append(TelegramFrontend(
            app, settings.telegram, render=settings.telegram.render or settings.bot.render,
            resume_max_age_s=settings.bot.resume_max_age_s,
        ))
    if settings.discord.token:
        from bot.discord.frontend import DiscordFrontend

        found.append(DiscordFrontend(
            app, settings.discord, render=settings.discord.render or settings.bot.render,
            resume_max_age_s=settings.bot.resume_max_age_s,
        ))
    return found


async def run(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Run the front-ends until ``stop`` is set (by SIGINT or SIGTERM when not given)."""
    stop = stop or _stop_on_signals()
    app = await build_app(settings)
    monitor = monitor_for(app)
    started: list[Frontend] = []
    try:
        if monitor is not None:
            await monitor.start()
        for frontend in frontends_for(app):
            await frontend.start()
            started.append(frontend)
        if monitor is not None:
            monitor.running([frontend.platform for frontend in started])
        log.info("running %d front-end(s); Ctrl-C stops", len(started))
        await stop.wait()
        log.info("stopping: no new updates; finishing what is in hand")
    finally:
        if monitor is not None:
            monitor.draining()
        for frontend in reversed(started):
            try:
                await frontend.stop()
            except Exception:
                log.exception("could not stop %s cleanly", type(frontend).__name__)
        try:
            await app.aclose()
        finally:
            if monitor is not None:
                await monitor.stop()
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform / not the main thread
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    return stop


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="politico run",
        description="Inicia los bots de Telegram y Discord que tengan token configurado "
        "(POLITICO_TELEGRAM__TOKEN, POLITICO_DISCORD__TOKEN); sin tokens abre la consola.",
    )
    add_config_argument(parser)
    options = parser.parse_args(argv)
    settings = settings_from(options.config)
    if not settings.telegram.token and not settings.discord.token:
        print("Sin token de Telegram ni de Discord: abro la consola (politico chat).", file=sys.stderr)
        if settings.monitor.port:
            print("[monitor] port no se abre con la consola: solo con Telegram o Discord.", file=sys.stderr)
        from bot.console import main as console

        return console(argv)
    configure_logging(settings.logging.level, settings.logging.json_format)
    try:
        return asyncio.run(run(settings))
    except MonitorError as exc:
        print(f"politico run: {exc}", file=sys.stderr)
        return 1
