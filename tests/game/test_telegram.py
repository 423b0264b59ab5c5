"""¿Real o ficticio? on Telegram: the real python-telegram-bot and app against the fake Bot API."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.game import texts
from bot.telegram.frontend import TelegramFrontend
from bot.types import FICTION_LABEL
from db.game import GameStore, Round
from tests.fakes.telegram_api import Call, FakeBotAPI
from tests.game.conftest import REAL_TEXTS, game_config, write_real_tweets
from tests.support.bots import StartTelegram
from tests.support.waiting import eventually
from tests.telegram.helpers import answer_to, buttons_of, text_of

GROUP = -100777


@pytest.fixture
def start_bot(tmp_path: Path, start_telegram: StartTelegram) -> StartTelegram:
    """``async with start_bot(round_s=…, real_tweets=…)``: the game's model points at ``real_tweets``
    (default: a fresh file of real tweets; None leaves the setting out)."""
    default = str(write_real_tweets(tmp_path))

    def start(round_s: float = 600, real_tweets: str | None = default,
              admins: str = "[]") -> AbstractAsyncContextManager[TelegramFrontend]:
        return start_telegram(f"[game]\nround_s = {round_s}\n", telegram=f"admins = {admins}\n",
                              write=partial(game_config, real_tweets=real_tweets))

    return start


def store_of(frontend: TelegramFrontend) -> GameStore:
    return GameStore(frontend.app.log.engine)


async def open_round(api: FakeBotAPI, frontend: TelegramFrontend, user_id: int = 1) -> tuple[Call, Round]:
    """``/adivina`` in the group: the round's message and the round as stored (once its message is)."""
    answer = await answer_to(api, await api.send_text("/adivina", user_id=user_id, chat_id=GROUP,
                                                       chat_type="supergroup"))
    data = buttons_of(answer)
    assert [d.split(":")[0] for d in data] == ["vote_a", "vote_b", "reveal"], text_of(answer)
    round_id = int(data[0].split(":")[1])
    stored = await eventually(lambda: store_of(frontend).get(round_id), lambda r: r is not None and bool(r.message))
    assert stored is not None
    return answer, stored


async def toast(api: FakeBotAPI, data: str, message: dict[str, Any], user_id: int) -> str:
    """A press, and the text of the private answer it got."""
    before = len(api.of("answerCallbackQuery"))
    await api.press(data, message, user_id=user_id)
    answers = await api.wait_for(lambda: api.of("answerCallbackQuery")[before:])
    return answers[0].params.get("text", "")


def shown_fake_everywhere_labelled(api: FakeBotAPI, fake: str) -> None:
    """Every message that shows the generated tweet carries the game's label above it."""
    shown = [text_of(c) for c in api.calls if c.method in ("sendMessage", "editMessageText") and fake in text_of(c)]
    assert shown
    for text in shown:
        assert text.index(texts.ROUND_LABEL) < text.index(fake)


