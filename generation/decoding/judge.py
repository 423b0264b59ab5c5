"""A reader's judge: does a candidate read like a real tweet? Cheap enough for every request.

The controls' parts of the ranking (side, sentiment, topic) say nothing about whether a tweet
reads as Spanish a person wrote; a small model now and then writes word salad with invented
words that still fits its controls. Residual energy-based reranking (Bakhtin et al., 2019;
Deng et al., 2020) corrects that with a discriminator trained to tell the model's own samples
from real tweets: its log-odds is the energy a candidate is ranked by.

This one is a logistic regression over hashed n-grams (word 1-2 grams and character 2-4 grams
within words) and two counts of words its vocabulary never saw, so scoring is a few hundred
hash look-ups per candidate: well under a millisecond, no torch, no scikit-learn. It is trained
by ``politico-train judge`` (``training/discriminator.py``) and shipped beside the model it was
trained for as ``judge.safetensors``: the weights and a bit set of known words as tensors, the
settings as metadata. The featurization lives here alone, so training and serving cannot drift.

The same reader also says which side it would place a tweet on (a second, multinomial head over
the same features, trained on the real training tweets' sides). The model's own side contrast
(``side`` in the ranking) asks whether the *model* thinks the requested side wrote a candidate;
this asks whether a *reader* would, which is what a user checks. Requests name a party; the
party's side is the one its training tweets carried, stored with the head.

And it remembers the training tweets: the hashes of their runs of ``copy_words`` words, so the
ranking can put last a candidate that repeats one of a real politician's tweets word for word
(a tweet the bot labels fictional must not be a real one; the judge, preferring what reads as
real, would otherwise prefer copies).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILENAME = "judge.safetensors"
#: A token that is no word to check: a mention, a hashtag, a link, or anything with a digit.
_SKIPPED = re.compile(r"^(?:[@#]|https?://|www\.)|\d")
_LETTERS = re.compile(r"[^\W\d_]+")
_TOKEN = re.compile(r"\S+")
_COPY_WORD = re.compile(r"[@#]?\w+")


def plain_words(text: str) -> list[str]:
    """The words a reader would look up: letters only, mentions, hashtags, links and numbers
    aside (the definition issue 20 counts invented words by)."""
    return [w for token in _TOKEN.findall(text) if not _SKIPPED.search(token)
            for w in _LETTERS.findall(token)]


def _bucket(kind: str, gram: str, buckets: int) -> int:
    return zlib.crc32(f"{kind}\x1f{gram}".encode()) % buckets


def _shape(token: str) -> str:
    """Mentions, links and numbers by their kind, not their text: what a reader notices is
    that a tweet mentions someone, not whom."""
    if token.startswith("@"):
        return "@user"
    if token.startswith(("http://", "https://", "www.")):
        return "http"
    if any(ch.isdigit() for ch in token):
        return "0"
    return token


@dataclass(frozen=True)
class JudgeShape:
    """How text becomes features; stored with the weights so both sides agree."""

    buckets: int = 1 << 18
    char_min: int = 2
    char_max: int = 4
    word_max: int = 2
    #: Bits of the known-words set (a one-hash Bloom filter over folded words).
    known_bits: int = 1 << 20
    #: A run this many words long shared with a training tweet makes a copy (as evaluate counts).
    copy_words: int = 8

    @property
    def size(self) -> int:
        """Hashed buckets, then the two unknown-word features."""
        return self.buckets + 2


def known_index(word: str, bits: int) -> int:
    """The word's bit in the known-words set (case folded, so "Salud" is "salud")."""
    return zlib.crc32(word.casefold().encode()) % bits


def features(text: str, shape: JudgeShape, known: np.ndarray | None) -> dict[int, float]:
    """Feature index → value: hashed n-gram counts (log-damped, scaled to unit length) and, with
    a known-words set, the share of words it lacks and whether any is lacking."""
    counts: dict[int, float] = {}

    def add(index: int) -> None:
        counts[index] = counts.get(index, 0.0) + 1.0

    tokens = [_shape(t) for t in _TOKEN.findall(text.casefold())]
    words = ["<s>", *tokens, "</s>"]
    for n in range(1, shape.word_max + 1):
        for i in range(len(words) - n + 1):
            add(_bucket(f"w{n}", " ".join(words[i:i + n]), shape.buckets))
    for token in tokens:
        padded = f" {token} "
        for n in range(shape.char_min, shape.char_max + 1):
            for i in range(len(padded) - n + 1):
                add(_bucket("c", padded[i:i + n], shape.buckets))
    damped = {i: 1.0 + math.log(c) for i, c in counts.items()}
    # Unit length, so a short tweet is not judged by how few n-grams it has.
    norm = math.sqrt(sum(v * v for v in damped.values())) or 1.0
    out = {i: v / norm for i, v in damped.items()}
    if known is not None:
        plain = plain_words(text)
        missing = sum(not _known(known, w, shape.known_bits) for w in plain)
        out[shape.buckets] = missing / len(plain) if plain else 0.0
        out[shape.buckets + 1] = 1.0 if missing else 0.0
    return out


