"""Prompts as the bot's users type them, for ``evaluate``'s second prompt set.

The paired prompts come from real tweets: their party, their sentiment, their first entity,
and the model writes close to what that tweet said. Users ask otherwise: ``/tuit izquierda
positivo delincuencia``, ``/tuit derecha #NuevaConstitución``, ``/tuit kast``: a side, a
coalition or a party, a sentiment or none, a common political topic, a hashtag or nothing, and
the bot fills in the rest (a party of that side or coalition, a sentiment at random) as
``bot/core.py``'s ``plan`` does. Those requests sit further from the training data, so they
are measured on their own.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generation.prompts import RANDOM_SENTIMENTS, ControlFields

#: Topics people ask about, written as a user would type them (one to three words).
TOPICS: tuple[str, ...] = (
    "pensiones", "delincuencia", "educación", "salud", "vivienda", "trabajo", "AFP", "Constitución",
    "migración", "seguridad", "corrupción", "medio ambiente", "mujeres", "economía", "empleo",
    "gratuidad", "regiones", "pueblos originarios", "transporte", "agua", "impuestos", "familia",
    "niños", "adultos mayores", "narcotráfico", "Sename", "crecimiento", "desigualdad",
    "derechos humanos", "democracia", "Araucanía", "jóvenes", "cultura", "deporte", "pymes",
)
#: Hashtags people add, without regard to whether the candidates used them.
HASHTAGS: tuple[str, ...] = (
    "NuevaConstitución", "NoMasAFP", "Pensiones", "Educación", "Debate", "Chile", "Elecciones2017",
    "Salud", "Seguridad", "Araucanía", "Presidenciales", "Trabajo",
)
#: How users write them.
TYPED = {"POSITIVE": "positivo", "NEGATIVE": "negativo", "NEUTRAL": "neutral", "": ""}


@dataclass(frozen=True)
class UserPrompt:
    """One request as typed (``asked``), the fields the bot would send, and what to check."""

    asked: str
    fields: ControlFields
    side: str
    #: The sentiment the user asked for ("" when none: the prompt carries a random one).
    sentiment: str


def _parties(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Party → (coalition, side), as the training data labels them."""
    return {r["partido"]: (r["coalicion"], r["lado"]) for r in rows if r.get("partido") and r.get("lado")}


def user_style_prompts(rows: Sequence[dict[str, Any]], count: int, seed: int) -> list[UserPrompt]:
    """``count`` requests a user might type, drawn with ``seed`` over the parties in ``rows``.

    Who: a side, a coalition or a party, each a third of the time; the party is then uniform
    among those that fit (the bot's catalog weighs the demo's parties alike). Sentiment: positive,
    negative, neutral or none, alike. Topic: a common topic half the time, a hashtag a quarter,
    nothing a quarter.
    """
    parties = _parties(rows)
    if not parties:
        return []
    rng = random.Random(seed)
    sides = sorted({side for _, side in parties.values()})
    coalitions = sorted({coalition for coalition, _ in parties.values()})
    out = []
    for _ in range(count):
        who = rng.choice(("side", "coalition", "party"))
        if who == "side":
            named = rng.choice(sides)
            party = rng.choice(sorted(p for p, (_, s) in parties.items() if s == named))
        elif who == "coalition":
            named = rng.choice(coalitions)
            party = rng.choice(sorted(p for p, (c, _) in parties.items() if c == named))
        else:
            named = party = rng.choice(sorted(parties))
        coalition, side = parties[party]
        asked_sentiment = rng.choice(("", *RANDOM_SENTIMENTS))
        sentiment = asked_sentiment or rng.choice(RANDOM_SENTIMENTS)
        roll = rng.random()
        topic = rng.choice(TOPICS) if roll < 0.5 else ""
        hashtag = rng.choice(HASHTAGS) if 0.5 <= roll < 0.75 else ""
        asked = " ".join(p for p in (named, TYPED[asked_sentiment], topic, "#" + hashtag if hashtag else "") if p)
        fields = ControlFields(coalition, party, sentiment, (topic,) if topic else (),
                               (hashtag,) if hashtag else ())
        out.append(UserPrompt(asked, fields, side, asked_sentiment))
    return out
