"""The game's tables on SQLite and PostgreSQL: votes, closing once, scores, figures, /borrarme."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.game.pool import PoolUnavailable, RealTweets, day_of
from bot.review import forgotten_text
from db.game import GameStore, NewRound
from db.review import ReviewStore
from tests.game.conftest import REAL_TEXTS, ROWS, write_real_tweets


def new_round(fake: str, real_slot: str = "A", chat: str = "-100", asker: str = "1", model: str = "demo",
              seconds: float = 600) -> NewRound:
    return NewRound(
        platform="telegram", chat_external_id=chat, chat_kind="supergroup", chat_title="Grupo",
        user_external_id=asker, user_name=f"Usuaria {asker}", model=model, controls={"party": "PDC"},
        real_slot=real_slot, real_text="Un tuit real", real_author="autora", real_date="2017-10-03",
        fake_text=fake, generation_id=None, seconds=seconds,
    )


async def test_votes_change_and_a_round_closes_once(engine: AsyncEngine) -> None:
    store = GameStore(engine)
    first = await store.start(new_round("falso uno", real_slot="A"))
    assert (await store.open_in("telegram", "-100")).id == first.id
    assert await store.open_in("telegram", "-999") is None
    assert await store.vote(first.id, "telegram", "2", "Bea", "A") == "new"
    assert await store.vote(first.id, "telegram", "2", "Bea", "A") == "same"
    assert await store.vote(first.id, "telegram", "3", "Ceci", "A") == "new"
    assert await store.vote(first.id, "telegram", "3", "Ceci", "B") == "changed"
    assert await store.vote(999999, "telegram", "3", "Ceci", "B") == "missing"
    assert [(v.name, v.choice) for v in await store.votes(first.id)] == [("Bea", "A"), ("Ceci", "B")]
    assert await store.scores("telegram", "-100") == []  # an open round counts for nobody yet

    assert await store.close(first.id, "button") is True
    assert await store.close(first.id, "time") is False
    assert await store.vote(first.id, "telegram", "4", "Dani", "A") == "closed"
    closed = await store.get(first.id)
    assert closed.closed_by == "button" and closed.closed_at is not None
    assert await store.open_in("telegram", "-100") is None

    second = await store.start(new_round("falso dos", real_slot="B"))
    await store.vote(second.id, "telegram", "2", "Bea", "B")
    await store.vote(second.id, "telegram", "3", "Ceci", "B")
    await store.close(second.id, "time")
    scores = await store.scores("telegram", "-100")
    assert [(s.name, s.right, s.votes) for s in scores] == [("Bea", 2, 2), ("Ceci", 1, 2)]
    assert await store.scores("discord", "-100") == []


async def test_a_late_vote_is_refused(engine: AsyncEngine) -> None:
    store = GameStore(engine)
    late = await store.start(new_round("falso", seconds=0))
    assert await store.vote(late.id, "telegram", "2", "Bea", "A") == "closed"
    with pytest.raises(ValueError):
        await store.vote(late.id, "telegram", "2", "Bea", "C")


async def test_figures_count_closed_rounds_and_rank_what_fooled(engine: AsyncEngine) -> None:
    store = GameStore(engine)
    fooling = await store.start(new_round("engañó a todos", real_slot="A"))
    for user in ("2", "3"):
        await store.vote(fooling.id, "telegram", user, user, "B")
    half = await store.start(new_round("engañó a la mitad", real_slot="B", chat="-200"))
    await store.vote(half.id, "telegram", "2", "2", "A")
    await store.vote(half.id, "telegram", "3", "3", "B")
    obvious = await store.start(new_round("no engañó", real_slot="A", chat="-300"))
    await store.vote(obvious.id, "telegram", "2", "2", "A")
    still_open = await store.start(new_round("abierta", real_slot="A", chat="-400"))
    await store.vote(still_open.id, "telegram", "2", "2", "B")
    other = await store.start(new_round("otro modelo", chat="-500", model="otro"))
    for item in (fooling, half, obvious, other):
        await store.close(item.id, "time")

    assert await store.models() == ["demo", "otro"]
    figures = await store.figures("demo")
    assert (figures.rounds, figures.votes, figures.fooled) == (3, 5, 3)
    assert figures.fooled_share == pytest.approx(0.6)
    [(day, share)] = figures.per_day
    assert len(day) == 10 and share == pytest.approx(0.6)
    assert [(f.fake_text, f.votes, f.fooled) for f in figures.most_fooling] == [
        ("engañó a todos", 2, 2), ("engañó a la mitad", 2, 1),
    ]
    empty = await store.figures("nadie")
    assert (empty.rounds, empty.votes, empty.fooled_share, empty.per_day) == (0, 0, None, [])


async def test_forgetting_a_user_deletes_their_votes_and_keeps_the_rounds(engine: AsyncEngine) -> None:
    store = GameStore(engine)
    item = await store.start(new_round("falso", real_slot="A", asker="2"))
    await store.vote(item.id, "telegram", "2", "Bea", "B")
    await store.vote(item.id, "telegram", "3", "Ceci", "A")
    await store.close(item.id, "time")
    gone = await ReviewStore(engine).forget_user("telegram", "2")
    assert gone.votes == 1 and gone.anything and gone.profile
    assert "1 voto(s) de ¿Real o ficticio?" in forgotten_text(gone)
    assert [v.name for v in await store.votes(item.id)] == ["Ceci"]
    kept = await store.get(item.id)
    assert kept is not None and kept.user_external_id == "" and kept.fake_text == "falso"
    assert (await store.figures("demo")).votes == 1


def test_real_tweets_keep_complete_labelled_rows_and_say_what_is_missing(tmp_path: Path) -> None:
    tweets = RealTweets(max_chars=280)
    path = write_real_tweets(tmp_path)
    pool = tweets.pool("demo", str(path))
    assert {t.text for t in pool} == REAL_TEXTS
    first = next(t for t in pool if t.author == "sebastianpinera")
    assert first.date == "2017-10-03"
    assert first.controls() == {
        "side": "derecha", "coalition": "Chile Vamos", "party": "IND-RN", "sentiment": "POSITIVE",
        "entities": ["Puente Alto"], "hashtags": [],
    }
    assert "frases" not in str(first.controls()) and "feria" not in str(first.controls())
    # A real tweet longer than the bot's tweets would be an easy tell: it is left out.
    assert [t.author for t in RealTweets(max_chars=80).pool("demo", str(path))] == ["labeasanchez"]

    for path_given, expected in (("", "real_tweets"), (str(tmp_path / "no.jsonl"), "No encuentro")):
        with pytest.raises(PoolUnavailable) as missing:
            tweets.pool("demo", path_given)
        assert expected in str(missing.value) and "\n" not in str(missing.value)
        assert "[generation.models.demo]" in str(missing.value)
    (tmp_path / "useless").mkdir()
    useless = write_real_tweets(tmp_path / "useless", ROWS[2:])
    with pytest.raises(PoolUnavailable, match=r"test\.jsonl de politico-train prepare"):
        tweets.pool("demo", str(useless))


@pytest.mark.parametrize(("raw", "day"), [
    ("2017-10-03T14:05:00", "2017-10-03"), ("2017-10-03", "2017-10-03"),
    ("Wed Nov 08 20:19:24 +0000 2017", "2017-11-08"), ("", ""), ("ayer", "ayer"),
])
def test_dates_read_in_iso_or_twitter_form(raw: str, day: str) -> None:
    assert day_of(raw) == day
