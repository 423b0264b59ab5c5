"""``contextual``: the thesis's control-token training.

Every example is built by :func:`generation.prompts.encode_example`, the same code the bot uses
to build prompts: context segments with token types, loss only on the tweet and EOS, and the
thesis's truncation order. The special tokens are added (and the embeddings resized) when the
base model lacks them, as the thesis did with English GPT-2.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.prompts import SENTIMENTS, ControlFields, encode_example
from training.errors import InputError
from training.lm import TrainOptions, load_model, load_tokenizer, steps_for, train
from training.tables import read_jsonl


def fields_of(row: dict[str, Any], where: str = "") -> ControlFields:
    """The control fields of a prepared row (``prepare``'s JSONL), checked."""
    if not str(row.get("tweet") or "").strip():
        raise InputError(f"{where}: a row without 'tweet'")
    sentiment = str(row.get("sentimiento") or "")
    if sentiment and sentiment not in SENTIMENTS:
        raise InputError(f"{where}: unknown sentiment {sentiment!r} (use {', '.join(SENTIMENTS)})")

    def listed(key: str) -> tuple[str, ...]:
        value = row.get(key) or ()
        return tuple(value.split()) if isinstance(value, str) else tuple(str(v) for v in value)

    return ControlFields(
        coalicion=str(row.get("coalicion") or ""), partido=str(row.get("partido") or ""),
        sentimiento=sentiment, entidades=listed("entidades"), hashtags=listed("hashtags"),
        frases=listed("frases"),
    )


@dataclass(frozen=True)
class Example:
    """A training tweet with its controls; ``complete`` False: learn no ending for it."""

    fields: ControlFields
    tweet: str
    complete: bool = True


def load_examples(path: Path) -> list[Example]:
    rows = read_jsonl(path)
    return [Example(fields_of(row, f"{path}:{n}"), str(row["tweet"]), bool(row.get("completo", True)))
            for n, row in enumerate(rows, 1)]


def drop_fields(fields: ControlFields, rng: random.Random, p: float) -> ControlFields:
    """Context as a user might give it: each optional field left out with probability ``p``,
    and the entities cut to a single one with probability ``p`` (a user's topic word).

    The thesis always trained on full contexts; with ``p`` > 0 the model also learns to write
    from the partial prompts the bot sends. ``p`` = 0 reproduces the thesis.
    """
    if p <= 0:
        return fields
    entidades = fields.entidades
    if entidades and rng.random() < p:
        entidades = (rng.choice(entidades),)
    return ControlFields(
        fields.coalicion, fields.partido, fields.sentimiento,
        () if rng.random() < p else entidades,
        () if rng.random() < p else fields.hashtags,
        () if rng.random() < p else fields.frases,
    )


class ContextualDataset(torch.utils.data.Dataset):
    """Encoded examples; with field dropout each visit draws a fresh partial context."""

    def __init__(
        self, examples: Sequence[Example], tokenizer, block_size: int,
        field_dropout: float = 0.0, seed: int = 0,
    ) -> None:
        self.examples = list(examples)
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.field_dropout = field_dropout
        self.rng = random.Random(seed)
        self.fixed = None if field_dropout > 0 else [self._encode(e, e.fields) for e in self.examples]

    def _encode(self, example: Example, fields: ControlFields) -> dict[str, list[int]]:
        encoded = encode_example(self.tokenizer, fields, example.tweet, self.block_size, example.complete)
        return {"input_ids": encoded.input_ids, "token_type_ids": encoded.token_type_ids,
                "labels": encoded.labels}

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        if self.fixed is not None:
            return self.fixed[index]
        example = self.examples[index]
        return self._encode(example, drop_fields(example.fields, self.rng, self.field_dropout))


def contextual(
    base: str, train_file: Path, options: TrainOptions, block_size: int = 0,
    validation_file: Path | None = None, field_dropout: float = 0.0,
) -> dict:
    """Control-token training of ``base`` (folder or hub id) on ``prepare``'s JSONL."""
    tokenizer = load_tokenizer(base)
    model = load_model(base, tokenizer)
    block = block_size or model.config.n_positions
    if block > model.config.n_positions:
        raise InputError(f"block size {block} is longer than the model's {model.config.n_positions} positions")
    if not 0 <= field_dropout < 1:
        raise InputError("field dropout must be in [0, 1)")
    import transformers

    transformers.set_seed(options.seed)
    # Contexts make lengths vary a lot; batching similar lengths together wastes less on padding.
    options.group_by_length = True
    train_set = ContextualDataset(load_examples(train_file), tokenizer, block, field_dropout, options.seed)
    eval_set = None
    if validation_file:
        eval_set = ContextualDataset(load_examples(validation_file), tokenizer, block)
    max_steps = options.max_steps if options.max_steps > 0 else steps_for(len(train_set), options)
    return train(model, tokenizer, train_set, eval_set, options, max_steps)
