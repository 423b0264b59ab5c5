"""Topic guidance: a soft push toward writing the requested topic, token for token.

A small control-token model learns *that* the tweet should name the prompt's ENTIDADES and
HASHTAGS, but it copies rare ones approximately: asked for ``@YverYactuar`` it writes
``@Yeffy``. Guidance adds a logit bonus to the token that continues a topic the tweet has begun
(``follow_bias``) and a smaller one to a topic's first token while it is still missing
(``start_bias``). It is a bias, not a constraint: the model can still write something else, and a
topic already written gets no more push. The rule is :func:`boosts`; Hugging Face's ``generate``
follows it through :class:`GuideProcessor` (beam search, ``evaluate``), and the engine's batch
through ``TopicRule`` (``generation/decoding/rules.py``), the same rule as tensor operations
over every row at once (tested equal).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

#: One topic's spellings in token ids (as written at the start of the tweet and after a space).
Variants = tuple[tuple[int, ...], ...]


def topic_variants(tokenizer: Any, topics: Iterable[str]) -> tuple[Variants, ...]:
    """Each non-empty topic as the token sequences it can be written with."""
    out: list[Variants] = []
    for topic in topics:
        topic = topic.strip()
        if not topic:
            continue
        spellings = {tuple(tokenizer.encode(text, add_special_tokens=False)) for text in (topic, " " + topic)}
        out.append(tuple(sorted(s for s in spellings if s)))
    return tuple(out)


def written(generated: Sequence[int], variants: Variants) -> bool:
    """Whether the topic appears anywhere in ``generated``."""
    return any(
        tuple(generated[i:i + len(v)]) == v for v in variants for i in range(len(generated) - len(v) + 1)
    )


def boosts(generated: Sequence[int], pending: tuple[Variants, ...], start_bias: float,
           follow_bias: float) -> dict[int, float]:
    """Logit bonuses for the next token, given the tweet's tokens so far.

    ``pending`` are the topics not yet written: a written one leaves the rest of the tweet alone.
    """
    out: dict[int, float] = {}
    for variants in pending:
        for spelling in variants:
            # The longest started prefix decides the token that continues it.
            begun = next((k for k in range(len(spelling) - 1, 0, -1)
                          if tuple(generated[len(generated) - k:]) == spelling[:k]), 0)
            bias = follow_bias if begun else start_bias
            token = spelling[begun]
            if bias and bias > out.get(token, 0.0):
                out[token] = bias
    return out


class GuideProcessor(LogitsProcessor):
    """:func:`boosts` for ``generate``: row ``i`` is guided by ``topics[i]`` (``None``: not guided).

    ``prompt_length`` is the left-padded prompt width, where every row's tweet starts; with beam
    search pass each row's topics once per beam.
    """

    def __init__(self, topics: Sequence[tuple[Variants, ...] | None], prompt_length: int,
                 start_bias: float, follow_bias: float) -> None:
        self.topics = list(topics)
        self.prompt_length = prompt_length
        self.start_bias, self.follow_bias = start_bias, follow_bias

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, topics in enumerate(self.topics):
            if not topics:
                continue
            generated = input_ids[row, self.prompt_length:].tolist()
            pending = tuple(t for t in topics if not written(generated, t))
            for token, bias in boosts(generated, pending, self.start_bias, self.follow_bias).items():
                scores[row, token] += bias
        return scores
