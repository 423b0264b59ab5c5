"""``pretrain`` and ``finetune``: plain causal language modelling on packed blocks.

``pretrain`` starts a GPT-2 of a given shape from scratch on a text corpus (the thesis's Spanish
Wikipedia model); ``finetune`` continues a trained model on tweets, each wrapped in BOS ... EOS
(the thesis's "with-bos-eos" side models, trained on all tweets, derecha or izquierda).
"""

from __future__ import annotations

from pathlib import Path

from training.corpus import PackedCorpus
from training.errors import InputError
from training.lm import (
    ModelShape,
    TrainOptions,
    load_model,
    load_tokenizer,
    new_model,
    steps_for,
    train,
)


def _datasets(tokenizer, files, validation, block_size, wrap, text_field, options):
    train_set = PackedCorpus(files, tokenizer, block_size, wrap=wrap, text_field=text_field, seed=options.seed)
    blocks = train_set.count()
    if blocks == 0:
        raise InputError(f"the corpus is too small for one block of {block_size} tokens")
    eval_set = None
    if validation:
        eval_set = PackedCorpus(validation, tokenizer, block_size, wrap=wrap, text_field=text_field,
                                shuffle_buffer=1, seed=options.seed)
        if eval_set.count() == 0:
            eval_set = None
    max_steps = options.max_steps if options.max_steps > 0 else steps_for(blocks, options)
    return train_set, eval_set, max_steps


def pretrain(
    tokenizer_path: Path, files: list[Path], options: TrainOptions, shape: ModelShape,
    validation: list[Path] | None = None, text_field: str | None = None,
) -> dict:
    """GPT-2 of ``shape`` from scratch on ``files``; saved with its tokenizer in ``options.out``."""
    tokenizer = load_tokenizer(tokenizer_path)
    train_set, eval_set, max_steps = _datasets(
        tokenizer, files, validation, shape.n_positions, False, text_field, options
    )
    import transformers

    transformers.set_seed(options.seed)
    model = new_model(tokenizer, shape)
    return train(model, tokenizer, train_set, eval_set, options, max_steps)


def finetune(
    base: str, files: list[Path], options: TrainOptions, block_size: int = 0,
    validation: list[Path] | None = None, text_field: str | None = None,
) -> dict:
    """Continue ``base`` (folder or hub id) on tweets, each as BOS tweet EOS, packed in blocks."""
    tokenizer = load_tokenizer(base)
    model = load_model(base, tokenizer)
    block = block_size or model.config.n_positions
    if block > model.config.n_positions:
        raise InputError(f"block size {block} is longer than the model's {model.config.n_positions} positions")
    train_set, eval_set, max_steps = _datasets(tokenizer, files, validation, block, True, text_field, options)
    return train(model, tokenizer, train_set, eval_set, options, max_steps)
