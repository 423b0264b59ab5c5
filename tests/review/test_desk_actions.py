"""The desk's decisions over HTTP: "every match" named and confirmed by its count, undo from the
flash, rejections with a reason, and a review stream that two admins share without overlap."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from db.admins import AdminAccounts
from db.engine import create_engine
from db.migrate import upgrade
from db.review import ReviewStore
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash

PASSWORD = "secreta"


def run(url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = create_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"

    async def seed(engine: Any) -> None:
        factory = LogFactory(engine)
        for index in range(3):
            await factory.tweet(f"tuit {index}", candidates=2, sentiment="negativo" if index else "positivo")
        await AdminAccounts(engine).add("camila", cheap_hash(PASSWORD))

    asyncio.run(upgrade(url))
    run(url, seed)
    return url


def client_for(url: str, name: str = "admin") -> TestClient:
    client = TestClient(create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD))))
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token, "next": "/"})
    return client


def csrf(client: TestClient, path: str = "/") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def counts(url: str) -> dict[str, int]:
    return run(url, lambda engine: ReviewStore(engine).counts())


def test_every_match_is_named_confirmed_by_count_and_undone_from_the_flash(url: str) -> None:
    with client_for(url) as client:
        page = client.get("/?sentiment=negativo").text
        assert re.search(r'id="matching-count">2<', page)
        form = {"csrf": csrf(client), "scope": "matching", "filters": "sentiment=negativo", "decision": "rejected",
                "reason": "offensive", "back": "/?sentiment=negativo"}
        asked = client.post("/decide", data=form)
        assert "¿Rechazar 2 tuits?" in asked.text and counts(url)["rejected"] == 0
        run(url, lambda engine: LogFactory(engine).tweet("uno más", sentiment="negativo"))
        again = client.post("/decide", data={**form, "confirm": "2"})  # the queue grew: asked again
        assert "¿Rechazar 3 tuits?" in again.text and counts(url)["rejected"] == 0
        done = client.post("/decide", data={**form, "confirm": "3"})
        assert "3 tuits rechazados." in done.text and counts(url) == {"pending": 1, "approved": 0, "rejected": 3,
                                                                       "flagged": 0}
        undo = re.search(r'action="/undo/(\d+)"', done.text)
        assert undo, "the flash offers to undo"
        restored = client.post(f"/undo/{undo.group(1)}", data={"csrf": csrf(client), "back": "/"})
        assert "3 tuits volvieron a su estado anterior." in restored.text and counts(url)["pending"] == 4


def test_a_rejection_needs_a_reason_and_shown_vs_rest_decides_whole_requests(url: str) -> None:
    with client_for(url) as client:
        token = csrf(client)
        refused = client.post("/decide", data={"csrf": token, "ids": "1", "decision": "rejected"})
        assert "Elija el motivo del rechazo." in refused.text and counts(url)["rejected"] == 0
        done = client.post("/decide", data={"csrf": token, "ids": "1", "decision": "approve_shown"})
        assert "2 tuits decididos: aprobado el mostrado" in done.text
        detail = run(url, lambda engine: ReviewStore(engine).detail(1))
        assert [(g.shown, g.review_status) for g in detail.generations] == [(True, "approved"), (False, "rejected")]


def test_the_stream_gives_two_admins_different_tweets_and_opens_the_next_after_each(url: str) -> None:
    with client_for(url) as ana, client_for(url, "camila") as camila:
        first = ana.get("/review").text
        second = camila.get("/review").text
        shown = lambda page: re.search(r'<article class="candidate shown" id="g(\d+)"', page).group(1)  # noqa: E731
        assert shown(first) != shown(second)
        assert shown(ana.get("/review").text) == shown(first)  # a reload keeps her tweet
        after = ana.post("/decide", data={"csrf": csrf(ana, "/review"), "ids": shown(first), "decision": "flagged",
                                          "back": "/review"})
        assert "1 tuit marcado para revisar." in after.text
        third = shown(after.text)
        assert third not in (shown(first), shown(second))
        newest = datetime(2026, 11, 2, tzinfo=UTC)
        run(url, lambda engine: LogFactory(engine).tweet("el último", created_at=newest))
        skipped = ana.post("/review/skip", data={"csrf": csrf(ana, "/review"), "ids": third})
        fourth = shown(skipped.text)
        assert fourth not in (shown(first), shown(second), third)  # skipping moves on
        skipped = ana.post("/review/skip", data={"csrf": csrf(ana, "/review"), "ids": fourth})
        assert shown(skipped.text) == third  # at the end of the queue, the skipped ones come back
        camila.post("/decide", data={"csrf": csrf(camila, "/review"), "ids": shown(second), "decision": "approved",
                                     "back": "/review"})
        ana.post("/decide", data={"csrf": csrf(ana, "/review"), "ids": third, "decision": "approved"})
        ana.post("/decide", data={"csrf": csrf(ana, "/review"), "ids": fourth, "decision": "approved"})
        assert 'id="queue-empty"' in ana.get("/review").text
