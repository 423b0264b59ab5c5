"""The reader's judge: trained here on a few dozen tweets against word salad, it ranks a
candidate that reads as real above word salad, through the service as the bot calls it."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from generation.decoding.judge import FILENAME, ReaderJudge, plain_words
from generation.decoding.ranking import rank
from generation.prompts import ControlFields
from generation.serving.service import TweetGenerator, TweetRequest
from generation.settings import GenerationSettings, RankingSettings
from generation.types import Completion, PromptSpec
from tests.support.tiny_model import build_tiny_model
from tests.training.conftest import PLACES, TOPICS
from training.discriminator import train_judge

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
    real = [f"{t.format(p=p)} {tag}".strip() for t, tag in TOPICS for p in PLACES]
    real += [f"{t.format(p=p)}, y seguimos adelante." for t, _ in TOPICS for p in PLACES]
    (root / "train.jsonl").write_text("".join(json.dumps({"tweet": t, "completo": True}) + "\n" for t in real * 2),
                                      encoding="utf-8")
    rng = random.Random(0)
    rows = [{"candidates": [{"text": salad(rng)} for _ in range(4)]} for _ in range(20)]
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "tiny.aff").write_text("SET UTF-8\n", encoding="utf-8")
    (root / "tiny.dic").write_text("3\nhoy\nen\nvecinos\n", encoding="utf-8")
    summary = train_judge([root / "samples.jsonl"], root / "train.jsonl", folder, seed=1, progress=False,
                          dictionary=root / "tiny")
    assert summary["held_out_accuracy"] >= 0.9 and (folder / FILENAME).is_file()
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
