"""The desk's ¿Real o ficticio? page: behind login, per model, over HTTP and in Chromium."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from starlette.testclient import TestClient

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from bot.types import FICTION_LABEL
from db.engine import create_engine
from db.game import GameStore
from db.migrate import upgrade
from db.review import ReviewStore
from tests.game.test_store import new_round
from tests.review.live import cheap_hash, run_apart, serve
from tests.review.test_desk import browser  # noqa: F401  (the Chromium fixture)

PASSWORD = "secreta"
EVIL = "<script>window.pwned = 1</script>"


async def seed(url: str) -> None:
    """demo: two rounds, 4 votes of which 2 fooled; otro: one round nobody was fooled by."""
    await upgrade(url)
    engine = create_engine(url)
    store = GameStore(engine)
    fooling = await store.start(new_round(f"El tuit que engañó {EVIL}", real_slot="A"))
    for user in ("2", "3"):
        await store.vote(fooling.id, "telegram", user, f"U{user}", "B")
    plain = await store.start(new_round("Un tuit que nadie creyó", real_slot="B", chat="-200"))
    for user in ("2", "3"):
        await store.vote(plain.id, "telegram", user, f"U{user}", "B")
    other = await store.start(new_round("Del otro modelo", real_slot="A", chat="-300", model="otro"))
    await store.vote(other.id, "telegram", "2", "U2", "A")
    for item in (fooling, plain, other):
        await store.close(item.id, "time")
    await engine.dispose()


def client_for(url: str) -> TestClient:
    return TestClient(create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD))))


def login(client: TestClient) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": token.group(1), "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303


def test_the_game_page_needs_login_and_shows_each_models_figures(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    asyncio.run(seed(url))
    with client_for(url) as client:
        refused = client.get("/game?model=demo", follow_redirects=False)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next=%2Fgame")
        login(client)
        page = client.get("/game").text
        assert '<a href="/game" aria-current="page">' in page  # in the menu
        figures = re.search(r'<table class="log cards" id="figures">.*?</table>', page, re.S).group(0)
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", figures)
        assert cells == ["demo", "2", "4", "2", "50%"]
        assert 'aria-label="Votos engañados por día"' in page and "<rect" in page
        most = re.search(r'<table class="log cards" id="most-fooling">.*?</table>', page, re.S).group(0)
        assert "El tuit que engañó &lt;script&gt;" in most and EVIL not in page
        assert "nadie creyó" not in most and FICTION_LABEL in most
        other = client.get("/game", params={"model": "otro"}).text
        assert '<td data-label="Modelo">otro</td>' in other and "0%" in other and "Ningún tuit ficticio ha engañado" in other
        unknown = client.get("/game", params={"model": "<b>x</b>"})
        assert unknown.status_code == 200 and '<td data-label="Modelo">demo</td>' in unknown.text


def test_the_game_page_without_rounds(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    asyncio.run(upgrade(url))
    with client_for(url) as client:
        login(client)
        assert 'id="no-rounds"' in client.get("/game").text


def test_the_game_page_in_chromium(tmp_path: Path, browser) -> None:  # noqa: F811
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    run_apart(seed(url))
    with serve(create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)))) as base:
        page = browser.new_page()
        failed: list[str] = []  # every resource of the page loads (the browser's own favicon aside)
        page.on("response", lambda response: failed.append(response.url)
                if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
        page.goto(f"{base}/game")
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/game")
        assert page.evaluate("window.pwned") is None
        bars = page.locator("svg[aria-label='Votos engañados por día'] rect.bar")
        assert bars.count() == 1 and float(bars.first.get_attribute("height")) > 0
        shot = page.screenshot(full_page=True)
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
        assert failed == []
        page.close()