async def test_a_round_with_voters_vote_changes_reveal_button_and_scores(api: FakeBotAPI, start_bot: StartTelegram) -> None:
    async with start_bot(admins="[9]") as frontend:
        answer, item = await open_round(api, frontend)
        vote_a, vote_b, reveal = buttons_of(answer)
        text = text_of(answer)
        assert text.startswith(texts.ROUND_LABEL)
        assert item.real_text in REAL_TEXTS and item.fake_text in text and item.real_text in text
        assert text.index("A)") < text.index(item.text_of("A")) < text.index("B)") < text.index(item.text_of("B"))
        assert item.real_author not in text  # nothing gives the answer away
        # The generation is marked sent just after the round stores its message: wait for both.
        generation = await eventually(lambda: frontend.app.log.generation(item.generation_id),
                                      lambda g: bool(g.message_ref))
        assert generation.text == item.fake_text and generation.message_ref == item.message["ref"]
        # The fake was asked with the real one's party, sentiment and topic.
        wanted = ("IND-RN", "POSITIVE", ["Puente Alto"]) if "Puente" in item.real_text else \
            ("IND-FA", "NEGATIVE", ["educación pública"])
        assert (generation.party, generation.sentiment, generation.controls["entities"]) == wanted

        real = vote_a if item.real_slot == "A" else vote_b
        fake = vote_b if real == vote_a else vote_a
        message = answer.message
        assert "Anotado" in await toast(api, real, message, user_id=2)
        assert "Anotado" in await toast(api, fake, message, user_id=3)
        assert "Anotado" in await toast(api, fake, message, user_id=4)
        assert "Cambiaste" in await toast(api, real, message, user_id=4)  # a second press changes it
        assert "Ya habías" in await toast(api, real, message, user_id=4)
        assert await toast(api, reveal, message, user_id=3) == texts.NOT_YOURS
        assert not api.of("editMessageText")

        await api.press(reveal, message, user_id=1)  # the asker reveals it
        [edit] = await api.wait_for(lambda: api.of("editMessageText"))
        result = text_of(edit)
        assert edit.params["message_id"] == message["message_id"] and not edit.params.get("reply_markup")
        assert f"{item.real_slot}) era REAL: {item.real_author}, {item.real_date}" in result
        assert FICTION_LABEL in result and result.index(item.fake_text) < result.index(FICTION_LABEL)
        assert "Votos: 3 · acertaron 2 · el tuit ficticio engañó a 1 (33%)" in result
        assert "Acertaron: Usuaria 2, Usuaria 4." in result
        assert (await store_of(frontend).get(item.id)).closed_by == "button"
        assert await toast(api, real, message, user_id=5) == texts.CLOSED
        assert await toast(api, reveal, message, user_id=1) == texts.CLOSED

        scores = text_of(await answer_to(api, await api.send_text("/puntos", user_id=3, chat_id=GROUP,
                                                                   chat_type="supergroup")))
        lines = scores.splitlines()
        assert lines[1:] == ["1. Usuaria 2: 1 acierto(s) de 1", "2. Usuaria 4: 1 acierto(s) de 1",
                             "3. Usuaria 3: 0 acierto(s) de 1"]
        elsewhere = await api.send_text("/points", user_id=3)
        assert text_of(await answer_to(api, elsewhere)) == texts.NO_SCORES

        # An admin may reveal someone else's round.
        second, other = await open_round(api, frontend, user_id=6)
        await api.press(buttons_of(second)[2], second.message, user_id=9)
        await api.wait_for(lambda: len(api.of("editMessageText")) == 2)
        shown_fake_everywhere_labelled(api, item.fake_text)
        shown_fake_everywhere_labelled(api, other.fake_text)
    assert api.violations == []


async def test_time_out_reveals_the_round_in_place(api: FakeBotAPI, start_bot: StartTelegram) -> None:
    async with start_bot(round_s=1) as frontend:
        answer, item = await open_round(api, frontend)
        [edit] = await api.wait_for(lambda: api.of("editMessageText"))
        assert edit.params["message_id"] == answer.message["message_id"]
        assert "Nadie votó" in text_of(edit) and FICTION_LABEL in text_of(edit)
        assert (await store_of(frontend).get(item.id)).closed_by == "time"
        assert await toast(api, buttons_of(answer)[0], answer.message, user_id=2) == texts.CLOSED
        shown_fake_everywhere_labelled(api, item.fake_text)
    assert api.violations == []


async def test_one_round_at_a_time_and_a_lost_timer_is_made_up(api: FakeBotAPI, start_bot: StartTelegram) -> None:
    async with start_bot() as frontend:
        answer, item = await open_round(api, frontend)
        again = await api.send_text("/real", user_id=2, chat_id=GROUP, chat_type="supergroup")
        assert "Ya hay una ronda en curso" in text_of(await answer_to(api, again))
        # The bot restarted: the round's timer is gone and its time is up.
        await frontend.app.game.aclose()
        async with frontend.app.log.engine.begin() as connection:
            await connection.exec_driver_sql("UPDATE game_rounds SET deadline = '2000-01-01 00:00:00'")
        await api.press(buttons_of(answer)[0], answer.message, user_id=2)
        [edit] = await api.wait_for(lambda: api.of("editMessageText"))
        assert "Nadie votó" in text_of(edit)  # the late vote did not count; it revealed the round
        assert (await store_of(frontend).get(item.id)).closed_at is not None
        _, following = await open_round(api, frontend, user_id=2)  # /adivina works again
        assert following.id != item.id
    assert api.violations == []


@pytest.mark.parametrize("setting", [None, "no-existe.jsonl"])
async def test_no_round_without_a_real_tweets_file(api: FakeBotAPI, start_bot: StartTelegram, tmp_path: Path,
                                                   setting: str | None) -> None:
    real_tweets = None if setting is None else str(tmp_path / setting)
    async with start_bot(real_tweets=real_tweets) as frontend:
        answer = await answer_to(api, await api.send_text("/guess", chat_id=GROUP, chat_type="supergroup"))
        text = text_of(answer)
        assert "\n" not in text and "real_tweets" in text and "[generation.models.demo]" in text
        assert not buttons_of(answer)
        assert await store_of(frontend).open_in("telegram", str(GROUP)) is None
        async with frontend.app.log.engine.connect() as connection:  # nothing was generated
            assert (await connection.exec_driver_sql("SELECT count(*) FROM requests")).scalar() == 0
    assert api.violations == []
