"""``judge``: train the reader's judge that ranking uses (``generation/decoding/judge.py``).

The judge learns to tell the model's own samples (every candidate ``evaluate`` drew on prompts
from the *training* split) from real training tweets: residual energy-based reranking
(Bakhtin et al., 2019; Deng et al., 2020) with a linear model, so that it scores in well under a
millisecond inside the bot. scikit-learn fits it; the weights are exported to
``judge.safetensors`` beside the model, scored at request time without scikit-learn.

Known words: the judge counts the words of a candidate that its vocabulary lacks, the runtime
stand-in for the invented-word measure (``training/invented.py``), which needs a dictionary the
bot does not carry. The vocabulary is the training words plus every word of the judge's own
examples that the Hunspell dictionary accepts. Were it all the training tweets, every real
tweet the judge learns from would know all its words and the count would be a perfect, false
tell; so its training words are one half of the training tweets, and the real tweets it learns
from are the other half (whose proper names it then lacks, as it lacks a new tweet's).

Side head: where the training tweets carry sides (``lado``), a multinomial logistic regression
over the same features learns them from every complete training tweet (sides weighed alike, so
the one-candidate centre is not drowned out), and the ranking's ``lean`` part asks it whether a
reader would place a candidate on the requested side.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from generation.decoding.judge import (
    JudgeShape,
    ReaderJudge,
    SideHead,
    features,
    known_set,
    plain_words,
    shingles,
)
from training.errors import InputError
from training.invented import DEFAULT_DICTIONARY, InventedWords
from training.tables import read_jsonl

#: Inverse regularization strengths tried, the best on the held-out fifth kept.
STRENGTHS = (3.0, 10.0, 30.0, 100.0)


def _matrix(texts: list[str], shape: JudgeShape, known: Any, progress: bool):
    """The texts' ``features`` as one sparse matrix."""
    from scipy.sparse import csr_matrix
    from tqdm.auto import tqdm

    rows, cols, values = [], [], []
    for i, text in enumerate(tqdm(texts, desc="features", disable=not progress)):
        for j, v in features(text, shape, known).items():
            rows.append(i)
            cols.append(j)
            values.append(v)
    return csr_matrix((values, (rows, cols)), shape=(len(texts), shape.size))


def generated_texts(samples: list[Path]) -> list[str]:
    """Every candidate text in ``evaluate``'s samples files (shown or not), once each."""
    seen: dict[str, None] = {}
    for path in samples:
        for row in read_jsonl(path):
            for candidate in row.get("candidates", []):
                if candidate.get("text"):
                    seen.setdefault(candidate["text"], None)
    return list(seen)


def _fit(x: Any, labels: list, seed: int, class_weight: str | None = None) -> tuple[Any, dict[float, float]]:
    """A logistic regression at the strength that does best on a held-out fifth (refitted on
    everything), and each strength's held-out accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x_fit, x_test, y_fit, y_test = train_test_split(x, labels, test_size=0.2, random_state=seed, stratify=labels)
    tried = {}
    for strength in STRENGTHS:
        model = LogisticRegression(C=strength, max_iter=3000, class_weight=class_weight, random_state=seed)
        tried[strength] = float(model.fit(x_fit, y_fit).score(x_test, y_test))
    best = max(tried, key=lambda c: (tried[c], -c))
    return LogisticRegression(C=best, max_iter=3000, class_weight=class_weight, random_state=seed).fit(x, labels), tried


def _side_head(rows: list[dict[str, Any]], shape: JudgeShape, known: Any, seed: int,
               progress: bool) -> tuple[SideHead | None, dict[str, Any]]:
    """The side head over the ``rows`` that carry a side (None when fewer than two sides do)."""
    import numpy as np

    labelled = [r for r in rows if r.get("lado")]
    if len({r["lado"] for r in labelled}) < 2:
        return None, {}
    model, tried = _fit(_matrix([r["tweet"] for r in labelled], shape, known, progress),
                        [r["lado"] for r in labelled], seed, class_weight="balanced")
    best = float(model.C)
    parties = {r["partido"]: r["lado"] for r in labelled if r.get("partido")}
    weights, bias = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes: the second's log-odds
        weights, bias = np.vstack([np.zeros_like(weights), weights]), np.concatenate([[0.0], bias])
    head = SideHead(weights.astype(np.float32), bias.astype(np.float32),
                    tuple(str(c) for c in model.classes_), parties)
    return head, {"side_head": {"tweets": len(labelled), "held_out_accuracy": tried[best], "C": best,
                                "sides": list(head.sides)}}


def train_judge(samples: list[Path], train: Path, out: Path, seed: int = 42, progress: bool = True,
                dictionary: Path = DEFAULT_DICTIONARY) -> dict[str, Any]:
    """Fit, report held-out accuracy, and write ``judge.safetensors`` into ``out``."""
    fake = generated_texts(samples)
    rows = [r for r in read_jsonl(train) if r.get("completo", True)]
    if not fake or not rows:
        raise InputError("the judge needs candidates (evaluate's samples.jsonl) and training tweets")
    rng = random.Random(seed)
    rng.shuffle(rows)
    vocabulary, learned = rows[: len(rows) // 2], rows[len(rows) // 2:]
    shape = JudgeShape()
    missing = InventedWords.available(dictionary)
    if missing:
        raise InputError(missing)
    words = InventedWords((r["tweet"] for r in vocabulary), dictionary)
    seen = {w for text in [*fake, *(r["tweet"] for r in rows)] for w in plain_words(text)}
    known = known_set([*words.known, *(w for w in seen if words.accepted(w))], shape.known_bits)
    real = [r["tweet"] for r in learned]
    size = min(len(real), len(fake))
    texts = rng.sample(real, size) + rng.sample(fake, size)
    model, tried = _fit(_matrix(texts, shape, known, progress), [1] * size + [0] * size, seed)
    best = float(model.C)
    side, side_info = _side_head(rows, shape, known, seed, progress)
    info = {"trained_on": {"generated": size, "real": size, "samples": [str(p) for p in samples],
                           "train": str(train)},
            "held_out_accuracy": tried[best], "accuracy_by_C": {str(c): a for c, a in tried.items()}, "C": best,
            "unknown_word_weights": [float(model.coef_[0][shape.buckets]), float(model.coef_[0][shape.buckets + 1])],
            **side_info}
    copies = frozenset(h for r in read_jsonl(train) for h in shingles(r["tweet"], shape.copy_words))
    judge = ReaderJudge(model.coef_[0], float(model.intercept_[0]), shape, known, info, side, copies)
    out.mkdir(parents=True, exist_ok=True)
    path = judge.save(out)
    return {"judge": str(path), "bytes": path.stat().st_size, **info}
