"""Control adherence and quality measures of generated tweets.

Each is the simplest check that a reader would accept: a side classifier trained on real
tweets, the sentiment annotator used to label the training data, long verbatim copies of training tweets, and the share of distinct word pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from training.sentiment import fold

WORD = re.compile(r"[@#]?\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return WORD.findall(fold(text))


class SideClassifier:
    """TF-IDF (word 1-2 grams and character 2-5 grams) + logistic regression on real tweets."""

    def __init__(self, seed: int = 0) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union

        self.pipeline = make_pipeline(
            make_union(
                TfidfVectorizer(preprocessor=fold, ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                TfidfVectorizer(preprocessor=fold, analyzer="char_wb", ngram_range=(2, 5), min_df=3,
                                sublinear_tf=True, max_features=100_000),
            ),
            LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced", random_state=seed),
        )

    def fit(self, texts: Sequence[str], sides: Sequence[str]) -> SideClassifier:
        self.pipeline.fit(list(texts), list(sides))
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [str(s) for s in self.pipeline.predict(list(texts))]

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]


def agreement(predicted: Sequence[str], wanted: Sequence[str]) -> float:
    pairs = [(p, w) for p, w in zip(predicted, wanted, strict=True) if w]
    return sum(p == w for p, w in pairs) / len(pairs) if pairs else float("nan")


def ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


class CopyDetector:
    """Finds generated tweets that repeat ``n`` or more consecutive words of a training tweet."""

    def __init__(self, training_texts: Iterable[str], n: int = 8) -> None:
        self.n = n
        self.seen = {g for text in training_texts for g in ngrams(words(text), n)}

    def copies(self, text: str) -> bool:
        return any(g in self.seen for g in ngrams(words(text), self.n))

    def share(self, texts: Sequence[str]) -> float:
        return sum(self.copies(t) for t in texts) / len(texts) if texts else float("nan")


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams in all texts (Li et al., 2016)."""
    grams = [g for text in texts for g in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0
