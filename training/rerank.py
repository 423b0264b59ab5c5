"""``rerank``: try ranking weights on candidates already drawn, without drawing them again.

``evaluate`` keeps every candidate of every prompt with the parts the ranker measured
(``samples.jsonl``). Choosing among them with other weights needs no model, so a whole grid of
weights is compared on the same draws in seconds, on the validation split; the chosen weights
then go to ``[generation.ranking]`` and the test split is evaluated once with them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generation.ranking import total
from generation.settings import RankingSettings
from training.decode import parse_overrides
from training.errors import InputError
from training.metrics import CopyDetector, SideClassifier, agreement, contains_topic, distinct_n
from training.realism import open_share, two_sample_accuracy
from training.sentiment import make_sentiment
from training.tables import read_jsonl

SHOWN = ("open_share", "realism_accuracy", "side_adherence", "sentiment_adherence", "topic_inclusion",
         "memorization", "distinct_2")


class Judge:
    """The evaluation's measures, fitted once and applied to any choice of shown tweets."""

    def __init__(self, train_rows: list[dict[str, Any]], sentiment: str, copy_words: int, seed: int) -> None:
        self.classifier = SideClassifier(seed).fit([r["tweet"] for r in train_rows], [r["lado"] for r in train_rows])
        self.annotator = make_sentiment(sentiment)
        self.copies = CopyDetector((r["tweet"] for r in train_rows), copy_words)
        self.seed = seed

    def measure(self, texts: list[str], samples: list[dict[str, Any]]) -> dict[str, float]:
        said = [t for t in texts if t]
        topics = [(t, s["prompt"]["entidades"][0]) for t, s in zip(texts, samples, strict=True)
                  if s["prompt"].get("entidades")]
        return {
            "open_share": open_share(said),
            "realism_accuracy": two_sample_accuracy(said, [s["real"] for s in samples], seed=self.seed),
            "side_adherence": agreement(self.classifier.predict(texts), [s["prompt"]["lado"] for s in samples]),
            "sentiment_adherence": agreement(self.annotator(texts),
                                             [s["prompt"].get("sentimiento", "") for s in samples]),
            "topic_inclusion": sum(contains_topic(t, e) for t, e in topics) / len(topics) if topics else float("nan"),
            "memorization": self.copies.share(texts),
            "distinct_2": distinct_n(texts, 2),
        }


def choose(sample: dict[str, Any], weights: RankingSettings) -> str:
    """The candidate these weights would show (the stored order breaks ties)."""
    candidates = sample["candidates"]
    if not candidates:
        return ""
    best = max(range(len(candidates)), key=lambda i: (total(candidates[i]["parts"], weights), -i))
    return candidates[best]["text"]


def rerank(samples_path: Path, train: Path, settings: list[str], out: Path | None = None,
           sentiment: str = "lexicon", copy_words: int = 8, seed: int = 42) -> dict[str, Any]:
    """Metrics of the shown tweets under each weight setting (``"side=2,open=3"``; unnamed weights
    keep their defaults)."""
    samples = read_jsonl(samples_path)
    if not all("candidates" in s and "real" in s for s in samples):
        raise InputError(f"{samples_path}: not an evaluate samples.jsonl with candidates")
    judge = Judge(read_jsonl(train), sentiment, copy_words, seed)
    results = []
    for setting in settings:
        try:
            weights = RankingSettings.model_validate(parse_overrides([p for p in setting.split(",") if p]))
        except ValueError as exc:
            raise InputError(f"{setting!r}: {exc}") from None
        if not weights.enabled:
            raise InputError("the stored candidates are already ranked: evaluate with --rank enabled=false instead")
        texts = [choose(s, weights) for s in samples]
        results.append({"weights": setting, **judge.measure(texts, samples)})
    table = ["| weights | " + " | ".join(SHOWN) + " |", "|" + " --- |" * (len(SHOWN) + 1)]
    table += ["| " + r["weights"] + " | " + " | ".join(f"{r[m]:.3f}" for m in SHOWN) + " |" for r in results]
    summary = {"samples": str(samples_path), "results": results, "table": "\n".join(table)}
    if out:
        out.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
