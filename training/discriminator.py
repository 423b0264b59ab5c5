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
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from generation.decoding.judge import JudgeShape, ReaderJudge, features, known_set, plain_words
from training.errors import InputError
from training.invented import DEFAULT_DICTIONARY, InventedWords
from training.tables import read_jsonl

#: Inverse regularization strengths tried, the best on the held-out fifth kept.
STRENGTHS = (3.0, 10.0, 30.0, 100.0)


def _matrix(texts: list[str], shape: JudgeShape, known: Any, progress: bool):
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


def train_judge(samples: list[Path], train: Path, out: Path, seed: int = 42, progress: bool = True,
                dictionary: Path = DEFAULT_DICTIONARY) -> dict[str, Any]:
    """Fit, report held-out accuracy, and write ``judge.safetensors`` into ``out``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

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
    labels = [1] * size + [0] * size
    x = _matrix(texts, shape, known, progress)
    x_fit, x_test, y_fit, y_test = train_test_split(x, labels, test_size=0.2, random_state=seed, stratify=labels)
    tried = {}
    for strength in STRENGTHS:
        model = LogisticRegression(C=strength, max_iter=3000, random_state=seed).fit(x_fit, y_fit)
        tried[strength] = float(model.score(x_test, y_test))
    best = max(tried, key=lambda c: (tried[c], -c))
    model = LogisticRegression(C=best, max_iter=3000, random_state=seed).fit(x, labels)
    info = {"trained_on": {"generated": size, "real": size, "samples": [str(p) for p in samples],
                           "train": str(train)},
            "held_out_accuracy": tried[best], "accuracy_by_C": {str(c): a for c, a in tried.items()}, "C": best,
            "unknown_word_weights": [float(model.coef_[0][shape.buckets]), float(model.coef_[0][shape.buckets + 1])]}
    judge = ReaderJudge(model.coef_[0], float(model.intercept_[0]), shape, known, info)
    out.mkdir(parents=True, exist_ok=True)
    path = judge.save(out)
    return {"judge": str(path), "bytes": path.stat().st_size, **info}
