"""The desk's rules checked over HTTP without a browser: lockout, publishing, CLI, exports."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from bot.admin import cli
from bot.admin.app import create_app
from bot.admin.auth import HASH_ENV, PASSWORD_ENV, AdminAuth, password_hash_from_env
from bot.admin.nearest import TrainingIndex
from bot.admin.publish import Publisher
from bot.types import FICTION_LABEL
from db.engine import create_engine
from db.migrate import upgrade
from db.models import Generation
from db.review import ReviewStore
from generation.settings import RankingSettings
from tests.review.factory import LogFactory
from tests.review.live import cheap_hash, fake_rest

PASSWORD = "secreta"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _seed(url: str, *texts: str) -> list[int]:
    await upgrade(url)
    engine = create_engine(url)
    factory = LogFactory(engine)
    ids = [(await factory.tweet(text))[1][0] for text in texts]
    await engine.dispose()
    return ids


def _client(url: str, **options: Any) -> TestClient:
    auth = options.pop("auth", None) or AdminAuth(cheap_hash(PASSWORD))
    return TestClient(create_app(ReviewStore(create_engine(url)), auth, **options))


def _csrf(client: TestClient, path: str = "/login") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, path
    return match.group(1)


def _login(client: TestClient, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"name": "admin", "password": password, "csrf": _csrf(client), "next": "/"},
                       follow_redirects=False)


@pytest.fixture
def desk_config(tmp_path: Path) -> Path:
    """A config without models (the desk needs none), its log in ``tmp_path``."""
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "log.db"}"\n')
    return path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"


def test_lockout_after_repeated_failures(url: str) -> None:
    asyncio.run(_seed(url))
    clock = Clock()
    with _client(url, auth=AdminAuth(cheap_hash(PASSWORD), max_failures=3, lockout_s=60, clock=clock)) as client:
        assert [_login(client, "mal").status_code for _ in range(3)] == [401, 401, 429]
        locked = _login(client)
        assert locked.status_code == 429 and "Demasiados intentos" in locked.text
        assert client.get("/", follow_redirects=False).status_code == 303  # still no session
        clock.now += 61
        assert _login(client).status_code == 303
        assert client.get("/").status_code == 200


def test_login_needs_the_login_forms_token_and_next_stays_on_site(url: str) -> None:
    asyncio.run(_seed(url))
    with _client(url) as client:
        assert client.post("/login", data={"password": PASSWORD}).status_code == 403
        response = client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": _csrf(client),
                                                "next": "//evil.example/"}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert "default-src 'none'" in client.get("/").headers["content-security-policy"]


def test_publish_approved_tweet_to_telegram_and_discord(url: str) -> None:
    [generation_id] = asyncio.run(_seed(url, "Hoy es un gran día"))
    with fake_rest() as (base, calls):
        publisher = Publisher(
            telegram_token="123:abc", telegram_base=f"{base}/bot", telegram_chat="@canal",
            discord_token="tok", discord_base=base, discord_channel=42,
        )
        with _client(url, publisher=publisher) as client:
            _login(client)
            token = _csrf(client, "/requests/1")
            client.post(f"/publish/{generation_id}", data={"csrf": token})
            assert calls == []  # not approved yet
            client.post("/decide", data={"csrf": token, "ids": str(generation_id), "decision": "approved"})
            page = client.post(f"/publish/{generation_id}", data={"csrf": token})
            assert "Publicado en telegram:@canal, discord:42" in page.text
    (tg_path, _, tg_body), (dc_path, dc_headers, dc_body) = calls
    assert tg_path == "/bot123:abc/sendMessage"
    assert tg_body == {"chat_id": "@canal", "text": f"Hoy es un gran día\n\n{FICTION_LABEL}"}
    assert dc_path == "/channels/42/messages" and dc_headers["Authorization"] == "Bot tok"
    assert dc_body["content"].endswith(FICTION_LABEL) and dc_body["allowed_mentions"] == {"parse": []}


def test_publish_failure_is_reported_not_recorded(url: str) -> None:
    [generation_id] = asyncio.run(_seed(url, "texto"))
    with fake_rest(status=500) as (base, _):
        publisher = Publisher(telegram_token="1:a", telegram_base=f"{base}/bot", telegram_chat="@c")
        with _client(url, publisher=publisher) as client:
            _login(client)
            token = _csrf(client, "/requests/1")
            client.post("/decide", data={"csrf": token, "ids": str(generation_id), "decision": "approved"})
            page = client.post(f"/publish/{generation_id}", data={"csrf": token})
            assert "No se publicó: Telegram: respondió 500" in page.text
            assert "publicado " not in page.text


def test_nearest_training_tweet_from_the_model_card(tmp_path: Path) -> None:
    folder = tmp_path / "modelo"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\ntraining_index: tweets.jsonl\n---\n# Modelo\n")
    (folder / "tweets.jsonl").write_text(
        '{"text": "Las pensiones deben subir ya"}\n{"text": "Chile merece un mejor futuro"}\n'
    )
    index = TrainingIndex({"demo": folder, "otro": tmp_path})
    found = index.nearest("demo", "las pensiones deben subir")
    assert found is not None and found[0] == "Las pensiones deben subir ya" and found[1] > 80
    assert index.nearest("otro", "x") is None and index.nearest("nada", "x") is None


async def test_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    assert password_hash_from_env({}) is None  # accounts then come from the database only
    with pytest.raises(LookupError):
        password_hash_from_env({HASH_ENV: "plaintext"})
    from_env = password_hash_from_env({PASSWORD_ENV: "x"})
    assert await AdminAuth(from_env).check("admin", "x", "c", from_env) == "ok"
    monkeypatch.setattr("sys.stdin", io.StringIO("clave\n"))
    assert cli.main(["hash-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert await AdminAuth(printed).check("admin", "clave", "c", password_hash_from_env({HASH_ENV: printed})) == "ok"


def test_admin_command_refuses_to_start_without_a_password(
    desk_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv(HASH_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert cli.main(["--config", str(desk_config)]) == 2
    error = capsys.readouterr().err
    assert "politico admin add-user" in error and HASH_ENV in error


@pytest.fixture
def desk_from_config(desk_config: Path) -> Iterator[TestClient]:
    from bot.config import load_settings

    app = cli.build_desk(load_settings(desk_config), {PASSWORD_ENV: PASSWORD})
    with TestClient(app) as client:
        yield client


def test_desk_built_from_the_config_migrates_and_serves(desk_from_config: TestClient) -> None:
    assert _login(desk_from_config).status_code == 303
    assert "Nada coincide" in desk_from_config.get("/").text


def test_ban_from_the_detail_page_and_logout(url: str) -> None:
    asyncio.run(_seed(url, "hola"))
    with _client(url) as client:
        _login(client)
        token = _csrf(client, "/requests/1")
        page = client.post("/ban", data={"csrf": token, "user": "telegram:100", "banned": "1", "back": "/requests/1"})
        assert "Usuario telegram:100 bloqueado." in page.text and "Desbloquear" in page.text
        assert client.post("/ban", data={"csrf": token, "user": "nadie"}).status_code == 400
        client.post("/logout", data={"csrf": token})
        assert client.get("/requests/1", follow_redirects=False).status_code == 303


def test_detail_shows_the_closest_training_tweet(url: str) -> None:
    asyncio.run(_seed(url, "pensiones dignas <ya>"))
    seen: list[tuple[str, str]] = []

    def nearest(model: str, text: str) -> tuple[str, float]:
        seen.append((model, text))
        return "Pensiones dignas <YA> para todos", 87.0

    with _client(url, nearest=nearest) as client:
        _login(client)
        page = client.get("/requests/1").text
    assert "Tuit de entrenamiento más cercano (87%)" in page
    assert "Pensiones dignas &lt;YA&gt; para todos" in page
    assert seen == [("demo", "pensiones dignas <ya>")]


async def _seed_candidates(url: str) -> list[int]:
    """A request as the bot logs one: sentiment as the model's control value, three ranked
    candidates (one never scored), the second one shown."""
    await upgrade(url)
    engine = create_engine(url)
    _, ids = await LogFactory(engine).tweet("primero", sentiment="POSITIVE", candidates=3)
    async with engine.begin() as connection:
        details = ({"side": -0.25, "real": -0.4}, {"side": -0.01, "topic": 1.0, "real": -0.125}, None)
        for generation_id, shown, score, detail in zip(ids, (False, True, False), (0.5, 1.25, None), details,
                                                       strict=True):
            await connection.execute(update(Generation).where(Generation.id == generation_id)
                                     .values(shown=shown, score=score, score_detail=detail, latency_ms=812.46))
    await engine.dispose()
    return ids


def test_the_register_groups_candidates_under_their_request_with_scores_and_spanish_sentiments(url: str) -> None:
    asyncio.run(_seed_candidates(url))
    with _client(url) as client:
        _login(client)
        page = client.get("/").text
        assert page.count('<tbody class="request"') == 1 and '<strong id="total">1</strong> solicitud ·' in page
        shown_at, folded_at = page.index("primero (1)"), page.index("<details>", page.index('<tbody class="request"'))
        assert shown_at < folded_at  # the tweet users saw first, the others folded below it
        folded = page[folded_at:page.index("</details>", folded_at)]
        assert "2 candidatos más" in folded and "primero (2)" in folded and ">primero " in folded
        assert "primero (1)" not in folded
        assert re.search(r'data-label="puntaje">1\.25<', page) and re.search(r'data-label="puntaje">0\.50<', folded)
        assert re.search(r'data-label="puntaje">—<', folded)  # never scored
        assert "POSITIVE" not in page.replace('value="POSITIVE"', "")  # only as the filter's value
        assert "· positivo ·" in page and '<option value="POSITIVE">positivo</option>' in page
        assert "sentimiento positivo" in client.get("/requests/1").text
        stats = client.get("/stats").text
        assert "positivo" in stats and "POSITIVE" not in stats.replace('value="POSITIVE"', "")


def test_the_request_page_shows_every_candidates_weighted_parts_in_spanish_and_which_was_shown(url: str) -> None:
    """Each part as the ranker added it (weight × value, penalties negative), so the sum shown
    is the score; a stored score the current weights no longer give is pointed out."""
    asyncio.run(_seed_candidates(url))
    ranking = RankingSettings(side=6.0, real=3.0, topic=16.0)
    with _client(url, ranking=ranking) as client:
        _login(client)
        page = client.get("/requests/1").text
    table = page[page.index('<table class="ranking cards">'):page.index("</table>", page.index('<table class="ranking'))]
    assert re.findall(r"<th(?: title=\"[^\"]*\")?>([^<]+)</th>", table.split("</thead>")[0]) == [
        "candidato", "suma", "sector (modelo)", "temas", "parece real"]  # in the order they are summed
    rows = table.split("<tbody>")[1].split("<tr")[1:]
    assert "✅ mostrado" not in rows[0] and "✅ mostrado" in rows[1] and 'class="shown"' in rows[1]
    def cells(row: str) -> list[str]:
        return [cell.strip() for cell in re.findall(r'class="score[^"]*"[^>]*>([^<]+)<', row)]

    # Shown: side −0.01 × 6, topic 1 × 16, real −0.125 × 3: −0.06 + 16 − 0.375 = 15.565 (15.56 in binary).
    assert cells(rows[1]) == ["+15.56", "−0.06", "+16.00", "−0.38"]
    assert "≠ 1.25: los pesos cambiaron" in rows[1]  # it was ranked with other weights
    assert cells(rows[0]) == ["−2.70", "−1.50", "—", "−1.20"] and "≠ 0.50" in rows[0]
    assert cells(rows[2])[0] == "—"  # never scored
    assert re.findall(r'<th class="score"[^>]*>([^<]+)</th>', table) == ["+6.00", "+16.00", "+3.00"]
    assert "812 ms" in page and "812.46" not in page  # whole milliseconds
