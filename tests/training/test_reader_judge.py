"""The reader's judge: trained here on a few dozen tweets against word salad, it ranks a
candidate that reads as real above word salad, through the service as the bot calls it."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from generation.decoding.judge import (
    FILENAME,
    JudgeShape,
    ReaderJudge,
    SideHead,
    features,
    plain_words,
)
from generation.decoding.ranking import rank
from generation.prompts import ControlFields
from generation.serving.service import TweetGenerator, TweetRequest
from generation.settings import GenerationSettings, RankingSettings
from generation.types import Completion, PromptSpec
from tests.support.tiny_model import build_tiny_model
from tests.training.conftest import PLACES, TOPICS
from training.discriminator import train_judge

SIDES = ({"lado": "derecha", "partido": "RN"}, {"lado": "izquierda", "partido": "PC"})
REAL = "Hoy en Osorno conversamos con los vecinos sobre la educación pública de calidad."
SALAD = "Hoy veraexca enfocótico trulmapa zenvorita quelbidro sanfreca en Osorno."


def salad(rng: random.Random) -> str:
    """A tweet-shaped line of invented words, as a small model writes on a bad draw."""
    syllables = ["ve", "ra", "ex", "ca", "fo", "có", "ti", "trul", "ma", "zen", "quel", "bi", "dro", "xa"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(rng.randint(6, 12))]
    return " ".join(words).capitalize() + "."


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model's folder with a judge trained beside it by ``train_judge``."""
    root = tmp_path_factory.mktemp("judged")
    folder = build_tiny_model(root / "model")
    # The first two topics are one side's (party RN), the last two the other's (party PC).
    real = [(f"{t.format(p=p)} {tag}".strip(), i) for i, (t, tag) in enumerate(TOPICS) for p in PLACES]
    real += [(f"{t.format(p=p)}, y seguimos adelante.", i) for i, (t, _) in enumerate(TOPICS) for p in PLACES]
    rows = [{"tweet": t, "completo": True, **SIDES[i // 2]} for t, i in real * 2]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rng = random.Random(0)
    rows = [{"candidates": [{"text": salad(rng)} for _ in range(4)]} for _ in range(20)]
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "tiny.aff").write_text("SET UTF-8\n", encoding="utf-8")
    (root / "tiny.dic").write_text("3\nhoy\nen\nvecinos\n", encoding="utf-8")
    summary = train_judge([root / "samples.jsonl"], root / "train.jsonl", folder, seed=1, progress=False,
                          dictionary=root / "tiny")
    assert summary["held_out_accuracy"] >= 0.9 and (folder / FILENAME).is_file()
    assert summary["side_head"]["sides"] == ["derecha", "izquierda"] and summary["side_head"]["held_out_accuracy"] >= 0.9
    return folder


def test_plain_words_leave_out_mentions_hashtags_links_and_numbers() -> None:
    text = "Gracias @JuanPerez por el #Debate2017: 3 mil personas en http://t.co/x y 2017vamos ¡Fuerza!"
    assert plain_words(text) == ["Gracias", "por", "el", "mil", "personas", "en", "y", "Fuerza"]


def test_a_tweet_that_reads_as_real_beats_word_salad(judged: Path) -> None:
    judge = ReaderJudge.load(judged)
    assert judge is not None and ReaderJudge.load(judged.parent) is None  # absent: skipped
    assert judge.score(REAL) > judge.score(SALAD) and judge.score(REAL) <= 0.0
    candidates = [(SALAD, Completion(SALAD, 12)), (REAL, Completion(REAL, 12))]
    weights = RankingSettings(real=1.0)
    ranked = rank(candidates, (), ["Osorno"], weights, judge)
    assert [r.text for r in ranked] == [REAL, SALAD]
    assert ranked[0].detail["real"] == pytest.approx(judge.score(REAL))
    # Its vocabulary knows the real tweet's words and none of the salad's invented ones.
    assert (ranked[0].detail["unknown"], ranked[1].detail["unknown"]) == (0.0, 1.0)
    assert "veraexca" in judge.unknown_words(SALAD) and "Osorno" not in judge.unknown_words(SALAD)
    by_words = rank(candidates, (), ["Osorno"], RankingSettings(unknown=1.0), judge)
    assert [r.text for r in by_words] == [REAL, SALAD] and "real" in by_words[0].detail
    # Weight 0: the judge is not consulted and the sampling order stands.
    assert [r.text for r in rank(candidates, (), ["Osorno"], RankingSettings(), judge)] == [SALAD, REAL]


def test_the_side_head_puts_first_the_candidate_a_reader_places_on_the_side_asked(judged: Path) -> None:
    judge = ReaderJudge.load(judged)
    assert judge is not None and judge.side is not None and judge.side.party_sides == {"RN": "derecha", "PC": "izquierda"}
    right = "Gracias a los vecinos de Temuco, seguimos trabajando por la seguridad y las pensiones dignas."
    left = "No aceptamos más abusos: defendemos la educación pública de calidad en Temuco."
    candidates = [(right, Completion(right, 14)), (left, Completion(left, 14))]
    weights = RankingSettings(lean=1.0)
    for party, other, first in (("RN", "PC", right), ("PC", "RN", left)):
        ranked = rank(candidates, (), [], weights, judge, party)
        assert ranked[0].text == first and ranked[0].detail["lean"] > ranked[1].detail["lean"]
        # Two sides: the tweet's probabilities of being each sum to one.
        both = math.exp(ranked[0].detail["lean"]) + math.exp(judge.read(first, other)["lean"])
        assert both == pytest.approx(1.0, abs=1e-4)
    # A party its training tweets never carried (or none) has no lean part: it cannot count.
    assert "lean" not in rank(candidates, (), [], weights, judge, "UDI")[0].detail
    assert "lean" not in rank(candidates, (), [], weights, judge)[0].detail


def test_a_copy_of_a_training_tweet_goes_last(judged: Path) -> None:
    judge = ReaderJudge.load(judged)
    assert judge is not None and judge.copies
    copy = "Hoy en Temuco conversamos sobre pensiones dignas y la reforma a las AFP #Pensiones"
    new = "Hoy en Temuco conversamos con los vecinos sobre pensiones dignas."
    candidates = [(copy, Completion(copy, 14)), (new, Completion(new, 12))]
    ranked = rank(candidates, (), ["Temuco"], RankingSettings(copied=5.0), judge)
    assert [r.text for r in ranked] == [new, copy]
    assert (ranked[0].detail["copied"], ranked[1].detail["copied"]) == (0.0, 1.0)
    # Case, accents and punctuation do not hide a copy.
    assert judge.read("HOY EN TEMUCO conversamos, sobre pensiónes dignas y la reforma...")["copied"] == 1.0


def test_a_side_head_in_fortran_order_is_saved_as_it_reads(tmp_path: Path) -> None:
    """scikit-learn's coefficients are Fortran-ordered; the file must hold them row by row."""
    shape = JudgeShape(buckets=64, known_bits=64)
    rng = np.random.default_rng(0)
    head = SideHead(np.asfortranarray(rng.normal(size=(3, shape.size)).astype(np.float32)),
                    np.zeros(3, dtype=np.float32), ("centro", "derecha", "izquierda"), {"PDC": "centro"})
    ReaderJudge(np.zeros(shape.size), 0.0, shape, None, side=head).save(tmp_path)
    loaded = ReaderJudge.load(tmp_path)
    assert loaded is not None and loaded.side is not None
    found = features(REAL, shape, None)
    assert loaded.side.log_probs(found) == pytest.approx(head.log_probs(found), abs=1e-2)


@dataclass
class Scripted:
    """A backend that answers salad first, then the tweet that reads as real."""

    async def complete(self, model, prompt, params, seed, n=1) -> list[Completion]:
        return [Completion(t, tokens=len(t.split())) for t in [SALAD, REAL][:n]]

    async def aclose(self) -> None:
        return None


async def test_the_service_ranks_with_the_judge_shipped_beside_the_model(judged: Path) -> None:
    settings = GenerationSettings.model_validate({
        "models": {"demo": {"path": str(judged), "kind": "controlled"}},
        "ranking": {"real": 2.0, "side": 0.0, "sentiment": 0.0},
    })
    prompt = PromptSpec("controlled", ControlFields(partido="UDI", entidades=("Osorno",)))
    result = await TweetGenerator(settings, Scripted()).generate(TweetRequest(None, prompt, seed=1, n=2))
    assert result.texts == [REAL, SALAD] and "real" in result.score_details[0]


@dataclass
class TwoSides:
    """A backend that answers one tweet of each side, the right's first."""

    right: str = "Gracias a los vecinos de Temuco, seguimos trabajando por la seguridad y las pensiones dignas."
    left: str = "No aceptamos más abusos: defendemos la educación pública de calidad en Temuco."

    async def complete(self, model, prompt, params, seed, n=1) -> list[Completion]:
        return [Completion(t, tokens=len(t.split())) for t in [self.right, self.left][:n]]

    async def aclose(self) -> None:
        return None


async def test_the_service_weighs_the_side_of_the_party_asked(judged: Path) -> None:
    settings = GenerationSettings.model_validate({
        "models": {"demo": {"path": str(judged), "kind": "controlled"}},
        "ranking": {"lean": 4.0, "side": 0.0, "sentiment": 0.0, "topic": 0.0},
    })
    backend = TwoSides()
    generator = TweetGenerator(settings, backend)
    for party, first in (("PC", backend.left), ("RN", backend.right)):
        prompt = PromptSpec("controlled", ControlFields(partido=party))
        result = await generator.generate(TweetRequest(None, prompt, seed=1, n=2))
        assert result.texts[0] == first and "lean" in result.score_details[0]
