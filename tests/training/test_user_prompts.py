"""Prompts as users type them: who, sentiment and topic drawn as a user of the bot would."""

from __future__ import annotations

from collections import Counter

from generation.prompts import RANDOM_SENTIMENTS
from training.user_prompts import HASHTAGS, TOPICS, user_style_prompts

ROWS = [
    {"partido": "UDI", "coalicion": "Chile Vamos", "lado": "derecha"},
    {"partido": "RN", "coalicion": "Chile Vamos", "lado": "derecha"},
    {"partido": "RD", "coalicion": "Frente Amplio", "lado": "izquierda"},
    {"partido": "PDC", "coalicion": "Convergencia Democrática", "lado": "centro"},
]
PARTIES = {r["partido"]: r for r in ROWS}


def test_requests_are_seeded_and_consistent_with_the_labels() -> None:
    prompts = user_style_prompts(ROWS, 400, seed=3)
    assert prompts == user_style_prompts(ROWS, 400, seed=3) != user_style_prompts(ROWS, 400, seed=4)
    for p in prompts:
        row = PARTIES[p.fields.partido]
        assert (p.fields.coalicion, p.side) == (row["coalicion"], row["lado"])
        # The named side, coalition or party leads the request, as a user writes it.
        assert p.asked.split()[0] in {row["lado"], row["partido"], *row["coalicion"].split()}
        # No sentiment asked: the prompt still carries one, picked as the bot picks it.
        assert p.fields.sentimiento in RANDOM_SENTIMENTS
        assert p.sentiment in ("", p.fields.sentimiento)
        assert set(p.fields.entidades) <= set(TOPICS) and set(p.fields.hashtags) <= set(HASHTAGS)
        assert len(p.fields.entidades) + len(p.fields.hashtags) <= 1


def test_every_kind_of_request_is_drawn() -> None:
    prompts = user_style_prompts(ROWS, 400, seed=3)
    topic = Counter("topic" if p.fields.entidades else "hashtag" if p.fields.hashtags else "none" for p in prompts)
    assert 150 < topic["topic"] < 250 and topic["hashtag"] > 60 and topic["none"] > 60
    assert sum(not p.sentiment for p in prompts) > 60
    assert {p.side for p in prompts} == {"derecha", "izquierda", "centro"}
    assert any("#" in p.asked for p in prompts) and user_style_prompts([], 5, 1) == []
