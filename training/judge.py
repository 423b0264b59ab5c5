"""The measures ``evaluate`` and ``rerank`` apply to shown tweets, fitted once per run.

Both commands judge a choice of tweets against the prompts they answered and the real tweets
those prompts came from; keeping the measures in one place keeps their figures comparable.
"""

from __future__ import annotations

from typing import Any

from generation.decoding.ranking import names
from training.metrics import CopyDetector, SideClassifier, agreement, distinct_n
from training.realism import open_share, two_sample_accuracy
from training.sentiment import make_sentiment


class Judge:
    """Side classifier, sentiment annotator and copy detector, trained on the train split."""

    def __init__(self, train_rows: list[dict[str, Any]], sentiment: str, copy_words: int, seed: int) -> None:
        self.classifier = SideClassifier(seed).fit([r["tweet"] for r in train_rows], [r["lado"] for r in train_rows])
        self.annotator = make_sentiment(sentiment)
        self.copies = CopyDetector((r["tweet"] for r in train_rows), copy_words)
        self.seed = seed

    def label(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """Each text's side (the classifier's) and sentiment (the annotator's)."""
        return self.classifier.predict(texts), self.annotator(texts)

    def measure(self, texts: list[str], samples: list[dict[str, Any]], sides: list[str],
                sentiments: list[str]) -> dict[str, float]:
        """Realism and adherence of ``texts``, each answering ``samples[i]`` (its ``prompt`` and
        ``real`` tweet); ``sides`` and ``sentiments`` are :meth:`label`'s."""
        said = [t for t in texts if t]
        topics = [(t, s["prompt"]["entidades"][0]) for t, s in zip(texts, samples, strict=True)
                  if s["prompt"].get("entidades")]
        return {
            "open_share": open_share(said),
            "realism_accuracy": two_sample_accuracy(said, [s["real"] for s in samples], seed=self.seed),
            "side_adherence": agreement(sides, [s["prompt"]["lado"] for s in samples]),
            "sentiment_adherence": agreement(sentiments, [s["prompt"].get("sentimiento", "") for s in samples]),
            "topic_inclusion": sum(names(t, e) for t, e in topics) / len(topics) if topics else float("nan"),
            "memorization": self.copies.share(texts),
            "distinct_2": distinct_n(texts, 2),
        }
