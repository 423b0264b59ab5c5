"""Batched sampling from a controlled or casual model, for ``evaluate``.

Prompts are built by :func:`generation.prompts.encode_prompt` (controlled) or are BOS alone
(casual), left-padded so a batch ends where every prompt ends; token types follow the ids, and
``generate`` extends them with the last one (``[TWEET]``) for the new tokens. Repetition
settings count the tweet's tokens only, as the bot's decoding does (:mod:`generation.penalties`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from generation.guidance import GuideProcessor, topic_variants
from generation.penalties import tweet_penalties
from generation.prompts import ControlFields, encode_prompt


@dataclass
class Decoding:
    """Sampling settings; the defaults are the demo model's in ``config.toml``."""

    max_new_tokens: int = 60
    temperature: float = 0.8
    top_p: float = 0.9
    no_repeat_ngram_size: int = 3
    repetition_penalty: float = 1.1
    banned: tuple[str, ...] = ("…", "&")
    #: Topic guidance (:mod:`generation.guidance`): bonus for a missing topic's first token, and
    #: for the token that continues a topic the tweet has begun.
    guide_start_bias: float = 1.0
    guide_bias: float = 8.0
    batch_size: int = 32


def _prompt(tokenizer, fields: ControlFields | None) -> tuple[list[int], list[int]]:
    if fields is None:
        return [tokenizer.bos_token_id], [tokenizer.bos_token_id]
    encoded = encode_prompt(tokenizer, fields)
    return encoded.input_ids, encoded.token_type_ids


@torch.no_grad()
def sample(
    model, tokenizer, prompts: Sequence[ControlFields | None], decoding: Decoding, seed: int,
    progress: bool = True,
) -> list[str]:
    """One sampled tweet per prompt (``None`` = a casual model's BOS-only prompt)."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    model.eval()
    pad = tokenizer.pad_token_id
    banned = [tokenizer.encode(w, add_special_tokens=False) for w in decoding.banned]
    banned += [tokenizer.encode(" " + w, add_special_tokens=False) for w in decoding.banned]
    uses_types = any(p is not None for p in prompts)
    texts: list[str] = []
    starts = range(0, len(prompts), decoding.batch_size)
    for start in tqdm(starts, desc="generando", disable=not progress):
        batch = [_prompt(tokenizer, p) for p in prompts[start:start + decoding.batch_size]]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([[pad] * (width - len(i)) + i for i, _ in batch])
        types = torch.tensor([[0] * (width - len(t)) + t for _, t in batch])
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i, _ in batch])
        extra = {"token_type_ids": types} if uses_types else {}
        room = model.config.n_positions - width
        if room < 1:
            raise ValueError(f"a prompt of {width} tokens leaves no room in {model.config.n_positions} positions")
        rules = tweet_penalties(decoding.no_repeat_ngram_size, decoding.repetition_penalty, width)
        if decoding.guide_start_bias or decoding.guide_bias:
            guides = [topic_variants(tokenizer, p.topics() if p else ()) for p in prompts[start:start + decoding.batch_size]]
            rules["logits_processor"].append(
                GuideProcessor(guides, width, decoding.guide_start_bias, decoding.guide_bias)
            )
        out = model.generate(
            input_ids=ids, attention_mask=mask, do_sample=True,
            max_new_tokens=min(decoding.max_new_tokens, room), temperature=decoding.temperature,
            top_p=decoding.top_p, bad_words_ids=banned or None, **rules,
            pad_token_id=pad, eos_token_id=tokenizer.eos_token_id, **extra,
        )
        texts += [
            tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out
        ]
    return texts
