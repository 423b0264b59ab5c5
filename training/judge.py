"""The measures ``evaluate`` and ``rerank`` apply to shown tweets, fitted once per run.

Both commands judge a choice of tweets against the prompts they answered and the real tweets
those prompts came from; keeping the measures in one place keeps their figures comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generation.decoding.ranking import names
from training.invented import DEFAULT_DICTIONARY, InventedWords
from training.metrics import CopyDetector, SideClassifier, agreement, distinct_n
from training.realism import (
    open_share,
    style_two_sample_accuracy,
    two_sample_accuracy,
    two_sample_accuracy_mean,
)
from training.sentiment import make_sentiment


def first_topic(prompt: dict[str, Any]) -> str:
    """The topic a prompt asked for: its first entity, else its first hashtag ("" if none)."""
    if prompt.get("entidades"):
        return prompt["entidades"][0]
    return "#" + prompt["hashtags"][0] if prompt.get("hashtags") else ""


def _side_check(rows: list[dict[str, Any]], seed: int) -> SideClassifier | None:
    """The side check's classifier, trained on ``rows``; None (the figure is NaN) when they hold
    one side or too few tweets for its vocabulary (scikit-learn refuses: a tiny split)."""
    labelled = [r for r in rows if r.get("lado")]
    if len({r["lado"] for r in labelled}) < 2:
        return None
    try:
        return SideClassifier(seed).fit([r["tweet"] for r in labelled], [r["lado"] for r in labelled])
    except ValueError:
        return None


class Judge:
    """Side classifier, sentiment annotator, copy detector and invented-word check, built from
    the train split (the invented-word check only where its dictionary is: ``skipped`` says why
    not otherwise).

    With ``held_out_rows`` (the split being measured on), a second side classifier is trained on
    *those* real tweets: the ranking's side head (``lean``) learned from the train split, as the
    first classifier did, so a choice made by it could please the first and not a reader; the
    second saw other tweets, and ``side_adherence_check`` is what it says.

    With ``fold_seeds`` > 1, ``realism_folds`` is ``realism_accuracy`` averaged over that many fold
    splits (:func:`~training.realism.two_sample_accuracy_mean`): steadier, and that many times
    the cost."""

    def __init__(self, train_rows: list[dict[str, Any]], sentiment: str, copy_words: int, seed: int,
                 dictionary: Path = DEFAULT_DICTIONARY, held_out_rows: list[dict[str, Any]] | None = None,
                 fold_seeds: int = 1) -> None:
        self.classifier = SideClassifier(seed).fit([r["tweet"] for r in train_rows], [r["lado"] for r in train_rows])
        self.check = _side_check(held_out_rows or [], seed)
        self.annotator = make_sentiment(sentiment)
        self.copies = CopyDetector((r["tweet"] for r in train_rows), copy_words)
        self.seed = seed
        self.fold_seeds = fold_seeds
        self.skipped = InventedWords.available(dictionary)
        self.invented = None if self.skipped else InventedWords((r["tweet"] for r in train_rows), dictionary)

    def invented_share(self, texts: list[str]) -> float:
        """The share of ``texts`` holding an invented word (NaN without a dictionary)."""
        return self.invented.share([t for t in texts if t]) if self.invented else float("nan")

    def label(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """Each text's side (the classifier's) and sentiment (the annotator's)."""
        return self.classifier.predict(texts), self.annotator(texts)

    def measure(self, texts: list[str], samples: list[dict[str, Any]], sides: list[str],
                sentiments: list[str]) -> dict[str, float]:
        """Realism and adherence of ``texts``, each answering ``samples[i]`` (its ``prompt`` and
        ``real`` tweet: the one it was prompted from, or for a user-style prompt another real
        tweet of the split); ``sides`` and ``sentiments`` are :meth:`label`'s."""
        said = [t for t in texts if t]
        topics = [(t, first_topic(s["prompt"])) for t, s in zip(texts, samples, strict=True)
                  if first_topic(s["prompt"])]
        real = [s["real"] for s in samples]
        folds = {"realism_folds": two_sample_accuracy_mean(said, real, self.fold_seeds)} if self.fold_seeds > 1 else {}
        return {
            **folds,
            "open_share": open_share(said),
            "realism_accuracy": two_sample_accuracy(said, real, seed=self.seed),
            "realism_style": style_two_sample_accuracy(said, real, seed=self.seed),
            "side_adherence": agreement(sides, [s["prompt"]["lado"] for s in samples]),
            "side_adherence_check": (agreement(self.check.predict(texts), [s["prompt"]["lado"] for s in samples])
                                     if self.check else float("nan")),
            "sentiment_adherence": agreement(sentiments, [s["prompt"].get("sentimiento", "") for s in samples]),
            "topic_inclusion": sum(names(t, e) for t, e in topics) / len(topics) if topics else float("nan"),
            "memorization": self.copies.share(texts),
            "distinct_2": distinct_n(texts, 2),
            "invented_share": self.invented_share(texts),
        }
