"""The web desk in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from db.engine import create_engine
from db.migrate import upgrade
from db.review import Filters, ReviewStore
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash, run_apart, serve, store_call

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "correcto caballo batería"
EVIL = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">hola'


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


async def _seed(url: str) -> dict[str, Any]:
    await upgrade(url)
    engine = create_engine(url)
    factory = LogFactory(engine)
    ids: dict[str, Any] = {}
    ids["evil"] = await factory.tweet(EVIL, sentiment="neutral", party="PC", side="izquierda")
    ids["pos"] = [await factory.tweet(f"positivo {i}", sentiment="positivo") for i in range(3)]
    ids["neg"] = [await factory.tweet(f"negativo {i}", sentiment="negativo") for i in range(2)]
    ids["busy"] = await factory.tweet(None, status="busy", sentiment="")
    await engine.dispose()
    return ids


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], str]]:
    """A seeded SQLite log and the desk serving it; yields (base URL, seeded ids, db URL)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    ids = run_apart(_seed(url))
    app = create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)))
    with serve(app) as base:
        yield base, ids, url


def _login(page: Any, base: str) -> None:
    page.goto(base + "/")
    assert page.url.startswith(base + "/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def test_login_filter_approve_bulk_reject_export(browser: Any, desk: Any, tmp_path: Path) -> None:
    base, ids, url = desk
    page = browser.new_page(accept_downloads=True)
    page.set_default_timeout(10_000)

    page.goto(base + "/")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", "otra cosa")
    page.click("button[type=submit]")
    assert "Usuario o contraseña incorrectos" in page.inner_text(".error")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    assert page.inner_text("#pending-count") == "6"

    # Filter: only the negative tweets.
    page.click(".filter-box summary")
    page.select_option("select[name=sentiment]", "negativo")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**sentiment=negativo**")
    texts = page.locator("td.text").all_inner_texts()
    assert sorted(texts) == ["negativo 0", "negativo 1"]

    # Approve one on its detail page, with a note.
    request_id, (generation_id,) = ids["pos"][0]
    page.goto(f"{base}/requests/{request_id}")
    page.fill(f"#g{generation_id} input[name=note]", "buen tono")
    page.click(f"#g{generation_id} button[value=approved]")
    page.wait_for_url(f"{base}/requests/{request_id}")
    assert "1 tuit aprobado." in page.inner_text(".flash")
    assert "buen tono" in page.inner_text(f"#g{generation_id} .history")

    # Bulk: every still-pending negative tweet rejected with "select all".
    page.goto(f"{base}/?review=pending&sentiment=negativo")
    page.check("#select-all")
    page.fill("#bulk input[name=note]", "fuera de tono")
    page.select_option("#bulk select[name=reason]", "offensive")
    page.click("#bulk button[value=rejected]")
    page.wait_for_load_state()
    assert "2 tuits rechazados." in page.inner_text(".flash")
    rejected = store_call(url, "search", Filters(review="rejected"))
    assert sorted(row.text for row in rejected.rows) == ["negativo 0", "negativo 1"]
    assert page.inner_text("#pending-count") == "3"

    # Export what the filter shows, as CSV and JSONL.
    page.goto(f"{base}/?sentiment=positivo")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
    assert sorted(r["text"] for r in rows) == ["positivo 0", "positivo 1", "positivo 2"]
    approved = next(r for r in rows if r["text"] == "positivo 0")
    assert approved["review_status"] == "approved" and json.loads(approved["params"])["top_p"] == 0.9
    with page.expect_download() as download:
        page.click("#export-jsonl")
    lines = Path(download.value.path()).read_text("utf-8").splitlines()
    assert sorted(json.loads(line)["text"] for line in lines) == ["positivo 0", "positivo 1", "positivo 2"]

    actions = [e.action for e in store_call(url, "audit_trail")]
    assert actions.count("review") == 2 and actions.count("export") == 2  # one entry per decision
    assert "login" in actions and "login_failed" in actions
    page.close()


def test_generated_markup_is_shown_as_text(browser: Any, desk: Any) -> None:
    base, ids, _ = desk
    page = browser.new_page()
    page.set_default_timeout(10_000)
    _login(page, base)
    request_id, (generation_id,) = ids["evil"]
    for path in ("/", f"/requests/{request_id}", "/?text=script"):
        page.goto(base + path)
        assert page.evaluate("window.pwned") is None
        assert page.locator("script:not([src])").count() == 0
        assert page.locator("img[src=x]").count() == 0
    assert page.inner_text("td.text") == EVIL
    page.goto(f"{base}/requests/{request_id}")
    assert page.inner_text(f"#g{generation_id} blockquote") == EVIL
    page.close()


def test_without_session_or_csrf_nothing_happens(browser: Any, desk: Any) -> None:
    base, ids, url = desk
    _, (generation_id,) = ids["pos"][1]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    api = context.request

    # No session: pages lead to the login form, exports give no data, POSTs are refused.
    for path in ("/", "/stats", "/audit", "/export.csv", "/requests/1"):
        response = api.get(base + path)
        assert response.url.startswith(base + "/login"), path
        assert "positivo" not in response.text()
    response = api.post(base + "/decide", form={"ids": str(generation_id), "decision": "approved"})
    assert response.status == 403

    # With a session but without (or with a wrong) CSRF token: still refused.
    _login(page, base)
    for form in (
        {"ids": str(generation_id), "decision": "approved"},
        {"ids": str(generation_id), "decision": "approved", "csrf": "falso"},
    ):
        assert api.post(base + "/decide", form=form).status == 403
    assert api.post(base + "/ban", form={"user": "telegram:100", "banned": "1"}).status == 403
    assert api.post(base + "/logout", form={}).status == 403
    assert store_call(url, "counts")["approved"] == 0
    assert not store_call(url, "is_banned", "telegram", "100")

    # The page's own token works (so the refusals above were about the token).
    token = page.get_attribute("#bulk input[name=csrf]", "value")
    response = api.post(base + "/decide", form={"ids": str(generation_id), "decision": "approved", "csrf": token})
    assert response.ok
    assert store_call(url, "counts")["approved"] == 1
    context.close()


def test_stats_page_draws_charts(browser: Any, desk: Any) -> None:
    base = desk[0]
    page = browser.new_page()
    page.set_default_timeout(10_000)
    _login(page, base)
    page.goto(base + "/stats")
    assert page.locator("svg rect.bar").count() >= 6
    per_sentiment = page.locator("figure", has_text="Por sentimiento")
    labels = per_sentiment.locator("text.label").all_text_contents()
    values = per_sentiment.locator("text.value").all_text_contents()
    assert dict(zip(labels, values, strict=True)) == {"—": "1", "negativo": "2", "neutral": "1", "positivo": "3"}
    page.close()
