"""The desk's screenshots for docs/admin.md: the list, the review stream, a request, stats and
the game, at 390 px (a phone) and 1440 px, on the busy bot's log (``scenario.py``).

    .venv/bin/python -m tests.review.screenshots [docs/admin]

Uses Debian's Chromium like the browser tests; never downloads one.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from db.engine import create_engine
from db.review import ReviewStore
from tests.review.live import cheap_hash, serve
from tests.review.scenario import WEIGHTS, desk_pages, seed_busy_log
from tests.review.test_desk import CHROMIUM, CHROMIUM_ARGS

PASSWORD = "capturas de pantalla"
SHOWN = ("list", "stream", "request", "stats", "game")
SCREENS = {390: {"width": 390, "height": 844}, 1440: {"width": 1440, "height": 900}}


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'desk.db'}"
        scenario = asyncio.run(seed_busy_log(url))
        app = create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)), ranking=WEIGHTS)
        pages = desk_pages(scenario)
        with serve(app) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for width, viewport in SCREENS.items():
                context = browser.new_context(viewport=viewport, locale="es-CL")
                page = context.new_page()
                page.goto(base + "/login")
                page.fill("input[name=name]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("form.login button[type=submit]")
                page.wait_for_url(base + "/")
                for name in SHOWN:
                    page.goto(base + pages[name])
                    path = out / f"{name}-{width}.png"
                    page.screenshot(path=str(path))
                    written.append(path)
                context.close()
            browser.close()
    return written


if __name__ == "__main__":
    for written in take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/admin")):
        print(written)
