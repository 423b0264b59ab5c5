"""¿Real o ficticio? on Discord: the real discord.py and app against the fake gateway and REST API."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.discord.frontend import DiscordFrontend
from bot.game import texts
from bot.types import FICTION_LABEL
from db.game import GameStore, Round
from tests.discord.test_bot import callback, followups
from tests.fakes.discord_api import EPHEMERAL, Call, FakeDiscord
from tests.game.conftest import REAL_TEXTS, game_config, write_real_tweets
from tests.support.bots import StartDiscord
from tests.support.waiting import eventually


@pytest.fixture
def start_bot(tmp_path: Path, start_discord: StartDiscord) -> StartDiscord:
    """``async with start_bot(round_s=…, real_tweets=…)``, as on Telegram (``test_telegram.py``)."""
    default = str(write_real_tweets(tmp_path))

    def start(round_s: float = 600, real_tweets: str | None = default) -> AbstractAsyncContextManager[DiscordFrontend]:
        return start_discord(f"[game]\nround_s = {round_s}\n", write=partial(game_config, real_tweets=real_tweets))

    return start


def custom_ids(call: Call) -> list[str]:
    body = call.body.get("data", call.body)
    return [b["custom_id"] for row in body.get("components", []) for b in row["components"]]


async def answered(fake: FakeDiscord, interaction: dict[str, Any]) -> Call:
    return (await fake.wait_for(lambda: followups(fake, interaction["token"]), timeout=60))[-1]


async def click(fake: FakeDiscord, custom_id: str, message: dict[str, Any], user_id: int) -> Call:
    pressed = await fake.click(custom_id, message, user_id=user_id)
    return await fake.wait_for(lambda: callback(fake, pressed["token"]))


async def open_round(fake: FakeDiscord, frontend: DiscordFrontend, user_id: int = 7) -> tuple[Call, Round]:
    answer = await answered(fake, await fake.slash("adivina", user_id=user_id))
    ids = custom_ids(answer)
    assert [i.split(":")[0] for i in ids] == ["vote_a", "vote_b", "reveal"], answer.body
    round_id = int(ids[0].split(":")[1])
    store = GameStore(frontend.app.log.engine)
    item = await eventually(lambda: store.get(round_id), lambda r: r is not None and bool(r.message))
    assert item is not None
    return answer, item


async def test_a_round_with_voters_vote_changes_reveal_button_and_scores(fake: FakeDiscord, start_bot: StartDiscord) -> None:
    async with start_bot() as frontend:
        assert {"adivina", "puntos"} <= {c["name"] for c in fake.commands}
        answer, item = await open_round(fake, frontend)
        content = answer.body["content"]
        assert content.startswith(texts.ROUND_LABEL) and item.real_text in REAL_TEXTS
        assert item.fake_text in content and item.real_text in content
        assert item.message["message_id"] == answer.message["id"]

        vote_a, vote_b, reveal = custom_ids(answer)
        real, fooled = (vote_a, vote_b) if item.real_slot == "A" else (vote_b, vote_a)
        message = answer.message
        for custom_id, user_id, expected in ((real, 8, "Anotado"), (fooled, 9, "Anotado"),
                                             (fooled, 10, "Anotado"), (real, 10, "Cambiaste")):
            response = await click(fake, custom_id, message, user_id)
            assert response.body["type"] == 4 and response.body["data"]["flags"] & EPHEMERAL
            assert expected in response.body["data"]["content"]
        refused = await click(fake, reveal, message, user_id=9)
        assert refused.body["data"]["content"] == texts.NOT_YOURS and refused.body["data"]["flags"] & EPHEMERAL

        revealed = await click(fake, reveal, message, user_id=7)
        assert revealed.body["type"] == 7  # the round's own message is replaced
        result = revealed.body["data"]["content"]
        assert result.startswith(texts.ROUND_LABEL) and FICTION_LABEL in result
        assert f"{item.real_slot}) era REAL: {item.real_author}, {item.real_date}" in result
        assert "Votos: 3 · acertaron 2 · el tuit ficticio engañó a 1 (33%)" in result
        assert revealed.body["data"]["components"] == []
        late = await click(fake, real, message, user_id=11)
        assert late.body["data"]["content"] == texts.CLOSED

        scores = (await answered(fake, await fake.slash("puntos"))).body["content"]
        assert scores.splitlines()[1:] == ["1. Usuaria 10: 1 acierto(s) de 1", "2. Usuaria 8: 1 acierto(s) de 1",
                                           "3. Usuaria 9: 0 acierto(s) de 1"]
        for call in fake.calls:  # every message that shows the fake has the label above it
            body = call.body.get("data", call.body) if isinstance(call.body.get("data"), dict) else call.body
            shown = str(body.get("content") or "")
            if item.fake_text in shown:
                assert shown.index(texts.ROUND_LABEL) < shown.index(item.fake_text)
    assert fake.violations == []


async def test_time_out_edits_the_round_through_its_follow_up(fake: FakeDiscord, start_bot: StartDiscord) -> None:
    async with start_bot(round_s=1) as frontend:
        answer, item = await open_round(fake, frontend)
        token = item.message["interaction_token"]
        edits = await fake.wait_for(lambda: [c for c in fake.for_token(token) if c.method == "PATCH"])
        [edit] = edits
        assert edit.path.endswith(f"/messages/{answer.message['id']}")
        assert "Nadie votó" in edit.body["content"] and FICTION_LABEL in edit.body["content"]
        assert edit.body["content"].startswith(texts.ROUND_LABEL) and edit.body["components"] == []
        assert (await GameStore(frontend.app.log.engine).get(item.id)).closed_by == "time"
    assert fake.violations == []


async def test_no_round_without_a_real_tweets_file(fake: FakeDiscord, start_bot: StartDiscord) -> None:
    async with start_bot(real_tweets=None):
        reply = await answered(fake, await fake.slash("adivina"))
        assert "real_tweets" in reply.body["content"] and "\n" not in reply.body["content"]
        assert reply.body.get("flags", 0) & EPHEMERAL and not reply.body.get("components")
    assert fake.violations == []
