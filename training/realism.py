"""Could a reader tell the model's tweets from real ones? Two measures that answer it.

- A two-sample test by classifier (Lopez-Paz & Oquab, 2017): a linear model on word 1-3 grams
  and character 2-5 grams learns to tell generated tweets from real held-out ones; its
  cross-validated accuracy is 0.5 when nothing tells them apart and near 1 when everything does.
- The same test over another family of features: a tweet's surface style (length, word
  lengths, capitals, punctuation, mentions, hashtags, numbers, emoji, repeated words), told
  apart by gradient-boosted trees. The reader's judge that ranks candidates
  (``generation/decoding/judge.py``) looks at hashed n-grams, as the first test does, so its
  effect is also checked by a measure it never saw.
- The share of tweets that stop mid-sentence (``generation/decoding/endings.py``), for generated and real.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from generation.decoding.endings import ends_mid_sentence
from training.sentiment import fold


def two_sample_accuracy(generated: Sequence[str], real: Sequence[str], folds: int = 5, seed: int = 0) -> float:
    """Mean accuracy of telling generated from real over ``folds`` stratified folds.

    The two samples are cut to the same size first, so guessing the larger class scores 0.5;
    with fewer tweets than folds, as many folds as tweets (NaN below two).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline, make_union

    size = min(len(generated), len(real))
    folds = min(folds, size)
    if folds < 2:
        return float("nan")  # too few tweets to test anything
    texts = [*generated[:size], *real[:size]]
    labels = [1] * size + [0] * size
    pipeline = make_pipeline(
        make_union(
            TfidfVectorizer(preprocessor=fold, ngram_range=(1, 3), min_df=1, sublinear_tf=True),
            TfidfVectorizer(preprocessor=fold, analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                            sublinear_tf=True),
        ),
        LogisticRegression(max_iter=2000, C=1.0, random_state=seed),
    )
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(pipeline, texts, labels, cv=splits, scoring="accuracy").mean())


def two_sample_accuracy_mean(generated: Sequence[str], real: Sequence[str], fold_seeds: int) -> float:
    """:func:`two_sample_accuracy` averaged over the fold splits of seeds ``0 … fold_seeds - 1``.

    On 300 tweets one split moves the figure by about ±0.015 (its sd over splits), as much as many
    a lever moves it; settings compared on the same draws are compared by this mean instead.
    """
    return sum(two_sample_accuracy(generated, real, seed=seed) for seed in range(fold_seeds)) / fold_seeds


_WORDS = re.compile(r"\w+")


def style_features(text: str) -> list[float]:
    """A tweet's surface style, none of its words: what a reader sees at a glance."""
    words = _WORDS.findall(text)
    letters = [ch for ch in text if ch.isalpha()]
    tokens = text.split()
    count = max(1, len(words))
    return [
        len(text), len(words), sum(map(len, words)) / count, max(map(len, words), default=0),
        sum(w[:1].isupper() for w in words) / count, sum(ch.isupper() for ch in letters) / max(1, len(letters)),
        sum(ch in ".,;:" for ch in text) / count, sum(ch in "¡!¿?" for ch in text),
        sum(ch in "\"“”«»()" for ch in text), float(text.rstrip()[-1:] in ".!?"),
        sum(t.startswith("@") for t in tokens), sum(t.startswith("#") for t in tokens),
        sum(ch.isdigit() for ch in text), sum(not ch.isascii() and not ch.isalpha() for ch in text),
        1 - len({w.casefold() for w in words}) / count,
    ]


def style_two_sample_accuracy(generated: Sequence[str], real: Sequence[str], folds: int = 5, seed: int = 0
                              ) -> float:
    """:func:`two_sample_accuracy` with :func:`style_features` and gradient-boosted trees."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    size = min(len(generated), len(real))
    folds = min(folds, size)
    if folds < 2:
        return float("nan")
    features = [style_features(t) for t in [*generated[:size], *real[:size]]]
    labels = [1] * size + [0] * size
    model = HistGradientBoostingClassifier(max_iter=100, max_depth=3, learning_rate=0.1, random_state=seed)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, features, labels, cv=splits, scoring="accuracy").mean())


def open_share(texts: Sequence[str]) -> float:
    """The share of ``texts`` that stop mid-sentence."""
    return sum(ends_mid_sentence(t) for t in texts) / len(texts) if texts else float("nan")
