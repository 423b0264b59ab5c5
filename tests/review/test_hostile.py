"""Hostile input never gets a 500, and every error page is Spanish (a crash's included)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from db.engine import create_engine
from db.migrate import upgrade
from db.review import ReviewStore
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash, signed_in

PASSWORD = "secreta"
HUGE = "99999999999999999999"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"

    async def seed() -> None:
        await upgrade(url)
        engine = create_engine(url)
        await LogFactory(engine).tweet("hola", candidates=2)
        await engine.dispose()

    asyncio.run(seed())
    app = create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield signed_in(client, PASSWORD)


def csrf(client: TestClient) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


@pytest.mark.parametrize("path", [
    f"/?page={HUGE}", f"/?page=-{HUGE}", "/?page=1e9", f"/?per_page={HUGE}", "/?per_page=-5", "/?sort=drop",
    f"/requests/{HUGE}", "/requests/0", f"/audit?page={HUGE}", f"/audit?request={HUGE}", "/audit?request=-1",
    "/audit?since=9999-12-31&until=9999-12-31", "/?since=0001-01-01&until=9999-12-31", "/?until=9999-12-31",
    "/?text=%00hola", "/stats?text=%00&since=9999-12-31", "/export.csv?text=%00", "/?status=%F0%9F%92%A5",
    "/game?model=%00", "/?text=" + "%25_" * 300, f"/review?x={HUGE}",
])
def test_no_url_number_or_text_gives_a_500(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (200, 404), response.text[:500]
    if response.status_code == 404:
        assert "No existe esa solicitud." in response.text


def test_hostile_forms_are_refused_in_spanish(client: TestClient) -> None:
    token = csrf(client)
    for form in (
        {"ids": HUGE, "decision": "approved"}, {"ids": "²", "decision": "approved"}, {"ids": "-3", "decision": "flagged"},
        {"ids": "1", "decision": "rejected", "reason": "x" * 5000},
    ):
        response = client.post("/decide", data={"csrf": token, **form})
        assert response.status_code == 200 and ("No se seleccionó" in response.text or "motivo" in response.text)
    # Garbage filters filter nothing: every match is named, and a wrong count only asks again.
    asked = client.post("/decide", data={"csrf": token, "scope": "matching", "filters": "%00" * 900,
                                         "decision": "approved", "confirm": HUGE})
    assert asked.status_code == 200 and re.search(r'id="confirm-count">.*<strong>1</strong>', asked.text)
    assert "pendiente" in client.get("/requests/1").text
    assert client.post("/decide", data={"csrf": token, "ids": "1", "decision": "borrar"}).status_code == 400
    assert client.post(f"/undo/{HUGE}", data={"csrf": token}).status_code == 404
    assert client.post(f"/publish/{HUGE}", data={"csrf": token}).status_code == 404
    assert client.post("/review/skip", data={"csrf": token, "ids": HUGE}).status_code == 200
    banned = client.post("/ban", data={"csrf": token, "user": "telegram:" + "9" * 100, "banned": "1"})
    assert banned.status_code == 400 and "Usuario inválido." in banned.text
    assert client.get("/counts").status_code == 404


def test_error_pages_are_spanish(client: TestClient) -> None:
    missing = client.get("/no-existe")
    assert missing.status_code == 404 and "No existe esa página." in missing.text and "Not Found" not in missing.text
    assert 'href="/review"' in missing.text  # the menu, for an admin who mistyped
    wrong_method = client.get("/decide")
    assert wrong_method.status_code == 405 and "no acepta ese método" in wrong_method.text
    assert "Method Not Allowed" not in wrong_method.text


@pytest.mark.expect_errors(r"desk request / failed")
def test_a_crash_is_a_spanish_page_with_the_same_headers(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken() -> dict[str, int]:
        raise RuntimeError("la base de datos se fue")

    monkeypatch.setattr(client.app.state.desk.store, "counts", broken)
    response = client.get("/")
    assert response.status_code == 500
    assert "Error interno" in response.text and "Internal Server Error" not in response.text
    assert "la base de datos se fue" not in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]
