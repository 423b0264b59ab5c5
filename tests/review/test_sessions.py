"""Sessions the server ends, named accounts, and lockout, checked over real HTTP (uvicorn as
``politico admin`` runs it): a copied cookie, forged proxy headers, the account commands."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.admin import cli
from bot.admin.app import create_app
from bot.admin.auth import AdminAuth
from bot.config import AdminSettings
from db.admins import AdminAccounts
from db.engine import create_engine
from db.migrate import upgrade
from db.review import ReviewStore
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash, serve, store_call

PASSWORD = "una clave bastante larga"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _seed(url: str) -> list[int]:
    await upgrade(url)
    engine = create_engine(url)
    shown = [(await LogFactory(engine).tweet(f"tuit {i}"))[1][0] for i in range(2)]
    await AdminAccounts(engine).add("camila", cheap_hash(PASSWORD))
    await engine.dispose()
    return shown


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"


@pytest.fixture
def config_path(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    return path


@pytest.fixture
def desk(url: str) -> Iterator[tuple[str, list[int]]]:
    """The desk over HTTP with the env account ``admin`` and the account ``camila``."""
    shown = asyncio.run(_seed(url))
    with serve(create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)))) as base:
        yield base, shown


def _csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, path
    return match.group(1)


def _login(client: httpx.Client, name: str = "camila", password: str = PASSWORD, **headers: str) -> httpx.Response:
    token = _csrf(client, "/login")
    return client.post("/login", data={"name": name, "password": password, "csrf": token, "next": "/"},
                       headers=headers)


def test_a_cookie_saved_before_logout_opens_nothing_and_decides_nothing(desk: Any, url: str) -> None:
    base, (first, _) = desk
    with httpx.Client(base_url=base) as client:
        assert _login(client).status_code == 303
        token = _csrf(client, "/")
        saved = dict(client.cookies)
        assert client.post("/logout", data={"csrf": token}).headers["location"] == "/login"
    with httpx.Client(base_url=base, cookies=saved) as thief:
        for path in ("/", "/review", "/requests/1", "/export.csv", "/audit", "/account"):
            response = thief.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
        refused = thief.post("/decide", data={"csrf": token, "ids": str(first), "decision": "approved"})
        assert refused.status_code == 403 and "iniciar sesión" in refused.text
    assert store_call(url, "counts")["approved"] == 0
    actions = [(e.admin, e.action) for e in reversed(store_call(url, "audit_trail"))]
    assert actions == [("camila", "login"), ("camila", "logout")]


def test_a_password_change_and_close_every_session_end_sessions(desk: Any, url: str, config_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = desk
    with httpx.Client(base_url=base) as phone, httpx.Client(base_url=base) as laptop:
        _login(phone)
        _login(laptop)
        changed = laptop.post("/account/password", data={
            "csrf": _csrf(laptop, "/account"), "current": PASSWORD, "new": "otra clave larga", "repeat": "otra clave larga"})
        assert changed.status_code == 303
        assert "Sesiones cerradas en otros lugares: 1" in laptop.get("/account").text
        assert phone.get("/").status_code == 303  # ended by the change
        assert laptop.get("/").status_code == 200  # the one that changed it stays
        assert _login(phone, password=PASSWORD).status_code == 401  # the old password is gone
        assert _login(phone, password="otra clave larga").status_code == 303
        laptop.post("/account/close-sessions", data={"csrf": _csrf(laptop, "/account")})
        assert phone.get("/").status_code == 303 and laptop.get("/").status_code == 303
        # The command line ends sessions too.
        _login(phone, password="otra clave larga")
        monkeypatch.setattr("sys.stdin", io.StringIO("la clave de la consola\n"))
        assert cli.main(["password", "camila", "--config", str(config_path)]) == 0
        assert phone.get("/").status_code == 303
        assert _login(phone, password="la clave de la consola").status_code == 303
    actions = [e.action for e in store_call(url, "audit_trail")]
    assert "password" in actions and "sessions_closed" in actions


def test_named_accounts_sign_what_they_decide(desk: Any, url: str, config_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: Any) -> None:
    base, (first, second) = desk
    monkeypatch.setattr("sys.stdin", io.StringIO("clave de benjamín\n"))
    assert cli.main(["add-user", "Benja", "--config", str(config_path)]) == 0
    assert "cuenta benja creada" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("clave de benjamín\n"))
    assert cli.main(["add-user", "benja", "--config", str(config_path)]) == 2  # taken
    monkeypatch.setattr("sys.stdin", io.StringIO("corta\n"))
    assert cli.main(["add-user", "otra", "--config", str(config_path)]) == 2  # too short
    with httpx.Client(base_url=base) as camila, httpx.Client(base_url=base) as benja:
        _login(camila)
        assert _login(benja, "benja", "clave de benjamín").status_code == 303
        camila.post("/decide", data={"csrf": _csrf(camila, "/"), "ids": str(first), "decision": "approved"})
        benja.post("/decide", data={"csrf": _csrf(benja, "/"), "ids": str(second), "decision": "rejected",
                                    "reason": "offensive"})
        assert "desde 127.0.0.1" in camila.get("/audit").text
    reviews = {e.target: (e.admin, e.detail["client"]) for e in store_call(url, "audit_trail") if e.action == "review"}
    assert reviews == {f"generation:{first}": ("camila", "127.0.0.1"), f"generation:{second}": ("benja", "127.0.0.1")}


def test_a_forged_forwarded_for_neither_resets_nor_dodges_the_lockout(desk: Any, url: str) -> None:
    base, _ = desk
    with httpx.Client(base_url=base) as client:
        verdicts = [_login(client, password="mala", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                    for i in range(5)]
        assert verdicts == [401, 401, 401, 401, 429]  # one client, whatever it claims to be
        locked = _login(client, **{"X-Forwarded-For": "203.0.113.77"})
        assert locked.status_code == 429 and "Demasiados intentos" in locked.text
        assert client.get("/").status_code == 303  # still no session
    failures = [e.detail for e in store_call(url, "audit_trail") if e.action == "login_failed"]
    assert {d["client"] for d in failures} == {"127.0.0.1"}  # the invented addresses were not believed


def test_a_trusted_proxy_names_the_client(url: str) -> None:
    asyncio.run(_seed(url))
    app = create_app(ReviewStore(create_engine(url)), AdminAuth(cheap_hash(PASSWORD)),
                     options=AdminSettings(trusted_proxies=["127.0.0.1"]))
    with serve(app) as base, httpx.Client(base_url=base) as proxy:
        for _ in range(5):
            _login(proxy, password="mala", **{"X-Forwarded-For": "198.51.100.7"})
        assert _login(proxy, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 429
        # Another client behind the same proxy is not locked out by the first one.
        assert _login(proxy, **{"X-Forwarded-For": "203.0.113.5, 127.0.0.1"}).status_code == 303
    logins = [e.detail["client"] for e in store_call(url, "audit_trail") if e.action == "login"]
    assert logins == ["203.0.113.5"]


async def test_an_account_locks_whoever_guesses_its_password() -> None:
    """Changing address (or forging one behind a trusted proxy) does not buy more guesses."""
    clock = Clock()
    stored = cheap_hash(PASSWORD)
    auth = AdminAuth(max_failures=5, account_max_failures=10, lockout_s=60, clock=clock)
    verdicts = [await auth.check("camila", "mala", f"10.0.0.{i}", stored) for i in range(10)]
    assert verdicts == ["wrong"] * 9 + ["locked"]
    assert await auth.check("camila", PASSWORD, "10.0.0.99", stored) == "locked"
    assert await auth.check("benja", PASSWORD, "10.0.0.99", cheap_hash(PASSWORD)) == "ok"  # other accounts
    clock.now += 61
    assert await auth.check("camila", PASSWORD, "10.0.0.99", stored) == "ok"
    assert await auth.check("nadie", PASSWORD, "10.0.0.98", None) == "wrong"  # no such account
