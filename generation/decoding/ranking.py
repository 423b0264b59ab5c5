"""Choosing among sampled candidates by how well each fits the request.

A small model writes a good tweet only some of the time, so the bot samples several and shows
the best. "Best" is a weighted sum of what a reader would check, each part measurable:

- ``fit``: the tweet's mean log-probability per token (EOS included) under the requested
  controls. Fluent, complete tweets score higher; word salad and cut-offs lower.
- ``side`` / ``sentiment``: GeDi's contrast. The model is a class-conditional LM, so Bayes
  gives the log-probability that the requested side (sentiment) wrote the tweet rather than
  the others: ``log p(x|c) − log Σ_c' p(x|c')`` over the contrast prompts. 0 is certain.
- ``topic``: the share of requested topics (entities, hashtags) the tweet names.
- ``open``: 1 when the tweet stops mid-sentence (``generation/decoding/endings.py``), a penalty.
- ``real``: the reader's judge (``generation/decoding/judge.py``), the log-probability that the
  tweet is a real one rather than the model's: the part that prefers what reads as Spanish a
  person wrote. Present when the model's folder ships a judge.
- ``unknown``: 1 when the tweet holds a word the judge's vocabulary lacks (the training words and
  the dictionary words it saw), a penalty: the likeliest sign of an invented word.
- ``copied``: 1 when the tweet repeats a run of 8 words of a training tweet (the judge remembers
  them), a penalty: a tweet labelled fictional must not be a real politician's words.
- ``lean``: the judge's side head, the log-probability a reader places the tweet on the requested
  party's side. ``side`` is the model's own view of the same question; a small model that has
  learned the controls loosely is a poor judge of whether a tweet *reads* as that side.

Backends that cannot score (vLLM) still rank on topic and ending. Weights are chosen on the
validation split (``docs/demo-model.md``) and set in ``[generation.ranking]``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from generation.decoding.endings import ends_mid_sentence
from generation.decoding.judge import ReaderJudge
from generation.prompts import ControlFields
from generation.settings import RankingSettings
from generation.types import Completion, Contrast

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def names(text: str, topic: str) -> bool:
    """The topic appears as whole words (case, accents, ``#`` and ``@`` ignored)."""
    wanted, have = _words(topic), _words(text)
    n = len(wanted)
    return n > 0 and any(have[i:i + n] == wanted for i in range(len(have) - n + 1))


def _log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def parts(text: str, completion: Completion, contrasts: Sequence[Contrast], topics: Sequence[str],
          judge: ReaderJudge | None = None, party: str = "") -> dict[str, float]:
    """The measured parts of one candidate (only those this request, backend and model allow)."""
    out: dict[str, float] = {}
    if completion.logprobs and completion.scored:
        own = completion.logprobs[0]
        out["fit"] = own / completion.scored
        for group in ("side", "sentiment"):
            others = [lp for c, lp in zip(contrasts, completion.logprobs[1:], strict=False) if c.group == group]
            if others:
                out[group] = own - _log_sum_exp([own, *others])
    if topics:
        out["topic"] = sum(names(text, t) for t in topics) / len(topics)
    out["open"] = 1.0 if ends_mid_sentence(text) else 0.0
    if judge is not None:
        out.update(judge.read(text, party))
    return out


#: Each part's sign in the sum, in the order it is added: penalties count against.
SIGNS = {"fit": 1, "side": 1, "lean": 1, "sentiment": 1, "topic": 1, "open": -1, "real": 1,
         "unknown": -1, "copied": -1}


def weighted(detail: dict[str, float], weights: RankingSettings) -> dict[str, float]:
    """Each part as it enters the sum: its value × its weight, with its sign (the admin desk
    shows these, so the sum it shows is the sum ranked)."""
    return {name: sign * (getattr(weights, name) * detail.get(name, 0.0)) for name, sign in SIGNS.items()}


def total(detail: dict[str, float], weights: RankingSettings) -> float:
    """The weighted sum; ``open``, ``unknown`` and ``copied`` count against."""
    return sum(weighted(detail, weights).values())


@dataclass(frozen=True)
class Ranked:
    """A candidate with its score (higher is better) and the parts behind it."""

    text: str
    tokens: int
    score: float
    detail: dict[str, float]
    #: Its place among the candidates given to :func:`rank` (before ranking).
    index: int = 0


def rank(
    candidates: Sequence[tuple[str, Completion]], contrasts: Sequence[Contrast], topics: Sequence[str],
    weights: RankingSettings, judge: ReaderJudge | None = None, party: str = "",
) -> list[Ranked]:
    """The candidates best first; ties keep sampling order, so ranking off shows the first.
    The judge is consulted only when one of its weights counts; ``party`` is the requested
    PARTIDO, whose side its side head weighs."""
    ranked = []
    judge = judge if weights.consults_judge else None
    for text, completion in candidates:
        detail = parts(text, completion, contrasts, topics, judge, party) if weights.enabled else {}
        ranked.append(Ranked(text, completion.tokens, total(detail, weights), detail, len(ranked)))
    order = sorted(range(len(ranked)), key=lambda i: (-ranked[i].score, i))
    return [ranked[i] for i in order]


def negatives_for(fields: ControlFields, other_sides: Sequence[tuple[str, str]]) -> tuple[ControlFields, ...]:
    """The request's prompt with each other side's most likely (coalition, party): the negative
    prompts of contrast guidance (``generation/decoding/contrast.py``)."""
    return tuple(replace(fields, coalicion=c, partido=p) for c, p in other_sides)


def contrasts_for(
    fields: ControlFields, other_sides: Sequence[tuple[str, str]], other_sentiments: Sequence[str] = ()
) -> tuple[Contrast, ...]:
    """The request's prompt with each other side's (coalition, party), then with each other
    sentiment: what the requested controls are weighed against."""
    out = [Contrast("side", replace(fields, coalicion=c, partido=p)) for c, p in other_sides]
    out += [Contrast("sentiment", replace(fields, sentimiento=s)) for s in other_sentiments]
    return tuple(out)
