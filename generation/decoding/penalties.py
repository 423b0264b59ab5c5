"""Repetition penalties for ``generate`` that look at the tweet, not at the control prompt.

Hugging Face applies ``no_repeat_ngram_size`` and ``repetition_penalty`` to every token of
``input_ids``, prompt included. A control prompt names the topic the user asked for, so those
settings would forbid (n-grams) or discourage (penalty) writing it: a topic of three or more
tokens could never appear. The batched loop in :mod:`generation.decoding.sampling` counts generated
tokens only; these processors give ``generate`` (beam search, ``politico-train evaluate``) the
same rule.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
)


class _GeneratedNoRepeatNGram(LogitsProcessor):
    """``NoRepeatNGramLogitsProcessor`` over the ids after the first ``prompt_length``."""

    def __init__(self, ngram_size: int, prompt_length: int) -> None:
        self.inner = NoRepeatNGramLogitsProcessor(ngram_size)
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.inner(input_ids[:, self.prompt_length:], scores)


def tweet_penalties(no_repeat_ngram_size: int, repetition_penalty: float, prompt_length: int) -> dict[str, Any]:
    """Keyword arguments for ``generate`` that apply both settings to the tweet alone.

    ``generate``'s own settings are switched off explicitly, because a model's
    ``generation_config.json`` may set them. ``prompt_length`` is the (left-padded) prompt width:
    every row's tweet starts there.
    """
    processors = LogitsProcessorList()
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty, prompt_ignore_length=prompt_length))
    if no_repeat_ngram_size > 0:
        processors.append(_GeneratedNoRepeatNGram(no_repeat_ngram_size, prompt_length))
    return {"logits_processor": processors, "no_repeat_ngram_size": 0, "repetition_penalty": 1.0}
