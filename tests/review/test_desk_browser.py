"""The review desk in Debian's Chromium (Playwright): the review stream with hotkeys, "select"
that leaves folded candidates alone, logout that ends a saved session, and no page wider than
a 390 px phone. One browser for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from db.engine import create_engine
from db.migrate import upgrade
from db.review import ReviewStore
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash, run_apart, serve, store_call
from tests.review.scenario import WEIGHTS, desk_pages, seed_busy_log
from tests.review.test_desk import browser  # noqa: F401  (the module's Chromium)

PASSWORD = "secreta"
PHONE = {"width": 390, "height": 844}


async def _seed(url: str, requests: int, candidates: int) -> list[list[int]]:
    await upgrade(url)
    engine = create_engine(url)
    factory = LogFactory(engine)
    made = [(await factory.tweet(f"tuit {i}", candidates=candidates))[1] for i in range(requests)]
    await engine.dispose()
    return made


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[str, str, list[list[int]]]]:
    """Four requests of three candidates each; yields (base URL, db URL, tweet ids per request)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    made = run_apart(_seed(url, 4, 3))
    with serve(create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)))) as base:
        yield base, url, made


def login(page: Any, base: str, path: str = "/") -> None:
    page.goto(base + path)
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(base + path)


def shown_id(page: Any) -> int:
    return int(page.get_attribute("article.candidate.shown", "data-generation"))


def press(page: Any, *keys: str) -> None:
    """Keys that submit a form: wait for the page that answers."""
    with page.expect_navigation():
        for key in keys:
            page.keyboard.press(key)


def test_the_review_stream_with_hotkeys(browser: Any, small: Any) -> None:  # noqa: F811
    base, url, made = small
    page = browser.new_page()
    page.set_default_timeout(10_000)
    login(page, base, "/review")
    shown = [ids[0] for ids in made]
    assert shown_id(page) == shown[0] and page.locator("article.candidate.focused").count() == 1

    press(page, "a")  # approve: the next one opens
    assert shown_id(page) == shown[1] and "1 tuit aprobado." in page.inner_text(".flash")
    page.keyboard.press("r")  # reject asks for a reason: 2 is the second in the list
    assert page.locator("form.decide.choosing").count() == 1
    press(page, "2")
    assert shown_id(page) == shown[2]
    press(page, "s")  # skip
    assert shown_id(page) == shown[3]
    page.keyboard.press("j")  # down to the first other candidate, and flag it
    focused = page.locator("article.candidate.focused")
    assert focused.get_attribute("data-generation") == str(made[3][1])
    press(page, "f")
    assert shown_id(page) == shown[3]  # the item under review is still this one
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.locator("article.candidate.focused").get_attribute("data-generation") == str(shown[3])
    press(page, "f")  # the shown one, flagged: the skipped one comes back at the end
    assert shown_id(page) == shown[2]

    states = {g: store_call(url, "detail", r + 1).generation(g) for r, ids in enumerate(made) for g in ids}
    assert states[shown[0]].review_status == "approved"
    assert (states[shown[1]].review_status, states[shown[1]].reviews[-1].reason) == ("rejected", "misinformation")
    assert states[shown[2]].review_status == "pending"
    assert states[made[3][1]].review_status == "flagged" and states[shown[3]].review_status == "flagged"
    page.close()


def test_select_acts_on_visible_rows_and_every_match_asks_first(browser: Any, small: Any) -> None:  # noqa: F811
    base, url, made = small
    page = browser.new_page()
    page.set_default_timeout(10_000)
    login(page, base)
    page.keyboard.press("j")  # the register's cursor: down one row, tick it
    page.keyboard.press("x")
    ticked = page.locator("input.pick:checked")
    assert ticked.count() == 1 and ticked.get_attribute("value") == str(made[2][0])  # newest first
    page.keyboard.press("x")
    assert ticked.count() == 0
    page.check("#select-all")
    assert page.locator("input.pick:checked").count() == 4  # the four shown tweets, not the eight folded
    page.locator("tr.others summary").first.click()  # unfolding shows candidates, still unticked
    assert page.locator("tr.others details[open] input.pick:checked").count() == 0
    with page.expect_navigation():
        page.click("#bulk button[value=flagged]")
    assert "4 tuits marcados para revisar." in page.inner_text(".flash")
    assert store_call(url, "counts")["flagged"] == 4
    for request_id, ids in enumerate(made, start=1):  # the folded candidates were left alone
        detail = store_call(url, "detail", request_id)
        assert [detail.generation(g).review_status for g in ids] == ["flagged", "pending", "pending"]

    page.goto(base + "/?review=flagged")
    page.check("#select-matching")
    page.select_option("#bulk select[name=reason]", "incoherent")
    with page.expect_navigation():
        page.click("#bulk button[value=rejected]")
    assert "¿Rechazar 4 tuits?" in page.inner_text("h1")  # named and asked, not done
    assert store_call(url, "counts")["rejected"] == 0
    with page.expect_navigation():
        page.click("#confirm")
    assert "4 tuits rechazados." in page.inner_text(".flash")
    assert store_call(url, "counts") == {"pending": 0, "approved": 0, "rejected": 4, "flagged": 0}
    with page.expect_navigation():
        page.click(".flash button")  # undo, from the flash
    assert store_call(url, "counts")["flagged"] == 4
    page.close()


def test_logout_ends_a_saved_session(browser: Any, small: Any) -> None:  # noqa: F811
    base, url, made = small
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    login(page, base)
    saved = context.storage_state()
    token = page.get_attribute("#bulk input[name=csrf]", "value")
    with page.expect_navigation():
        page.click("#logout")
    assert page.url == base + "/login" and "Sesión cerrada." in page.inner_text(".flash")
    context.close()

    copy = browser.new_context(storage_state=saved)
    page = copy.new_page()
    page.goto(base + "/")
    assert page.url.startswith(base + "/login?")
    response = copy.request.post(base + "/decide", form={"csrf": token, "ids": str(made[0][0]),
                                                          "decision": "approved"})
    assert response.status == 403
    assert store_call(url, "counts")["approved"] == 0
    copy.close()


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The busy bot's log (81 requests, 344 candidates, 4 rounds) behind the desk."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('busy') / 'desk.db'}"

    scenario = run_apart(seed_busy_log(url))
    app = create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)), ranking=WEIGHTS)
    with serve(app) as base:
        yield base, scenario


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1440, "height": 900}], ids=["390px", "1440px"])
def test_no_page_is_wider_than_the_screen(browser: Any, busy: Any, viewport: dict[str, int]) -> None:  # noqa: F811
    base, scenario = busy
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(base + "/login")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "/login"
    login(page, base)
    menu = page.locator("#menu")
    if viewport == PHONE:  # the nav collapses behind its button
        assert not menu.is_visible()
        page.click("#menu-toggle")
    assert menu.is_visible() and page.locator("#logout").is_visible()
    for path in [*desk_pages(scenario).values(), "/?per_page=200", "/no-existe"]:
        page.goto(base + path)
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide on a {widths[1]} px screen"
    page.goto(base + "/?review=pending")
    page.check("#select-matching")
    with page.expect_navigation():
        page.click("#bulk button[value=flagged]")
    assert "¿Marcar 37 tuits?" in page.inner_text("h1")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the confirmation"
    context.close()