def shingles(text: str, n: int) -> set[int]:
    """Hashes of ``text``'s runs of ``n`` words (lower case, accents aside): what a copy of a
    training tweet shares with it."""
    folded = "".join(c for c in unicodedata.normalize("NFD", text.casefold()) if unicodedata.category(c) != "Mn")
    words = _COPY_WORD.findall(folded)
    return {zlib.crc32(" ".join(words[i:i + n]).encode()) for i in range(len(words) - n + 1)}


def _known(known: np.ndarray, word: str, bits: int) -> bool:
    index = known_index(word, bits)
    return bool(known[index >> 3] & (1 << (index & 7)))


def known_set(words: Iterable[str], bits: int) -> np.ndarray:
    """The bit set of ``words`` (folded), as ``features`` reads it."""
    out = np.zeros(bits // 8, dtype=np.uint8)
    for word in words:
        index = known_index(word, bits)
        out[index >> 3] |= 1 << (index & 7)
    return out


@dataclass(frozen=True)
class SideHead:
    """Which side a reader would place a tweet on: softmax over ``sides`` of the same features."""

    weights: np.ndarray  # (len(sides), shape.size)
    bias: np.ndarray  # (len(sides),)
    sides: tuple[str, ...]
    #: Party (the PARTIDO control) → the side its training tweets were labelled with.
    party_sides: dict[str, str]

    def log_probs(self, found: dict[int, float]) -> np.ndarray:
        """``log p(side | text)`` for every side, from the text's features."""
        index = np.fromiter(found, dtype=np.int64, count=len(found))
        values = np.fromiter(found.values(), dtype=np.float32, count=len(found))
        z = self.bias + self.weights[:, index] @ values
        z = z - z.max()
        return z - np.log(np.exp(z).sum())


class ReaderJudge:
    """Scores a text by the log-probability that it is a real tweet (0 is certain) and, with a
    side head, by the log-probability a reader places it on the requested party's side."""

    def __init__(self, weights: np.ndarray, bias: float, shape: JudgeShape, known: np.ndarray | None,
                 info: dict | None = None, side: SideHead | None = None, copies: frozenset[int] = frozenset()
                 ) -> None:
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.shape = shape
        self.known = known
        self.info = info or {}
        self.side = side
        #: ``shingles`` of the training tweets.
        self.copies = copies

    def _logit(self, found: dict[int, float]) -> float:
        return self.bias + sum(float(self.weights[i]) * v for i, v in found.items())

    def logit(self, text: str) -> float:
        """Log-odds that ``text`` is real rather than the model's."""
        return self._logit(features(text, self.shape, self.known))

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` its vocabulary lacks (all of them when it has none): the
        runtime stand-in for invented words."""
        return [w for w in plain_words(text)
                if self.known is None or not _known(self.known, w, self.shape.known_bits)]

    def score(self, text: str) -> float:
        """``log p(real | text)``: on the scale of the side and sentiment parts."""
        return _log_sigmoid(self.logit(text))

    def read(self, text: str, party: str = "") -> dict[str, float]:
        """The ranking's parts from one featurization: ``real``, ``unknown``, ``copied`` (with the
        training tweets' shingles) and, where the party's side is known, ``lean``."""
        found = features(text, self.shape, self.known)
        out = {"real": _log_sigmoid(self._logit(found)), "unknown": 1.0 if self.unknown_words(text) else 0.0}
        if self.copies:
            out["copied"] = 1.0 if shingles(text, self.shape.copy_words) & self.copies else 0.0
        wanted = self.side.party_sides.get(party) if self.side else None
        if wanted is not None:
            out["lean"] = float(self.side.log_probs(found)[self.side.sides.index(wanted)])
        return out

    def save(self, folder: Path) -> Path:
        from safetensors.numpy import save_file

        tensors = {"weights": self.weights}
        if self.known is not None:
            tensors["known"] = self.known
        if self.copies:
            tensors["copies"] = np.array(sorted(self.copies), dtype=np.uint32)
        meta = {"shape": json.dumps(self.shape.__dict__), "bias": repr(self.bias),
                "info": json.dumps(self.info, ensure_ascii=False)}
        if self.side is not None:
            # float16 halves the file; the head's logits move by well under 0.01. C order:
            # safetensors writes an array's buffer as it lies (scikit-learn's coef_ is Fortran).
            tensors["side_weights"] = np.ascontiguousarray(self.side.weights, dtype=np.float16)
            tensors["side_bias"] = self.side.bias.astype(np.float32)
            meta["sides"] = json.dumps(list(self.side.sides))
            meta["party_sides"] = json.dumps(self.side.party_sides, ensure_ascii=False)
        path = Path(folder) / FILENAME
        save_file(tensors, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ReaderJudge | None:
        """The judge shipped in ``folder``, or None when there is none (the part is skipped)."""
        path = Path(folder).expanduser() / FILENAME
        if not path.is_file():
            return None
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (no __iter__)
        shape = JudgeShape(**json.loads(meta["shape"]))
        side = None
        if "side_weights" in tensors:
            side = SideHead(tensors["side_weights"].astype(np.float32), tensors["side_bias"],
                            tuple(json.loads(meta["sides"])), json.loads(meta["party_sides"]))
        copies = frozenset(tensors["copies"].tolist()) if "copies" in tensors else frozenset()
        return cls(tensors["weights"], float(meta["bias"]), shape, tensors.get("known"),
                   json.loads(meta.get("info", "{}")), side, copies)


def _log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z > -30 else z
